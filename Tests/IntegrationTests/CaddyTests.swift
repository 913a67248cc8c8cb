import Foundation
import Testing
import TestSupport

/// What is particular to Caddy 2.6 (Debian's caddy) and examples/caddy/:
/// its path cleaning, and forward_auth to the site's own session check for the
/// token route; the checks every recipe shares are in ServerRecipeTests.
@Suite(.serialized) struct CaddyTests {
    @Test func cleanedPathsReachNoAdminOperation() throws {
        let stack = try ServerRecipeTests.FastCGI.caddy.start()
        // Caddy cleans the path before it matches; what it forwards keeps the
        // empty or dot segments, which the admin route refuses as no operation.
        #expect(try stack.server.admin("GET", "/jwt/project").status == 404)
        #expect(try stack.server.admin("GET", "metrics/../jwt/project").status == 404)
        #expect(try stack.backend.fake.requests().isEmpty)
    }

    @Test func forwardAuth_theIdentityComesFromTheSiteAppOnly() throws {
        let backend = try RecipeChecks.Backend()
        let app = try SessionApp(scratch: backend.scratch)
        let caddy = try Caddy(scratch: backend.scratch, socket: backend.socket, token: .forwardAuth(port: app.port))
        let signedIn = try caddy.get("/magicbell-token", headers: [("Cookie", "session=user-7")] + RecipeChecks.spoofed
                                                                   + [("X-User-Id", "mallory"), ("X-User-Email", "m@example.com")])
        #expect(signedIn.status == 200, "\(signedIn.text) \(caddy.errorLog)")
        let claims = try PyJWT.decode(try #require(signedIn.json?["token"] as? String))
        #expect(claims["user_external_id"] as? String == "user-7" && claims["user_email"] as? String == "user-7@example.com")
        #expect(try caddy.get("/magicbell-token").status == 401, "no session")
        // The app lets a signed-out visitor through with no identity: the
        // client's own X-User-Id must not become one (copy_headers keeps it).
        let anonymous = try caddy.get("/magicbell-token", headers: [("Cookie", "session=anonymous"), ("X-User-Id", "mallory")])
        #expect(anonymous.status == 401 && anonymous.errorCode == "unauthenticated", "\(anonymous.status) \(anonymous.text)")
        withExtendedLifetime(app) {}
    }
}
