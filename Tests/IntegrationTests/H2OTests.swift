import Foundation
import Testing
import TestSupport

/// What is particular to h2o 2.2 (Debian's h2o) and examples/h2o/; the
/// checks every recipe shares are in ServerRecipeTests.
@Suite(.serialized) struct H2OTests {
    @Test func theAdminRouteKnowsTheSitesOwnOrigin() throws {
        let stack = try ServerRecipeTests.FastCGI.h2o.start()
        let origin = "http://127.0.0.1:\(stack.server.port)"
        let same = try stack.server.admin("POST", "jwt/project", json: #"{"name":"origin"}"#, headers: [("Origin", origin)])
        #expect(same.status == 201, "a same-origin POST: \(same.text)")
        let foreign = try stack.server.admin("POST", "jwt/project", json: #"{"name":"origin"}"#,
                                             headers: [("Origin", "https://evil.example")])
        #expect(foreign.status == 403 && foreign.errorCode == "cross_origin")
    }
}
