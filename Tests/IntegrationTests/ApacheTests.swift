import Glibc
import Foundation
import Testing
import TestSupport

/// What is particular to Apache httpd 2.4 (Debian's apache2) and its recipes
/// in examples/apache/; the checks every recipe shares are in ServerRecipeTests.
@Suite(.serialized) struct ApacheTests {
    @Test func aSiteThatOpensEverythingBeforeTheRecipeOpensNothingOfIt() throws {
        // What a crowded Debian site has: access_compat's Satisfy Any with
        // Allow from all, and Require all granted, for the whole site.
        let site = """
        <Location "/">
            Require all granted
            Order allow,deny
            Allow from all
            Satisfy Any
        </Location>
        """
        let backend = try RecipeChecks.Backend()
        let apache = try Apache(scratch: backend.scratch, recipe: "magicbell-fcgi.conf", defines: ["MAGICBELL_SOCKET": backend.socket],
                                site: site)
        #expect(try apache.get("/magicbell-admin/jwt/project").status == 401, "the admin route without a password")
        #expect(try apache.get("/magicbell-admin/metrics").status == 401, "the metrics without a password")
        #expect(try apache.get("/magicbell-token").status == 401)
        #expect(try backend.fake.requests().isEmpty, "nothing reached MagicBell")
        try RecipeChecks.tokenForTheAuthenticatedUserOnly(apache, log: apache.errorLog)
    }

    /// Exactly the responder's `Cache-Control: no-store`, and no `Expires`.
    static func keepsNoStore(_ answer: HTTPResponse, _ name: String) {
        let cacheControl = answer.headers.filter { $0.name.lowercased() == "cache-control" }.map(\.value)
        #expect(cacheControl == ["no-store"], "\(name) (\(answer.status)): Cache-Control \(cacheControl)")
        #expect(answer.header("Expires") == nil, "\(name): Expires \(answer.header("Expires") ?? "")")
    }

    /// mod_expires as a site turns it on for its static files.
    static let siteWideExpires = "ExpiresActive On\nExpiresDefault \"access plus 1 hour\""

    @Test func aSiteWideExpiresKeepsTheAnswersNoStore() throws {
        let backend = try RecipeChecks.Backend()
        let apache = try Apache(scratch: backend.scratch, recipe: "magicbell-fcgi.conf", defines: ["MAGICBELL_SOCKET": backend.socket],
                                site: Self.siteWideExpires, modules: ["expires"])
        let token = try apache.get("/magicbell-token", headers: [HTTP.basic("alice", "alice")])
        #expect(token.status == 200, "\(token.text) \(apache.errorLog)")
        Self.keepsNoStore(token, "the token")
        Self.keepsNoStore(try apache.admin("GET", "jwt/project"), "an admin answer")
        Self.keepsNoStore(try apache.get("/magicbell-admin/metrics", headers: [HTTP.basic("prometheus", "prometheus")]), "the metrics")
    }

    @Test func aSiteWideExpiresKeepsTheCGITokensNoStore() throws {
        let scratch = try Scratch()
        let apache = try Apache(scratch: scratch, recipe: "magicbell-cgi.conf", defines: ["MAGICBELL_PROGRAM": Project.binary],
                                replacing: ["pk_your_project_api_key": Project.apiKey, "/etc/magicbell-fcgi/secret-key": try scratch.secretKeyFile()],
                                site: Self.siteWideExpires, modules: ["expires"])
        let token = try apache.get("/magicbell-token", headers: [HTTP.basic("alice", "alice")])
        #expect(token.status == 200, "\(token.text) \(apache.errorLog)")
        Self.keepsNoStore(token, "the CGI token")
    }
}
