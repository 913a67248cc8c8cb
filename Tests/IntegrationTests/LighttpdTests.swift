import Foundation
import Testing
import TestSupport

/// lighttpd 1.4 (Debian's lighttpd) with the recipes in examples/lighttpd/:
/// mod_fastcgi in front of `serve`, and mod_cgi running the binary as a CGI
/// program; mod_magnet sets the identity after mod_auth.
@Suite(.serialized) struct LighttpdTests {
    /// `serve` behind magicbell-fcgi.conf.
    static func fastCGI() throws -> RecipeChecks.Served<Lighttpd> { try RecipeChecks.Served { try Lighttpd(scratch: $0.scratch, recipe: "magicbell-fcgi.conf", variables: ["magicbell_socket": $0.socket]) } }

    static func cgi() throws -> Lighttpd {
        let scratch = try Scratch()
        return try Lighttpd(scratch: scratch, recipe: "magicbell-cgi.conf", variables: ["magicbell_program": Project.binary],
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
        _ = try RecipeChecks.shortLoadWithoutErrors(stack.server, "lighttpd mod_fastcgi")
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
