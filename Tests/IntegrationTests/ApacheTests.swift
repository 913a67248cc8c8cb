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
}
