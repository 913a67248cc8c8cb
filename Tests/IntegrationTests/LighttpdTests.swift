import Foundation
import Testing
import TestSupport

/// lighttpd 1.4 (Debian's lighttpd) with the recipes in examples/lighttpd/:
/// mod_fastcgi in front of `serve`, and mod_cgi running the binary as a CGI
/// program; mod_magnet sets the identity after mod_auth.
@Suite(.serialized) struct LighttpdTests {
    /// `serve` behind magicbell-fcgi.conf. The backend lives as long as lighttpd.
    struct FastCGI {
        let backend: RecipeChecks.Backend
        let lighttpd: Lighttpd

        init() throws {
            backend = try RecipeChecks.Backend()
            lighttpd = try Lighttpd(scratch: backend.scratch, recipe: "magicbell-fcgi.conf",
                                    variables: ["magicbell_socket": backend.socket])
        }
    }

    static func cgi() throws -> Lighttpd {
        let scratch = try Scratch()
        return try Lighttpd(scratch: scratch, recipe: "magicbell-cgi.conf", variables: ["magicbell_program": Project.binary],
                            replacing: ["pk_your_project_api_key": Project.apiKey,
                                        "/etc/magicbell-fcgi/secret-key": try scratch.secretKeyFile()])
    }

    @Test func fastCGI_aTokenForTheAuthenticatedUserOnly() throws {
        let stack = try FastCGI()
        try RecipeChecks.tokenForTheAuthenticatedUserOnly(stack.lighttpd, log: stack.lighttpd.errorLog)
    }

    @Test func fastCGI_adminCreateListRevokeAndAScraperThatSeesOnlyMetrics() throws {
        let stack = try FastCGI()
        try RecipeChecks.adminCreateListRevokeAndAScraperThatSeesOnlyMetrics(stack.lighttpd, stack.backend)
    }

    @Test func fastCGI_aShortLoadHasNoErrors() throws {
        let stack = try FastCGI()
        _ = try RecipeChecks.shortLoadWithoutErrors(stack.lighttpd, "lighttpd mod_fastcgi")
    }

    @Test func cgi_aTokenForTheAuthenticatedUserOnly() throws {
        let lighttpd = try Self.cgi()
        try RecipeChecks.cgiTokenForTheAuthenticatedUserOnly(lighttpd, log: lighttpd.errorLog)
    }

    @Test func cgi_aShortLoadHasNoErrors() throws {
        let lighttpd = try Self.cgi()
        _ = try RecipeChecks.shortLoadWithoutErrors(lighttpd, "lighttpd mod_cgi", connections: 2)
    }
}
