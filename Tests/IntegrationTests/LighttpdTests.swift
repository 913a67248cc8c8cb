import Foundation
import Testing
import TestSupport

/// What is particular to lighttpd 1.4 (Debian's lighttpd) and
/// examples/lighttpd/; the checks every recipe shares are in ServerRecipeTests.
@Suite(.serialized) struct LighttpdTests {
    @Test func aSiteWideExpireKeepsTheAnswersNoStore() throws {
        // mod_expire as a site turns it on for everything it serves.
        let backend = try RecipeChecks.Backend()
        let lighttpd = try Lighttpd(scratch: backend.scratch, recipe: "magicbell-fcgi.conf",
                                    variables: ["magicbell_socket": backend.socket], site: """
                                        server.modules += ( "mod_expire" )
                                        expire.url = ( "" => "access plus 1 hours" )
                                        """)
        try "page".write(toFile: "\(lighttpd.root)/htdocs/page.txt", atomically: true, encoding: .utf8)
        let page = try lighttpd.get("/page.txt")
        #expect(page.status == 200 && page.header("Cache-Control") == "max-age=3600", "the setting is live: \(page.headers)")

        let token = try lighttpd.get("/magicbell-token", headers: [HTTP.basic("alice", "alice")])
        #expect(token.status == 200, "\(token.text) \(lighttpd.errorLog)")
        ApacheTests.keepsNoStore(token, "the token")
        ApacheTests.keepsNoStore(try lighttpd.admin("GET", "jwt/project"), "an admin answer")
        ApacheTests.keepsNoStore(try lighttpd.get("/magicbell-admin/metrics", headers: [HTTP.basic("prometheus", "prometheus")]), "the metrics")
    }

    /// mod_setenv's response headers, as a site sets them for everything it
    /// serves (lighttpd's equivalent of nginx's add_header; issue 19 §1).
    @Test(arguments: [
        #"setenv.add-response-header = ( "Cache-Control" => "public, max-age=3600" )"#,
        #"setenv.set-response-header = ( "Cache-Control" => "public, max-age=3600", "Expires" => "Thu, 01 Jan 2037 00:00:00 GMT" )"#,
    ]) func aSiteWideResponseHeaderKeepsTheAnswersNoStore(_ site: String) throws {
        let backend = try RecipeChecks.Backend()
        let lighttpd = try Lighttpd(scratch: backend.scratch, recipe: "magicbell-fcgi.conf",
                                    variables: ["magicbell_socket": backend.socket], site: site)
        try "page".write(toFile: "\(lighttpd.root)/htdocs/page.txt", atomically: true, encoding: .utf8)
        #expect(try lighttpd.get("/page.txt").header("Cache-Control") == "public, max-age=3600", "the setting is live")
        let token = try lighttpd.get("/magicbell-token", headers: [HTTP.basic("alice", "alice")])
        #expect(token.status == 200, "\(token.text) \(lighttpd.errorLog)")
        ApacheTests.keepsNoStore(token, "the token, with \(site)")
        ApacheTests.keepsNoStore(try lighttpd.admin("GET", "jwt/project"), "an admin answer, with \(site)")
        ApacheTests.keepsNoStore(try lighttpd.get("/magicbell-admin/metrics", headers: [HTTP.basic("prometheus", "prometheus")]),
                                 "the metrics, with \(site)")
    }
}
