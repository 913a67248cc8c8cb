import Foundation
import Testing
import TestSupport

/// h2o 2.2 (Debian's h2o) with examples/h2o/: FastCGI with connection
/// reuse, Basic auth and the identity by mruby (magicbell-auth.rb).
@Suite(.serialized) struct H2OTests {
    static func served() throws -> RecipeChecks.Served<H2O> { try RecipeChecks.Served { try H2O(scratch: $0.scratch, socket: $0.socket) } }

    @Test func aTokenForTheAuthenticatedUserOnly() throws {
        let stack = try Self.served()
        try RecipeChecks.tokenForTheAuthenticatedUserOnly(stack.server, log: stack.server.errorLog)
    }

    @Test func adminCreateListRevokeAndAScraperThatSeesOnlyMetrics() throws {
        let stack = try Self.served()
        try RecipeChecks.adminCreateListRevokeAndAScraperThatSeesOnlyMetrics(stack.server, stack.backend)
    }

    @Test func aShortLoadHasNoErrors() throws {
        let stack = try Self.served()
        _ = try RecipeChecks.shortLoadWithoutErrors(stack.server, "h2o fastcgi")
    }
}
