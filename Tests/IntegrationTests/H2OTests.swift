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

    @Test func theAdminRouteKnowsTheSitesOwnOrigin() throws {
        let stack = try Self.served()
        let origin = "http://127.0.0.1:\(stack.server.port)"
        let same = try stack.server.admin("POST", "jwt/project", json: #"{"name":"origin"}"#, headers: [("Origin", origin)])
        #expect(same.status == 201, "a same-origin POST: \(same.text)")
        let foreign = try stack.server.admin("POST", "jwt/project", json: #"{"name":"origin"}"#,
                                             headers: [("Origin", "https://evil.example")])
        #expect(foreign.status == 403 && foreign.errorCode == "cross_origin")
    }
}
