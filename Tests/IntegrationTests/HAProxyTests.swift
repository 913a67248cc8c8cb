import Foundation
import Testing
import TestSupport

/// HAProxy 2.6 (Debian's haproxy) with examples/haproxy/magicbell-fcgi.cfg:
/// fcgi-app with get-values, keep-conn and mpxs-conns, Basic auth by userlists.
@Suite(.serialized) struct HAProxyTests {
    static func served() throws -> RecipeChecks.Served<HAProxy> { try RecipeChecks.Served { try HAProxy(scratch: $0.scratch, socket: $0.socket) } }

    @Test func aTokenForTheAuthenticatedUserOnly() throws {
        let stack = try Self.served()
        try RecipeChecks.tokenForTheAuthenticatedUserOnly(stack.server, log: stack.server.errorLog)
        // HAProxy matches the raw path: an escaped one is not the token route, and never a token.
        try RecipeChecks.neverAToken(stack.server, "/magicbell-%74oken")
    }

    @Test func adminCreateListRevokeAndAScraperThatSeesOnlyMetrics() throws {
        let stack = try Self.served()
        try RecipeChecks.adminCreateListRevokeAndAScraperThatSeesOnlyMetrics(stack.server, stack.backend)
    }

    @Test func aShortLoadHasNoErrors() throws {
        let stack = try Self.served()
        _ = try RecipeChecks.shortLoadWithoutErrors(stack.server, "haproxy fcgi-app")
    }
}
