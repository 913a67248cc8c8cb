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

    @Test func aSiteWideExpiresOrHeaderKeepsTheCGITokensNoStore() throws {
        let scratch = try Scratch()
        let apache = try Apache(scratch: scratch, recipe: "magicbell-cgi.conf", defines: ["MAGICBELL_PROGRAM": Project.binary],
                                replacing: ["pk_your_project_api_key": Project.apiKey, "/etc/magicbell-fcgi/secret-key": try scratch.secretKeyFile()],
                                site: Self.siteWideExpires + "\nHeader always set Cache-Control public", modules: ["expires", "headers"])
        let token = try apache.get("/magicbell-token", headers: [HTTP.basic("alice", "alice")])
        #expect(token.status == 200, "\(token.text) \(apache.errorLog)")
        Self.keepsNoStore(token, "the CGI token")
    }

    /// mod_headers as a site sets caching headers for everything it serves
    /// (Apache's equivalent of nginx's add_header; issue 19 §1).
    @Test(arguments: [
        #"Header set Cache-Control "public, max-age=3600""#,
        #"Header always set Cache-Control "public, max-age=3600""#,
        #"Header always append Cache-Control "public""#,
        #"Header always set Expires "Thu, 01 Jan 2037 00:00:00 GMT""#,
        "Header unset Cache-Control",
    ]) func aSiteWideHeaderKeepsTheAnswersNoStore(_ site: String) throws {
        let backend = try RecipeChecks.Backend()
        let apache = try Apache(scratch: backend.scratch, recipe: "magicbell-fcgi.conf", defines: ["MAGICBELL_SOCKET": backend.socket],
                                site: site, modules: ["headers"])
        let token = try apache.get("/magicbell-token", headers: [HTTP.basic("alice", "alice")])
        #expect(token.status == 200, "\(token.text) \(apache.errorLog)")
        Self.keepsNoStore(token, "the token, with \(site)")
        Self.keepsNoStore(try apache.admin("GET", "jwt/project"), "an admin answer, with \(site)")
        Self.keepsNoStore(try apache.admin("GET", "jwt/nothing-here"), "an admin 404, with \(site)")
        Self.keepsNoStore(try apache.get("/magicbell-admin/metrics", headers: [HTTP.basic("prometheus", "prometheus")]),
                          "the metrics, with \(site)")
    }

    /// Issue 19 §7: `CacheDisable /magicbell-token` is compared with the raw
    /// path in mod_cache's quick handler, and so does not name
    /// `/%6dagicbell-token`. That handler declines every request with
    /// `Authorization`, and with it off the exclusion compares the decoded
    /// path: whatever the site's cache settings, no one is ever served
    /// another's token, or a token without a password, by either path.
    @Test(arguments: ["On", "Off"]) func anEncodedPathIsNeverServedFromTheCache(_ quickHandler: String) throws {
        let backend = try RecipeChecks.Backend()
        let cache = backend.scratch.file("apache-cache")
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        // A site that caches everything it can, even what says no-store.
        let site = """
        CacheQuickHandler \(quickHandler)
        CacheRoot \(cache)
        CacheEnable disk /
        CacheStoreNoStore On
        CacheStorePrivate On
        CacheIgnoreCacheControl On
        CacheIgnoreNoLastMod On
        CacheDefaultExpire 600
        """
        let apache = try Apache(scratch: backend.scratch, recipe: "magicbell-fcgi.conf", defines: ["MAGICBELL_SOCKET": backend.socket],
                                site: site, modules: ["cache", "cache_disk"])
        for path in ["/%6dagicbell-token", "/magicbell-token", "/%6dagicbell-token"] {
            for user in ["alice", "bob"] {
                let answer = try apache.get(path, headers: [HTTP.basic(user, user)])
                #expect(answer.status == 200, "\(path) as \(user): \(answer.status) \(apache.errorLog)")
                let claims = try PyJWT.decode(try #require(answer.json?["token"] as? String))
                #expect(claims["user_external_id"] as? String == user, "\(path) as \(user), quick handler \(quickHandler)")
            }
            let anonymous = try apache.get(path)
            #expect(anonymous.status == 401 && anonymous.json?["token"] == nil, "\(path) without a password: \(anonymous.status)")
        }
        let stored = (FileManager.default.enumerator(atPath: cache)?.allObjects as? [String]) ?? []
        let withToken = stored.filter { (try? String(contentsOfFile: "\(cache)/\($0)", encoding: .isoLatin1))?.contains("\"token\":\"ey") == true }
        #expect(withToken.isEmpty, "tokens in mod_cache's store: \(withToken)")
    }
}
