import Glibc
import Foundation
import Testing
import TestSupport

/// The token endpoint through real nginx, with the project's own snippets,
/// and the real magicbell-fcgi binary, on loopback.
@Suite(.serialized) struct TokenEndpointTests {
    @Test func aShortLoadHasNoErrors() throws {
        let stack = try Stack()
        _ = try RecipeChecks.shortLoadWithoutErrors(stack.nginx, "nginx (FastCGI, keepalive 32)")
    }

    @Test func authBasicUserGetsATokenThatPyJWTVerifies() throws {
        let stack = try Stack(auth: .file("basic.conf"))
        let nginx = stack.nginx

        let before = Int(Date().timeIntervalSince1970)
        let response = try nginx.get("/magicbell-token", headers: [HTTP.basic("demo", "demo")])
        #expect(response.status == 200)
        #expect(response.header("Content-Type") == "application/json")
        #expect(response.header("Cache-Control") == "no-store")
        #expect(response.header("Pragma") == "no-cache")
        #expect(response.header("X-Content-Type-Options") == "nosniff")
        #expect(response.header("Content-Length") == String(response.body.count))
        #expect(response.header("Transfer-Encoding") == nil)

        let json = try #require(response.json)
        #expect(Set(json.keys) == ["token", "expires_at", "expires_in"])
        let token = try #require(json["token"] as? String)
        let claims = try PyJWT.decode(token)
        #expect(Set(claims.keys) == ["user_email", "user_external_id", "api_key", "iat", "exp"])
        #expect(claims["user_external_id"] as? String == "demo")
        #expect(claims["user_email"] is NSNull)
        #expect(claims["api_key"] as? String == Project.apiKey)
        let iat = try #require(claims["iat"] as? Int)
        #expect(iat >= before && iat <= before + 5)
        #expect(claims["exp"] as? Int == iat + 600)
        #expect(json["expires_at"] as? Int == iat + 600)
        #expect(json["expires_in"] as? Int == 600)
        // A token signed with another secret must not pass the same check.
        #expect(throws: (any Error).self) { try PyJWT.decode(token, secret: "another-secret") }
    }

    /// MAGICBELL_USER_KEY=on through nginx: the answer's user_key is what
    /// Python's hmac module computes over the external id nginx passed.
    @Test func theUserKeyIsTheHMACOfTheExternalIDNginxPassed() throws {
        let stack = try Stack(auth: .file("basic.conf"), environment: ["MAGICBELL_USER_KEY": "on"])
        let json = try #require(try stack.nginx.get("/magicbell-token", headers: [HTTP.basic("demo", "demo")]).json)
        #expect(Set(json.keys) == ["token", "expires_at", "expires_in", "user_key"])
        let independent = try runProcess("/usr/bin/python3", ["-c", """
            import base64, hashlib, hmac, sys
            print(base64.b64encode(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).digest()).decode())
            """, Project.secret, "demo"])
        #expect(independent.output.count == 44)
        #expect(json["user_key"] as? String == independent.output)
        // The token beside it is unchanged: the same claims, still verified.
        #expect(try PyJWT.decode(try #require(json["token"] as? String))["user_external_id"] as? String == "demo")
    }

    @Test func authBasicRejectsWrongOrMissingCredentials() throws {
        let stack = try Stack(auth: .file("basic.conf"))
        let nginx = stack.nginx
        #expect(try nginx.get("/magicbell-token").status == 401)
        #expect(try nginx.get("/magicbell-token", headers: [HTTP.basic("demo", "wrong")]).status == 401)
        #expect(try nginx.get("/magicbell-token", headers: [HTTP.basic("mallory", "demo")]).status == 401)
    }

    @Test func clientHeadersNamedLikeTheParamsChangeNothing() throws {
        let stack = try Stack(auth: .file("basic.conf"),
                              serverExtra: "underscores_in_headers on;")
        let nginx = stack.nginx
        let spoofed = [
            HTTP.basic("demo", "demo"),
            ("MAGICBELL_USER_EXTERNAL_ID", "mallory"), ("MAGICBELL_USER_EMAIL", "mallory@example.com"),
            ("Magicbell-User-External-Id", "mallory"), ("Magicbell-User-Email", "mallory@example.com"),
            ("X-Auth-Request-User", "mallory"), ("Remote-User", "mallory"),
        ]
        let response = try nginx.get("/magicbell-token", headers: spoofed)
        #expect(response.status == 200)
        let claims = try PyJWT.decode(try #require(response.json?["token"] as? String))
        #expect(claims["user_external_id"] as? String == "demo")
        #expect(claims["user_email"] is NSNull)
    }

    @Test func oauth2ProxyIdentityComesFromTheAuthAnswerNotTheClient() throws {
        let scratch = try Scratch()
        let authPort = try Sockets.freePort()
        let stack = try Stack(scratch: scratch, auth: .file("oauth2-proxy.conf"),
                              serverExtra: try AuthBackend.oauth2Locations(port: authPort), httpExtra: AuthBackend.server(port: authPort))
        let nginx = stack.nginx

        let alice = try nginx.get("/magicbell-token", headers: [("Cookie", "_oauth2_proxy=session-alice")])
        #expect(alice.status == 200)
        let claims = try PyJWT.decode(try #require(alice.json?["token"] as? String))
        #expect(claims["user_external_id"] as? String == "alice")
        #expect(claims["user_email"] as? String == "alice@example.com")

        // The client's own X-Auth-Request-* headers are not the auth answer's.
        let spoofing = try nginx.get("/magicbell-token", headers: [
            ("Cookie", "_oauth2_proxy=session-alice"),
            ("X-Auth-Request-User", "mallory"), ("X-Auth-Request-Email", "mallory@example.com"),
        ])
        let spoofedClaims = try PyJWT.decode(try #require(spoofing.json?["token"] as? String))
        #expect(spoofedClaims["user_external_id"] as? String == "alice")
        #expect(spoofedClaims["user_email"] as? String == "alice@example.com")

        let anonymous = try nginx.get("/magicbell-token", headers: [
            ("X-Auth-Request-User", "mallory"), ("X-Auth-Request-Email", "mallory@example.com"),
        ])
        #expect(anonymous.status == 401)
    }

    @Test func appSessionVariantAndTwoHundredConcurrentUsers() throws {
        let scratch = try Scratch()
        let authPort = try Sockets.freePort()
        let stack = try Stack(scratch: scratch, auth: .file("app-session.conf"),
                              serverExtra: try AuthBackend.appLocation(port: authPort), httpExtra: AuthBackend.server(port: authPort))
        let nginx = stack.nginx
        #expect(try nginx.get("/magicbell-token").status == 401)
        #expect(try nginx.get("/magicbell-token", headers: [("Cookie", "session=forged")]).status == 401)

        // 200 requests in flight at once, each for a different user: every
        // answer must be a valid token for exactly that user.
        let count = 200
        let results = Results(count: count)
        let start = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        for i in 0..<count {
            done.enter()
            Thread {
                start.wait()
                results.set(i, Result { try HTTP.request(port: nginx.port, "GET", "/magicbell-token", headers: [("Cookie", "session=user-\(i)")]) })
                done.leave()
            }.start()
        }
        for _ in 0..<count { start.signal() }
        #expect(done.wait(timeout: .now() + 60) == .success)

        for i in 0..<count {
            let response = try results.get(i).get()
            #expect(response.status == 200, "request \(i): \(response.status) \(response.text)")
            let token = try #require(response.json?["token"] as? String)
            let claims = try #require(Self.claims(token))
            #expect(claims["user_external_id"] as? String == "user-\(i)")
            #expect(claims["user_email"] as? String == "user-\(i)@example.com")
        }
        // And a sample through the independent library.
        let sample = try #require(try results.get(count - 1).get().json?["token"] as? String)
        #expect(try PyJWT.decode(sample)["user_external_id"] as? String == "user-\(count - 1)")
    }

    @Test func aStrayBasicHeaderIsNotAnIdentityEvenWithDebiansFastcgiParams() throws {
        // A site that forgot to set the identity params but includes Debian's
        // fastcgi_params, which fills REMOTE_USER from any Basic header.
        let stack = try Stack(auth: .custom("include fastcgi_params;\n"))
        let nginx = stack.nginx
        let response = try nginx.get("/magicbell-token", headers: [HTTP.basic("mallory", "anything")])
        #expect(response.status == 401)
        #expect(response.errorCode == "unauthenticated")
        #expect(response.header("Content-Type") == "application/json")
    }

    @Test func methodsPathsAndMountsThroughNginx() throws {
        let scratch = try Scratch()
        let responder = try Responder(scratch: scratch)
        // A site that mounts the token endpoint under /api/, and sends the
        // rest of /api/ to the responder without declaring a route.
        let mounted = """
        location = /api/magicbell-token {
            include snippets/magicbell-fastcgi.conf;
            fastcgi_param MAGICBELL_ROUTE token;
            fastcgi_param MAGICBELL_USER_EXTERNAL_ID "site-user";
        }
        location /api/ {
            include snippets/magicbell-fastcgi.conf;
            fastcgi_param MAGICBELL_USER_EXTERNAL_ID "site-user";
        }
        """
        let nginx = try Nginx(scratch: scratch, authVariant: .file("basic.conf"), upstream: "unix:\(responder.socketPath!)",
                              serverExtra: mounted)
        let auth = [HTTP.basic("demo", "demo")]

        #expect(try nginx.get("/magicbell-token", "POST", headers: auth).status == 200)
        for method in ["DELETE", "PUT", "PATCH", "OPTIONS", "PROPFIND"] {
            let response = try nginx.get("/magicbell-token", method, headers: auth)
            #expect(response.status == 405, "\(method)")
            #expect(response.header("Allow") == "GET, POST", "\(method)")
            #expect(response.errorCode == "method_not_allowed", "\(method)")
        }
        // nginx itself refuses methods that are not upper case.
        #expect(try nginx.get("/magicbell-token", "get", headers: auth).status == 400)
        let head = try nginx.get("/magicbell-token", "HEAD", headers: auth)
        #expect(head.status == 405)

        let api = try nginx.get("/api/magicbell-token")
        #expect(api.status == 200)
        #expect(try PyJWT.decode(try #require(api.json?["token"] as? String))["user_external_id"] as? String == "site-user")

        let missing = try nginx.get("/api/something-else")
        #expect(missing.status == 404)
        #expect(missing.errorCode == "not_found")
        #expect(missing.header("Content-Type") == "application/json")
    }

    @Test func tcpListener() throws {
        let scratch = try Scratch()
        let port = try Sockets.freePort()
        let responder = try Responder(scratch: scratch, arguments: ["serve", "--listen", "127.0.0.1:\(port)", "--workers", "2"],
                                      waitForSocket: false)
        #expect(Sockets.waitUntil { (try? Sockets.connectTCP(port: port)).map { close($0); return true } ?? false })
        let nginx = try Nginx(scratch: scratch, authVariant: .file("basic.conf"), upstream: "127.0.0.1:\(port)")
        #expect(try nginx.get("/magicbell-token", headers: [HTTP.basic("demo", "demo")]).status == 200)
        _ = responder
    }

    static func claims(_ token: String) -> [String: Any]? {
        let parts = token.split(separator: ".")
        guard parts.count == 3 else { return nil }
        var b64 = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        b64 += String(repeating: "=", count: (4 - b64.count % 4) % 4)
        return Data(base64Encoded: b64).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
    }
}

/// Results written from many threads.
final class Results: @unchecked Sendable {
    private var storage: [Result<HTTPResponse, any Error>?]
    private let lock = NSLock()
    init(count: Int) { storage = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ value: Result<HTTPResponse, any Error>) { lock.withLock { storage[i] = value } }
    func get(_ i: Int) -> Result<HTTPResponse, any Error> {
        lock.withLock { storage[i] ?? .failure(Sockets.Failure(description: "no result")) }
    }

    /// Starts `count` requests at once, each on a thread of its own; `done`
    /// is left when all have answered.
    static func inParallel(_ count: Int, _ request: @escaping @Sendable (Int) throws -> HTTPResponse) -> (Results, DispatchGroup) {
        let results = Results(count: count)
        let done = DispatchGroup()
        for i in 0..<count {
            done.enter()
            Thread {
                results.set(i, Result { try request(i) })
                done.leave()
            }.start()
        }
        return (results, done)
    }
}
