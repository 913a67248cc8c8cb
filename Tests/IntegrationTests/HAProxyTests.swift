import Foundation
import Testing
import TestSupport

/// HAProxy 2.6 (Debian's haproxy) with examples/haproxy/magicbell-fcgi.cfg:
/// fcgi-app with get-values, keep-conn and mpxs-conns, Basic auth by userlists.
@Suite(.serialized) struct HAProxyTests {
    /// `serve` behind the recipe. The backend lives as long as HAProxy.
    struct FastCGI {
        let backend: RecipeChecks.Backend
        let haproxy: HAProxy

        init() throws {
            backend = try RecipeChecks.Backend()
            haproxy = try HAProxy(scratch: backend.scratch, socket: backend.socket)
        }
    }

    @Test func aTokenForTheAuthenticatedUserOnly() throws {
        let stack = try FastCGI()
        try RecipeChecks.tokenForTheAuthenticatedUserOnly(stack.haproxy, log: stack.haproxy.errorLog)
        // HAProxy matches the raw path: an escaped one is not the token route, and never a token.
        try RecipeChecks.neverAToken(stack.haproxy, "/magicbell-%74oken")
    }

    @Test func adminCreateListRevokeAndAScraperThatSeesOnlyMetrics() throws {
        let stack = try FastCGI()
        try RecipeChecks.adminCreateListRevokeAndAScraperThatSeesOnlyMetrics(stack.haproxy, stack.backend)
    }

    @Test func aShortLoadHasNoErrors() throws {
        let stack = try FastCGI()
        _ = try RecipeChecks.shortLoadWithoutErrors(stack.haproxy, "haproxy fcgi-app")
    }
}
