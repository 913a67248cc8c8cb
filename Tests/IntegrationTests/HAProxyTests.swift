import Foundation
import Testing
import TestSupport

/// What is particular to HAProxy 2.6 (Debian's haproxy) and
/// examples/haproxy/magicbell-fcgi.cfg; the checks every recipe shares are in
/// ServerRecipeTests.
@Suite(.serialized) struct HAProxyTests {
    @Test func anEscapedPathIsNotTheTokenRoute() throws {
        let stack = try ServerRecipeTests.FastCGI.haproxy.start()
        // HAProxy matches the raw path: an escaped one is not the token route, and never a token.
        try RecipeChecks.neverAToken(stack.server, "/magicbell-%74oken")
    }
}
