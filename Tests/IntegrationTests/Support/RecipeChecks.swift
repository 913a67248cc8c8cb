import Glibc
import Foundation
import Testing
import TestSupport

/// What every server's recipe must guarantee, checked the same way for each
/// (issue 13): a token for the user the server authenticated and for no one
/// else, the admin route's create → list → revoke, a scraper that sees the
/// metrics and nothing else, and a short load without errors.
enum RecipeChecks {
    static let demo = HTTP.basic("demo", "demo")
    /// Client headers named like every param a recipe sets or the responder reads.
    static let spoofed = [
        ("MagicBell-User-External-Id", "mallory"), ("MagicBell-User-Email", "mallory@example.com"),
        ("X-Remote-User", "mallory"), ("Remote-User", "mallory"), ("MagicBell-Route", "admin"),
        ("Document-Uri", "/magicbell-admin/jwt/project"), ("Script-Name", "/magicbell-admin/jwt/project"),
        ("MagicBell-Secret-Key-File", "/etc/passwd"), ("Gateway-Interface", "CGI/1.1"),
    ]

    /// `serve` on a Unix socket anyone can reach (as root, a server's
    /// children may run as www-data), with the fake MagicBell behind it.
    struct Backend {
        let scratch: Scratch
        let fake: FakeMagicBell
        let responder: Responder
        var socket: String { scratch.file("fcgi.sock") }

        init() throws {
            scratch = try Scratch()
            fake = try FakeMagicBell()
            responder = try Responder(scratch: scratch, arguments: ["serve", "--socket", scratch.file("fcgi.sock"),
                                                                    "--socket-mode", "0666", "--workers", "4"],
                                      environment: Responder.environment(Responder.upstream(fake)))
        }
    }

    /// A server with its recipe in front of `Backend`, which lives as long as the server.
    struct Served<Server: WebServer> {
        let backend: Backend
        let server: Server

        init(_ start: (Backend) throws -> Server) throws {
            backend = try Backend()
            server = try start(backend)
        }
    }

    /// The token route: the authenticated name, whatever the client's headers say.
    static func tokenForTheAuthenticatedUserOnly(_ server: some WebServer, log: @autoclosure () -> String) throws {
        let response = try server.get("/magicbell-token", headers: [demo] + spoofed)
        #expect(response.status == 200, "\(response.text) \(log())")
        let claims = try PyJWT.decode(try #require(response.json?["token"] as? String))
        #expect(claims["user_external_id"] as? String == "demo", "the name the server authenticated")
        #expect(claims["user_email"] is NSNull)
        #expect(claims["api_key"] as? String == Project.apiKey)
        #expect(response.header("Cache-Control") == "no-store")

        #expect(try server.get("/magicbell-token").status == 401)
        #expect(try server.get("/magicbell-token", headers: [HTTP.basic("demo", "wrong")]).status == 401)
        #expect(try server.get("/magicbell-token", headers: [HTTP.basic("admin", "admin")]).status == 401, "admins are not token users")
        // Paths the server did not match, or matched only after resolving them: never a token.
        #expect(try server.get("/magicbell-tokenx", headers: [demo]).status == 404)
        try neverAToken(server, "//magicbell-token")
        try neverAToken(server, "/magicbell-token/")
    }

    /// A path that is not exactly the token route: without a password never
    /// a token; with one, a 404 from the server, a 400 from the server or an
    /// `invalid_path` from the responder (a server that matched it only after resolving `//`, `.`
    /// or `..`), or, from a server that cleans the path before matching it
    /// and authenticating (Caddy), a token for the authenticated user only.
    static func neverAToken(_ server: some WebServer, _ path: String) throws {
        let anonymous = try server.get(path, headers: spoofed)
        #expect(anonymous.status != 200 && anonymous.json?["token"] == nil, "\(path) without a password: \(anonymous.status)")
        let response = try server.get(path, headers: [demo] + spoofed)
        switch response.status {
        case 404: break
        case 400: // the server's own (not JSON), or the responder's
            #expect(response.json == nil || response.errorCode == "invalid_path", "\(path): \(response.text.prefix(200))")
        case 200:
            let claims = try PyJWT.decode(try #require(response.json?["token"] as? String))
            #expect(claims["user_external_id"] as? String == "demo", "\(path)")
        default: Issue.record("\(path): \(response.status) \(response.text.prefix(200))")
        }
    }

    /// Issue 19 §3 and §4. An absolute-form target, which an HTTP/1.1
    /// server must accept (RFC 9112 §3.2.2), is served by its path (Apache
    /// and HAProxy pass it on as it came, in `REQUEST_URI`), and what the
    /// path check refuses stays refused. No answer to HEAD has a body (RFC
    /// 9110 §9.3.2): HAProxy turns one that has into a 502.
    ///
    /// h2o 2.2.5 matches an absolute-form target against none of its paths
    /// (its own 404): `absoluteFormRouted: false` checks only that no token comes of it.
    static func absoluteFormTargetsAndHEAD(_ server: some WebServer, absoluteFormRouted: Bool = true) throws {
        let origin = "http://127.0.0.1:\(server.port)"
        if absoluteFormRouted {
            let absolute = try server.get(origin + "/magicbell-token", headers: [demo] + spoofed)
            #expect(absolute.status == 200, "\(absolute.status) \(absolute.text.prefix(200))")
            let claims = try PyJWT.decode(try #require(absolute.json?["token"] as? String))
            #expect(claims["user_external_id"] as? String == "demo")
            let listed = try server.get(origin + "/magicbell-admin/jwt/project", headers: [HTTP.basic("admin", "admin")])
            #expect(listed.status == 200, "\(listed.status) \(listed.text.prefix(200))")
            #expect(try server.get(origin + "/magicbell-token").status == 401)
        } else {
            try neverAToken(server, origin + "/magicbell-token")
        }
        try neverAToken(server, origin + "//magicbell-token")
        try neverAToken(server, origin + "/magicbell-token/")
        try neverAToken(server, "http://demo@127.0.0.1:\(server.port)/magicbell-token")

        // curl -I, on a kept connection (with Connection: close, HAProxy let the body through).
        for (path, user) in [("/magicbell-token", "demo:demo"), ("/magicbell-admin/jwt/project", "admin:admin"),
                             ("/magicbell-admin/metrics", "prometheus:prometheus")] {
            let head = try runProcess("/usr/bin/curl", ["-sS", "-I", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code}", "-u", user,
                                                        origin + path, origin + path])
            #expect(head.stdout == "405405", "HEAD \(path), twice on one connection: \(head.stdout) \(head.stderr)")
        }
    }

    static func adminCreateListRevokeAndAScraperThatSeesOnlyMetrics(_ server: some WebServer, _ backend: Backend) throws {
        let created = try server.admin("POST", "jwt/project", json: #"{"name":"recipe","expiry":600}"#)
        #expect(created.status == 201, "\(created.text)")
        let tokenID = try #require(created.json?["token_id"] as? String)
        let listed = try server.admin("GET", "jwt/project?limit=10")
        #expect(listed.status == 200 && ((listed.json?["data"] as? [[String: Any]])?.map { $0["id"] as? String } ?? []).contains(tokenID))
        #expect(try server.admin("DELETE", "jwt/project/\(tokenID)").status == 200)
        #expect(try backend.fake.requests().map { "\($0["method"]!) \($0["path"]!)" } == [
            "POST /v2/jwt/project", "GET /v2/jwt/project", "DELETE /v2/jwt/project/\(tokenID)"])
        let audit = backend.responder.child.stderr.split(separator: "\n").filter { $0.contains(#""event":"admin""#) }
        #expect(audit.count == 3 && audit.allSatisfy { $0.contains(#""external_id":"admin""#) }, "\(audit)")

        let scraper = HTTP.basic("prometheus", "prometheus")
        let metrics = try server.get("/magicbell-admin/metrics", headers: [scraper])
        #expect(metrics.status == 200 && metrics.text.contains("magicbell_fcgi_admin_requests_total"))
        #expect(try server.get("/magicbell-admin/jwt/project", headers: [scraper]).status == 401)
        #expect(try server.get("/magicbell-admin/metrics/../jwt/project", headers: [scraper]).status == 401)
        #expect(try server.get("/magicbell-admin/metrics", headers: [HTTP.basic("admin", "admin")]).status == 401)
        #expect(try server.get("/magicbell-admin/jwt/project", headers: [demo] + spoofed).status == 401)
        #expect(try backend.fake.requests().count == 3, "no refused request reached MagicBell")
    }

    /// Issue 20 §3: the health route answers without a login, never
    /// cached, whatever identity the client claims; HEAD has the head alone
    /// (twice on one connection: a body there would be read as the next
    /// answer); other methods 405.
    static func healthWithoutALogin(_ server: some WebServer, log: @autoclosure () -> String) throws {
        let health = try server.get("/magicbell-health", headers: spoofed)
        #expect(health.status == 200, "\(health.text) \(log())")
        #expect(health.text == #"{"status":"ok"}"#)
        #expect(health.header("Content-Type") == "application/json")
        #expect(health.headers.filter { $0.name.lowercased() == "cache-control" }.map(\.value) == ["no-store"])
        #expect(health.header("Expires") == nil)
        #expect(try server.get("/magicbell-health", headers: [demo]).status == 200, "a login changes nothing")
        let posted = try server.get("/magicbell-health", "POST")
        #expect(posted.status == 405 && posted.errorCode == "method_not_allowed" && posted.header("Allow") == "GET, HEAD",
                "\(posted.status) \(posted.text.prefix(200))")
        let url = "http://127.0.0.1:\(server.port)/magicbell-health"
        let head = try runProcess("/usr/bin/curl", ["-sS", "-I", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code}", url, url])
        #expect(head.stdout == "200200", "HEAD, twice on one connection: \(head.stdout) \(head.stderr)")
        // Nothing but the health answer without a login, whatever the path
        // (h2o serves a path's subpaths too: /magicbell-health/ is health).
        for path in ["/magicbell-healthx", "/magicbell-health/", "/magicbell-health/../magicbell-token",
                     "/magicbell-health/magicbell-admin/jwt/project", "/magicbell-health%2F..%2Fmagicbell-token"] {
            let other = try server.get(path, headers: spoofed)
            #expect(other.status != 200 || other.text == #"{"status":"ok"}"#, "\(path): \(other.status) \(other.text.prefix(200))")
        }
    }

    /// A CGI recipe's token route, and an ISINDEX query (RFC 3875 §4.4: the
    /// server passes it as argv) that must not change what the program does.
    static func cgiTokenForTheAuthenticatedUserOnly(_ server: some WebServer, log: @autoclosure () -> String) throws {
        let response = try server.get("/magicbell-token", headers: [demo] + spoofed)
        #expect(response.status == 200, "\(response.text) \(log())")
        let claims = try PyJWT.decode(try #require(response.json?["token"] as? String))
        #expect(claims["user_external_id"] as? String == "demo")
        #expect(claims["api_key"] as? String == Project.apiKey)
        #expect(try server.get("/magicbell-token?serve", headers: [demo]).status == 200)
        #expect(try server.get("/magicbell-token", headers: [HTTP.basic("demo", "wrong")]).status == 401)
        #expect(try server.get("/magicbell-token").status == 401)
        try neverAToken(server, "//magicbell-token")
    }

    /// A wrk load on the token route (2 s; `MAGICBELL_LOAD_SECONDS` for
    /// bench/servers): prints and returns requests per second.
    static func shortLoadWithoutErrors(_ server: some WebServer, _ name: String, connections: Int = 8) throws -> Double {
        let seconds = ProcessInfo.processInfo.environment["MAGICBELL_LOAD_SECONDS"].flatMap(Int.init) ?? 2
        let (rate, failed) = try Wrk.run(port: server.port, path: "/magicbell-token", headers: [demo], seconds: seconds,
                                         connections: connections)
        #expect(failed == 0, "\(name): \(failed) failed requests")
        #expect(rate > 0)
        print("load: \(name): \(Int(rate)) req/s (wrk -t1 -c\(connections) -d\(seconds)s)")
        return rate
    }
}
