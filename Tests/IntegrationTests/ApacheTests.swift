import Glibc
import Foundation
import Testing
import TestSupport

/// Apache httpd 2.4 (Debian's apache2) with the recipes in examples/apache/:
/// mod_proxy_fcgi in front of `serve`, and mod_cgid running the binary as a
/// CGI program.
@Suite(.serialized) struct ApacheTests {
    static let demo = HTTP.basic("demo", "demo")
    /// Client headers named like every param the recipes set or the responder reads.
    static let spoofed = [
        ("MagicBell-User-External-Id", "mallory"), ("MagicBell-User-Email", "mallory@example.com"),
        ("X-Remote-User", "mallory"), ("Remote-User", "mallory"), ("MagicBell-Route", "admin"),
        ("Document-Uri", "/magicbell-admin/jwt/project"), ("Script-Name", "/magicbell-admin/jwt/project"),
        ("MagicBell-Secret-Key-File", "/etc/passwd"), ("Gateway-Interface", "CGI/1.1"),
    ]

    struct FastCGIStack {
        let scratch: Scratch
        let fake: FakeMagicBell
        let responder: Responder
        let apache: Apache

        init() throws {
            scratch = try Scratch()
            fake = try FakeMagicBell()
            let socket = scratch.file("fcgi.sock")
            responder = try Responder(scratch: scratch, arguments: ["serve", "--socket", socket, "--socket-mode", "0666", "--workers", "4"],
                                      environment: Responder.environment([
                                          "MAGICBELL_PROJECT_TOKEN": fake.token, "MAGICBELL_API_URL": fake.baseURL.absoluteString,
                                          "MAGICBELL_UPSTREAM_TIMEOUT": "5"]))
            apache = try Apache(scratch: scratch, recipe: "magicbell-fcgi.conf", defines: ["MAGICBELL_SOCKET": socket])
        }
    }

    @Test func fastCGI_theAuthenticatedUserGetsATokenAndNothingElseDoes() throws {
        let stack = try FastCGIStack()
        let response = try stack.apache.get("/magicbell-token", headers: [Self.demo] + Self.spoofed)
        #expect(response.status == 200, "\(response.text) \(readText(stack.apache.root + "/logs/error.log"))")
        let claims = try PyJWT.decode(try #require(response.json?["token"] as? String))
        #expect(claims["user_external_id"] as? String == "demo", "the name Apache authenticated, whatever the headers say")
        #expect(claims["user_email"] is NSNull)
        #expect(response.header("Cache-Control") == "no-store")

        #expect(try stack.apache.get("/magicbell-token").status == 401)
        #expect(try stack.apache.get("/magicbell-token", headers: [HTTP.basic("demo", "wrong")]).status == 401)
        #expect(try stack.apache.get("/magicbell-token", headers: [HTTP.basic("admin", "admin")]).status == 401, "admins are not token users")
        // Paths Apache did not match, or matched only after resolving them: never a token.
        #expect(try stack.apache.get("/magicbell-tokenx", headers: [Self.demo]).status == 404)
        #expect(try stack.apache.get("//magicbell-token", headers: [Self.demo]).errorCode == "invalid_path")
    }

    @Test func fastCGI_adminCreateListRevokeAndAScraperThatSeesOnlyMetrics() throws {
        let stack = try FastCGIStack()
        let apache = stack.apache
        let created = try apache.admin("POST", "jwt/project", json: #"{"name":"apache","expiry":600}"#)
        #expect(created.status == 201, "\(created.text)")
        let tokenID = try #require(created.json?["token_id"] as? String)
        let listed = try apache.admin("GET", "jwt/project?limit=10")
        #expect(listed.status == 200 && ((listed.json?["data"] as? [[String: Any]])?.map { $0["id"] as? String } ?? []).contains(tokenID))
        #expect(try apache.admin("DELETE", "jwt/project/\(tokenID)").status == 200)
        #expect(try stack.fake.requests().map { "\($0["method"]!) \($0["path"]!)" } == [
            "POST /v2/jwt/project", "GET /v2/jwt/project", "DELETE /v2/jwt/project/\(tokenID)"])
        let audit = stack.responder.child.stderr.split(separator: "\n").filter { $0.contains(#""event":"admin""#) }
        #expect(audit.count == 3 && audit.allSatisfy { $0.contains(#""external_id":"admin""#) }, "\(audit)")

        let scraper = HTTP.basic("prometheus", "prometheus")
        let metrics = try apache.get("/magicbell-admin/metrics", headers: [scraper])
        #expect(metrics.status == 200 && metrics.text.contains("magicbell_fcgi_admin_requests_total"))
        #expect(try apache.get("/magicbell-admin/jwt/project", headers: [scraper]).status == 401)
        #expect(try apache.get("/magicbell-admin/metrics/../jwt/project", headers: [scraper]).status == 401)
        #expect(try apache.get("/magicbell-admin/metrics", headers: [HTTP.basic("admin", "admin")]).status == 401)
        #expect(try apache.get("/magicbell-admin/jwt/project", headers: [Self.demo]).status == 401)
        #expect(try stack.fake.requests().count == 3, "no refused request reached MagicBell")
    }

    @Test func fastCGI_aShortLoadHasNoErrors() throws {
        let stack = try FastCGIStack()
        let (rate, failed) = try Wrk.run(port: stack.apache.port, path: "/magicbell-token", headers: [Self.demo])
        #expect(failed == 0)
        #expect(rate > 0)
        print("apache mod_proxy_fcgi: \(Int(rate)) req/s")
    }

    struct CGIStack {
        let scratch: Scratch
        let apache: Apache

        init() throws {
            scratch = try Scratch()
            let secretFile = try scratch.secretKeyFile()
            apache = try Apache(scratch: scratch, recipe: "magicbell-cgi.conf", defines: ["MAGICBELL_PROGRAM": Project.binary],
                                replacing: ["pk_your_project_api_key": Project.apiKey, "/etc/magicbell-fcgi/secret-key": secretFile])
        }
    }

    @Test func cgi_theAuthenticatedUserGetsATokenAndNothingElseDoes() throws {
        let stack = try CGIStack()
        let response = try stack.apache.get("/magicbell-token", headers: [Self.demo] + Self.spoofed)
        #expect(response.status == 200, "\(response.text) \(readText(stack.apache.root + "/logs/error.log"))")
        let claims = try PyJWT.decode(try #require(response.json?["token"] as? String))
        #expect(claims["user_external_id"] as? String == "demo")
        #expect(claims["api_key"] as? String == Project.apiKey)
        // An ISINDEX query becomes the program's argv (RFC 3875 §4.4): still one CGI answer.
        #expect(try stack.apache.get("/magicbell-token?serve", headers: [Self.demo]).status == 200)
        #expect(try stack.apache.get("/magicbell-token", headers: [HTTP.basic("demo", "wrong")]).status == 401)
        #expect(try stack.apache.get("/magicbell-token").status == 401)
        #expect(try stack.apache.get("//magicbell-token", headers: [Self.demo]).errorCode == "invalid_path")
    }

    @Test func cgi_aShortLoadHasNoErrors() throws {
        let stack = try CGIStack()
        let (rate, failed) = try Wrk.run(port: stack.apache.port, path: "/magicbell-token", headers: [Self.demo], connections: 2)
        #expect(failed == 0)
        #expect(rate > 0)
        print("apache mod_cgid: \(Int(rate)) req/s")
    }
}
