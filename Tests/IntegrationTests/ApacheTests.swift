import Glibc
import Foundation
import Testing
import TestSupport

/// Apache httpd 2.4 (Debian's apache2) with the recipes in examples/apache/:
/// mod_proxy_fcgi in front of `serve`, and mod_cgid running the binary as a
/// CGI program.
@Suite(.serialized) struct ApacheTests {
    /// `serve` behind magicbell-fcgi.conf.
    static func fastCGI() throws -> RecipeChecks.Served<Apache> { try RecipeChecks.Served { try Apache(scratch: $0.scratch, recipe: "magicbell-fcgi.conf", defines: ["MAGICBELL_SOCKET": $0.socket]) } }

    /// The binary as a CGI program behind magicbell-cgi.conf.
    static func cgi() throws -> Apache {
        let scratch = try Scratch()
        return try Apache(scratch: scratch, recipe: "magicbell-cgi.conf", defines: ["MAGICBELL_PROGRAM": Project.binary],
                          replacing: ["pk_your_project_api_key": Project.apiKey,
                                      "/etc/magicbell-fcgi/secret-key": try scratch.secretKeyFile()])
    }

    @Test func fastCGI_aTokenForTheAuthenticatedUserOnly() throws {
        let stack = try Self.fastCGI()
        try RecipeChecks.tokenForTheAuthenticatedUserOnly(stack.server, log: stack.server.errorLog)
    }

    @Test func fastCGI_adminCreateListRevokeAndAScraperThatSeesOnlyMetrics() throws {
        let stack = try Self.fastCGI()
        try RecipeChecks.adminCreateListRevokeAndAScraperThatSeesOnlyMetrics(stack.server, stack.backend)
    }

    @Test func fastCGI_aShortLoadHasNoErrors() throws {
        let stack = try Self.fastCGI()
        _ = try RecipeChecks.shortLoadWithoutErrors(stack.server, "apache mod_proxy_fcgi")
    }

    @Test func cgi_aTokenForTheAuthenticatedUserOnly() throws {
        let apache = try Self.cgi()
        try RecipeChecks.cgiTokenForTheAuthenticatedUserOnly(apache, log: apache.errorLog)
    }

    @Test func cgi_aShortLoadHasNoErrors() throws {
        let apache = try Self.cgi()
        _ = try RecipeChecks.shortLoadWithoutErrors(apache, "apache mod_cgid", connections: 2)
    }

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
