import Glibc
import Foundation
import Testing
import TestSupport

/// Issue 19 §2: web servers that pass a request body on as it arrives
/// (Apache mod_proxy_fcgi, HAProxy fcgi-app, lighttpd with
/// `server.stream-request-body = 2`) let one user's slow upload reach the
/// responder byte by byte. No such body may hold a worker another request
/// needs: a request still arriving is parked with its connection, and the
/// token route answers without waiting for a body it never reads.
@Suite(.serialized) struct SlowBodyTests {
    enum Streaming: String, CaseIterable, CustomTestStringConvertible {
        case apache = "apache mod_proxy_fcgi", haproxy = "haproxy fcgi-app", lighttpd = "lighttpd, stream-request-body = 2"

        var testDescription: String { rawValue }

        func start() throws -> RecipeChecks.Served<ServerProcess> {
            switch self {
            case .apache: return try ServerRecipeTests.FastCGI.apache.start()
            case .haproxy: return try ServerRecipeTests.FastCGI.haproxy.start()
            case .lighttpd:
                // A site-wide setting (lighttpd's default buffers bodies whole).
                return try RecipeChecks.Served { backend in
                    try Lighttpd(scratch: backend.scratch, recipe: "magicbell-fcgi.conf", variables: ["magicbell_socket": backend.socket],
                                 site: "server.stream-request-body = 2")
                }
            }
        }
    }

    /// An HTTP request whose body's first `burst` bytes are sent at once
    /// (HAProxy passes a small body on only once it is whole, a larger one
    /// as its buffer fills), then one byte every `interval`, by a thread of
    /// its own; the bytes sent so far are counted.
    final class SlowUpload: @unchecked Sendable {
        // @unchecked: `sent` and `stopped` are guarded by `lock`; `fd` and `body` are set in init.
        let fd: Int32
        private let body: [UInt8]
        private let lock = NSLock()
        private var sent = 0
        private var stopped = false

        init(port: UInt16, path: String, user: (String, String), body: String, contentType: String? = nil,
             burst: Int, interval: Double) throws {
            fd = try Sockets.connectTCP(port: port, timeout: 15)
            self.body = Array(body.utf8)
            var head = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
            head += "\(HTTP.basic(user.0, user.1).0): \(HTTP.basic(user.0, user.1).1)\r\n"
            if let contentType { head += "Content-Type: \(contentType)\r\n" }
            head += "Content-Length: \(self.body.count)\r\n\r\n"
            try Sockets.writeAll(fd, Array(head.utf8) + self.body.prefix(burst))
            sent = burst
            let thread = Thread { [self] in
                for byte in self.body.dropFirst(burst) {
                    guard lock.withLock({ !stopped }) else { return }
                    guard (try? Sockets.writeAll(fd, [byte])) != nil else { return }
                    lock.withLock { sent += 1 }
                    usleep(UInt32(interval * 1_000_000))
                }
            }
            thread.start()
        }

        /// Body bytes sent so far.
        var bytesSent: Int { lock.withLock { sent } }
        var bodyLength: Int { body.count }

        /// The answer, read to the server's close (within the socket's timeout).
        func answer() throws -> HTTPResponse { try HTTP.parse(try Sockets.readToEnd(fd)) }

        func stop() {
            lock.withLock { stopped = true }
            shutdown(fd, Int32(SHUT_RDWR))
        }

        deinit { close(fd) }
    }

    @Test(arguments: Streaming.allCases) func slowUploadsHoldNoWorkerAndTheTokenRouteAnswersBeforeTheBody(_ server: Streaming) throws {
        let stack = try server.start()
        let port = stack.server.port
        // As many slow uploads of each kind as the responder has workers (4,
        // RecipeChecks.Backend): token POSTs whose body it never reads, and
        // admin creates whose body it needs (their last 30 to 60 bytes over
        // 3 to 6 s, within --io-timeout's 10 s).
        let tokenBody = String(repeating: "x", count: 20_000)
        let createBody = #"{"name":"slow"}"# + String(repeating: " ", count: 19_985)
        var tokens: [SlowUpload] = [], creates: [SlowUpload] = []
        defer { (tokens + creates).forEach { $0.stop() } }
        for i in 0..<4 {
            tokens.append(try SlowUpload(port: port, path: "/magicbell-token", user: ("demo", "demo"),
                                          body: tokenBody, burst: 19_940, interval: 0.25))
            creates.append(try SlowUpload(port: port, path: "/magicbell-admin/jwt/project", user: ("admin", "admin"),
                                          body: createBody, contentType: "application/json",
                                           burst: 19_970 - 10 * i, interval: 0.1)) // one at a time: the admin gate allows 2 at once
        }
        // Time for every upload's head and first bytes to reach the responder.
        usleep(800_000)

        // Another user's token, while all of them are still uploading: within 1 s
        // (before, it waited for --io-timeout to cut the uploads off: 8–10 s).
        let started = Date()
        let fd = try Sockets.connectTCP(port: port, timeout: 1)
        defer { close(fd) }
        try Sockets.writeAll(fd, Array(("GET /magicbell-token HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            + "\(HTTP.basic("alice", "alice").0): \(HTTP.basic("alice", "alice").1)\r\n\r\n").utf8))
        let raw = try Sockets.readToEnd(fd) // throws when 1 s passes without the answer
        print("slow bodies: \(server.rawValue): another user's token in \(Int(Date().timeIntervalSince(started) * 1000)) ms "
              + "while 4 token uploads and 4 creates trickle (4 workers)")
        let alice = try HTTP.parse(raw)
        #expect(alice.status == 200, "\(alice.text)")
        let claims = try PyJWT.decode(try #require(alice.json?["token"] as? String))
        #expect(claims["user_external_id"] as? String == "alice")

        // The slow token POSTs are answered before their bodies end: the route never reads one.
        for upload in tokens {
            let answer = try upload.answer()
            #expect(upload.bytesSent < upload.bodyLength, "answered only after the whole body")
            #expect(answer.status == 200, "\(answer.text)")
            let claims = try PyJWT.decode(try #require(answer.json?["token"] as? String))
            #expect(claims["user_external_id"] as? String == "demo")
        }
        // The slow creates were parked, not dropped: each is served once its body is in.
        for upload in creates {
            let answer = try upload.answer()
            #expect(answer.status == 201, "\(answer.text) \(stack.backend.responder.child.stderr.suffix(2000))")
        }
        let posts = try stack.backend.fake.requests().filter { $0["method"] as? String == "POST" }
        #expect(posts.count == 4, "\(posts)")
    }

    // MARK: The same, straight on the responder's socket

    typealias F = FastCGIClient

    /// `serve` with one worker: a request that held it would hold everything.
    static func oneWorker(_ scratch: Scratch, ioTimeout: String = "10",
                          environment: [String: String] = Responder.environment()) throws -> Responder {
        try Responder(scratch: scratch, arguments: ["serve", "--socket", scratch.file("fcgi.sock"), "--workers", "1", "--io-timeout", ioTimeout],
                      environment: environment)
    }

    static func post(_ route: String, _ path: String, user: String? = nil, length: Int) -> [UInt8] {
        var params = [("REQUEST_METHOD", "POST"), ("DOCUMENT_URI", path), ("MAGICBELL_ROUTE", route), ("CONTENT_LENGTH", "\(length)"),
                      ("CONTENT_TYPE", "application/json")]
        if let user { params.append(("MAGICBELL_USER_EXTERNAL_ID", user)) }
        return F.begin(keepConnection: true) + F.record(F.params, F.encodeParams(params)) + F.record(F.params, [])
    }

    @Test func aTokenPostIsAnsweredBeforeItsBodyAndTheConnectionGoesOn() throws {
        let scratch = try Scratch()
        let responder = try Self.oneWorker(scratch)
        let fd = try Sockets.connectUnix(path: try #require(responder.socketPath), timeout: 5)
        defer { close(fd) }
        // Params whole, 10 of 1000 body bytes: the token comes now.
        try Sockets.writeAll(fd, Self.post("token", "/magicbell-token", user: "early", length: 1000) + F.record(F.stdin, Array(repeating: 120, count: 10)))
        let answer = String(decoding: try F.readResponse(fd), as: UTF8.self)
        #expect(answer.hasPrefix("Status: 200 OK"), "\(answer)")
        let token = try #require(answer.split(separator: "\"").drop { $0 != "token" }.dropFirst(2).first)
        #expect(try PyJWT.decode(String(token))["user_external_id"] as? String == "early")
        // The rest of that body is read and dropped, then the next request on
        // the same connection is served (by the one worker: it was not held).
        try Sockets.writeAll(fd, F.record(F.stdin, Array(repeating: 120, count: 990)) + F.record(F.stdin, []))
        try Sockets.writeAll(fd, F.begin(keepConnection: true) + F.record(F.params, HostileFastCGITests.tokenParams)
            + F.record(F.params, []) + F.record(F.stdin, []))
        #expect(String(decoding: try F.readResponse(fd), as: UTF8.self).hasPrefix("Status: 200 OK"))
        #expect(!responder.child.stderr.contains(#""level":"warning""#), "\(responder.child.stderr)")
    }

    @Test func anAdminPostIsParkedUntilItsBodyIsWholeAndHoldsNoWorker() throws {
        let scratch = try Scratch()
        let fake = try FakeMagicBell()
        let responder = try Self.oneWorker(scratch, environment: Responder.environment(Responder.upstream(fake)))
        let socket = try #require(responder.socketPath)
        let body = Array(#"{"name":"parked"}"#.utf8)
        let slow = try Sockets.connectUnix(path: socket, timeout: 5)
        defer { close(slow) }
        try Sockets.writeAll(slow, Self.post("admin", "/magicbell-admin/jwt/project", length: body.count) + F.record(F.stdin, Array(body.prefix(5))))
        usleep(200_000)
        // The only worker is free for another connection meanwhile.
        let other = try Sockets.connectUnix(path: socket, timeout: 2)
        defer { close(other) }
        try Sockets.writeAll(other, F.begin() + F.record(F.params, HostileFastCGITests.tokenParams) + F.record(F.params, []) + F.record(F.stdin, []))
        #expect(String(decoding: try F.readResponse(other), as: UTF8.self).hasPrefix("Status: 200 OK"))
        #expect(try fake.requests().isEmpty, "nothing forwarded before the body is whole")
        // The rest of the body, in two records: the create goes through once.
        try Sockets.writeAll(slow, F.record(F.stdin, Array(body.dropFirst(5))))
        usleep(100_000)
        try Sockets.writeAll(slow, F.record(F.stdin, []))
        let created = String(decoding: try F.readResponse(slow), as: UTF8.self)
        #expect(created.hasPrefix("Status: 201 Created"), "\(created)")
        #expect(try fake.requests().map { "\($0["method"]!) \($0["path"]!)" } == ["POST /v2/jwt/project"])
    }

    @Test func aRequestNotWholeWithinTheIOTimeoutIsClosedWhileParked() throws {
        let scratch = try Scratch()
        let responder = try Self.oneWorker(scratch, ioTimeout: "1")
        let fd = try Sockets.connectUnix(path: try #require(responder.socketPath), timeout: 5)
        defer { close(fd) }
        try Sockets.writeAll(fd, Self.post("admin", "/magicbell-admin/jwt/project", length: 100) + F.record(F.stdin, [123]))
        let started = Date()
        #expect(((try? Sockets.readToEnd(fd)) ?? []).isEmpty, "closed without an answer")
        let waited = Date().timeIntervalSince(started)
        #expect(waited > 0.5 && waited < 4, "closed after \(waited) s, for --io-timeout 1")
        #expect(Sockets.waitUntil(timeout: 2) { responder.child.stderr.contains("request incomplete after 1.0 s") }, "\(responder.child.stderr)")
    }

    /// A web server that gives up a body once it has the answer and sends
    /// the next request on the same connection (found by an independent
    /// review): that request has its own deadline and is answered early too.
    @Test func theNextRequestAfterAnEarlyAnswerHasItsOwnDeadline() throws {
        let scratch = try Scratch()
        let responder = try Self.oneWorker(scratch, ioTimeout: "2")
        let fd = try Sockets.connectUnix(path: try #require(responder.socketPath), timeout: 1.5)
        defer { close(fd) }
        for round in 0..<3 {
            // 3 of 1000 body bytes, and never the rest.
            try Sockets.writeAll(fd, Self.post("token", "/magicbell-token", user: "r\(round)", length: 1000) + F.record(F.stdin, Array("abc".utf8)))
            let answer = String(decoding: try F.readResponse(fd), as: UTF8.self)
            #expect(answer.hasPrefix("Status: 200 OK"), "round \(round): \(answer)")
            usleep(1_200_000) // 3.6 s in all: past the first request's deadline, within each one's own
        }
        #expect(!responder.child.stderr.contains("incomplete"), "\(responder.child.stderr)")
    }

    /// The early answer's question and the answer read the same params:
    /// they are parsed once (found by an independent review when libfcgi
    /// parsed them a second time: `admin\0` was not "admin" to the question,
    /// and was to the answer, which cut values at a NUL). A route with a NUL
    /// is no route: refused at once as undeclared, whatever its body.
    @Test func aRouteWithANulIsNoRouteToTheQuestionAndToTheAnswer() throws {
        let scratch = try Scratch()
        let responder = try Self.oneWorker(scratch)
        let fd = try Sockets.connectUnix(path: try #require(responder.socketPath), timeout: 5)
        defer { close(fd) }
        let params = F.encodeParams([("REQUEST_METHOD", "POST"), ("DOCUMENT_URI", "/magicbell-admin/jwt/project"),
                                     ("MAGICBELL_ROUTE", "admin\u{0}"), ("CONTENT_LENGTH", "17"), ("CONTENT_TYPE", "application/json")])
        try Sockets.writeAll(fd, F.begin() + F.record(F.params, params) + F.record(F.params, []) + F.record(F.stdin, Array("{\"na".utf8)))
        let answer = String(decoding: try F.readResponse(fd), as: UTF8.self)
        #expect(answer.hasPrefix("Status: 404 Not Found") && answer.contains("not_found"), "\(answer)")
        #expect(Sockets.waitUntil(timeout: 2) { responder.child.stderr.contains("the location declares no MAGICBELL_ROUTE") }, "\(responder.child.stderr)")
    }
}
