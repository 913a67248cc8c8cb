import Foundation
import Testing
import TestSupport

/// Caddy 2.6 (Debian's caddy) with examples/caddy/magicbell.caddy: the
/// fastcgi transport of reverse_proxy, basicauth per route.
@Suite(.serialized) struct CaddyTests {
    static func served() throws -> RecipeChecks.Served<Caddy> { try RecipeChecks.Served { try Caddy(scratch: $0.scratch, socket: $0.socket) } }

    @Test func aTokenForTheAuthenticatedUserOnly() throws {
        let stack = try Self.served()
        try RecipeChecks.tokenForTheAuthenticatedUserOnly(stack.server, log: stack.server.errorLog)
    }

    @Test func adminCreateListRevokeAndAScraperThatSeesOnlyMetrics() throws {
        let stack = try Self.served()
        try RecipeChecks.adminCreateListRevokeAndAScraperThatSeesOnlyMetrics(stack.server, stack.backend)
        // Caddy cleans the path before it matches; what it forwards keeps the
        // empty or dot segments, which the admin route refuses as no operation.
        #expect(try stack.server.admin("GET", "/jwt/project").status == 404)
        #expect(try stack.server.admin("GET", "metrics/../jwt/project").status == 404)
    }

    @Test func aShortLoadHasNoErrors() throws {
        let stack = try Self.served()
        _ = try RecipeChecks.shortLoadWithoutErrors(stack.server, "caddy fastcgi transport")
    }
}
