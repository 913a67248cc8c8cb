import Foundation
import Glibc
import Testing
import TestSupport
@testable import CurlHTTP

/// `scripted_server.py`, started for one test: every connection gets the same scripted answer.
final class ScriptedServer: @unchecked Sendable {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("scripted_server.py").path
    let process = Process()
    let port: Int
    let requestsFile: String

    /// `steps`: the JSON list the script plays (see scripted_server.py).
    init(_ steps: [[String: Any]], tls: TestCertificates.Pair? = nil) throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("scripted-\(UUID().uuidString)").path
        requestsFile = base + ".requests"
        var arguments = ["python3", Self.script, "--port-file", base + ".port", "--requests-file", requestsFile]
        if let tls { arguments += ["--tls-cert", tls.certificate, "--tls-key", tls.key] }
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let input = Pipe()
        process.standardInput = input
        try process.run()
        input.fileHandleForWriting.write(try JSONSerialization.data(withJSONObject: steps))
        try input.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: base + ".port") && Date() < deadline { usleep(10_000) }
        port = Int((try? String(contentsOfFile: base + ".port", encoding: .utf8)) ?? "") ?? 0
        try? FileManager.default.removeItem(atPath: base + ".port")
        guard port > 0 else { throw CocoaError(.featureUnsupported) }
    }

    deinit {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: requestsFile)
    }

    /// The requests received, oldest first: head, body, and the number of
    /// the connection each came on.
    func requests() -> [(head: String, body: String, connection: Int)] {
        let text = (try? String(contentsOfFile: requestsFile, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap {
            guard let object = try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] else { return nil }
            return (object["head"] ?? "", object["body"] ?? "", Int(object["connection"] ?? "") ?? 0)
        }
    }
}

@Suite struct ClientTests {
    nonisolated(unsafe) static let ok: [[String: Any]] = [["send": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Request-Id: r1\r\n\r\nok"]]

    static func get(_ target: String = "/v2/jwt/project?limit=1") -> HTTPRequestMessage {
        HTTPRequestMessage(method: "GET", target: target, fields: [HTTPField(name: "Authorization", value: "Bearer t")])
    }

    @Test func sendsTheRequestAsGivenAndReadsTheAnswer() throws {
        let server = try ScriptedServer(Self.ok)
        let client = CurlClient()
        let endpoint = HTTPEndpoint(secure: false, host: "127.0.0.1", port: server.port)
        let answer = try client.exchange(Self.get(), with: endpoint, timeout: 5, bodyLimit: 1024)
        #expect(answer.status == 200 && answer.body == Array("ok".utf8) && answer.field("x-request-id") == "r1")

        let post = HTTPRequestMessage(method: "POST", target: "/v2/jwt/project", fields: [], body: Array(#"{"name":"a"}"#.utf8))
        _ = try client.exchange(post, with: endpoint, timeout: 5, bodyLimit: 1024)
        let empty = HTTPRequestMessage(method: "POST", target: "/v2/jwt/project", fields: [], body: nil)
        _ = try client.exchange(empty, with: endpoint, timeout: 5, bodyLimit: 1024)
        let delete = HTTPRequestMessage(method: "DELETE", target: "/v2/jwt/project/a%2Fb/..", fields: [])
        _ = try client.exchange(delete, with: endpoint, timeout: 5, bodyLimit: 1024)
        let seen = server.requests()
        #expect(seen.count == 4)
        let lines = seen[0].head.components(separatedBy: "\r\n")
        #expect(lines.first == "GET /v2/jwt/project?limit=1 HTTP/1.1")
        #expect(lines.contains("Host: 127.0.0.1:\(server.port)") && lines.contains("Authorization: Bearer t"), "\(lines)")
        #expect(!seen[0].head.lowercased().contains("expect:"), "\(lines)")
        #expect(seen[1].head.hasPrefix("POST /v2/jwt/project HTTP/1.1\r\n") && seen[1].head.contains("\r\nContent-Length: 12"))
        #expect(seen[1].body == #"{"name":"a"}"# && !seen[1].head.lowercased().contains("expect:"))
        #expect(seen[2].head.hasPrefix("POST ") && seen[2].head.contains("\r\nContent-Length: 0"), "\(seen[2].head)")
        // The target as given: libcurl neither decodes %2F nor resolves "..".
        #expect(seen[3].head.hasPrefix("DELETE /v2/jwt/project/a%2Fb/.. HTTP/1.1\r\n"), "\(seen[3].head)")

        // A name is looked up within the deadline; IPv6 literals get brackets in Host.
        let byName = try client.exchange(Self.get(), with: HTTPEndpoint(secure: false, host: "localhost", port: server.port),
                                         timeout: 5, bodyLimit: 1024)
        #expect(byName.status == 200)
        #expect(HTTPEndpoint(secure: true, host: "::1", port: 8443).authority == "[::1]:8443")
        #expect(HTTPEndpoint(secure: true, host: "api.magicbell.com").authority == "api.magicbell.com")
        #expect(CurlClient.loadedVersion != nil)
    }

    /// Serve mode's calls share kept connections; a POST never rides one
    /// and leaves none behind (libcurl would re-send it if a kept connection
    /// died before the answer).
    @Test func getsReuseAConnectionAndAPostIsSentOnceOnAFreshOne() throws {
        let server = try ScriptedServer([["keep_alive": true, "drop_reused_post": true],
                                         ["send": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]])
        let client = CurlClient()
        let endpoint = HTTPEndpoint(secure: false, host: "127.0.0.1", port: server.port)
        for _ in 0..<3 { #expect(try client.exchange(Self.get(), with: endpoint, timeout: 5, bodyLimit: 1024).status == 200) }
        #expect(Set(server.requests().map(\.connection)) == [1], "three GETs on one connection: \(server.requests().map(\.connection))")

        // The server closes a kept connection as a POST arrives on it: sent
        // on such a connection, the create would be made twice.
        let post = HTTPRequestMessage(method: "POST", target: "/v2/jwt/project", fields: [], body: Array("{}".utf8))
        #expect(try client.exchange(post, with: endpoint, timeout: 5, bodyLimit: 1024).status == 200)
        #expect(try client.exchange(Self.get(), with: endpoint, timeout: 5, bodyLimit: 1024).status == 200)
        let seen = server.requests()
        #expect(seen.filter { $0.head.hasPrefix("POST ") }.count == 1, "the create was sent once")
        let postConnection = seen.first { $0.head.hasPrefix("POST ") }?.connection
        #expect(postConnection == 2 && seen.last?.connection == 1, "the POST on a connection of its own: \(seen.map(\.connection))")

        // A client that keeps nothing (CGI: one call per process) opens one per call.
        let oneShot = CurlClient(reuseConnections: false)
        let before = Set(server.requests().map(\.connection))
        for _ in 0..<2 { _ = try oneShot.exchange(Self.get(), with: endpoint, timeout: 5, bodyLimit: 1024) }
        #expect(Set(server.requests().map(\.connection)).subtracting(before).count == 2)
    }

    @Test func aFieldThatWouldSplitTheRequestIsNeverSent() throws {
        let server = try ScriptedServer(Self.ok)
        let endpoint = HTTPEndpoint(secure: false, host: "127.0.0.1", port: server.port)
        for field in [HTTPField(name: "Authorization", value: "Bearer t\r\nX-Injected: 1"), HTTPField(name: "Bad Name", value: "v"),
                      HTTPField(name: "X", value: "a\u{0}b")] {
            var request = Self.get()
            request.fields = [field]
            #expect(throws: ExchangeFailure.self) { try CurlClient().exchange(request, with: endpoint, timeout: 5, bodyLimit: 1024) }
        }
        #expect(throws: ExchangeFailure.self) { try CurlClient().exchange(Self.get("/a b"), with: endpoint, timeout: 5, bodyLimit: 1024) }
        // A host that would move in the URL libcurl parses (user@host, a path) is never sent to.
        for host in ["127.0.0.1@evil.example", "127.0.0.1/x", "127.0.0.1?x", "127.0.0.1#x"] {
            #expect(throws: ExchangeFailure.self) {
                try CurlClient().exchange(Self.get(), with: HTTPEndpoint(secure: false, host: host, port: server.port), timeout: 5, bodyLimit: 1024)
            }
        }
        #expect(server.requests().isEmpty)
    }

    @Test func theDeadlineHoldsAgainstATrickleAndAHang() throws {
        // One byte every 50 ms: each read succeeds, so only a deadline over the whole exchange stops it.
        let trickle = try ScriptedServer([["trickle": "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + String(repeating: "x", count: 100), "every": 0.05]])
        var start = Date()
        #expect(throws: ExchangeFailure.timedOut) {
            try CurlClient().exchange(Self.get(), with: HTTPEndpoint(secure: false, host: "127.0.0.1", port: trickle.port), timeout: 1, bodyLimit: 1024)
        }
        #expect(Date().timeIntervalSince(start) < 1.5)

        let hang = try ScriptedServer([["hang": true]])
        start = Date()
        #expect(throws: ExchangeFailure.timedOut) {
            try CurlClient().exchange(Self.get(), with: HTTPEndpoint(secure: false, host: "127.0.0.1", port: hang.port), timeout: 0.5, bodyLimit: 1024)
        }
        #expect(Date().timeIntervalSince(start) < 1)
    }

    /// Runs an exchange on a thread, cancels it after `after` seconds once
    /// `ready()` holds, and returns how it ended ("cancelled", "answered 200", …) and when.
    static func cancelled(after: Double, port: Int, timeout: Double,
                          ready: () -> Bool = { true }) -> (outcome: String?, seconds: Double) {
        let cancellation = Cancellation()
        let outcome = SetOnce()
        let thread = Thread {
            do {
                let answer = try CurlClient().exchange(Self.get(), with: HTTPEndpoint(secure: false, host: "127.0.0.1", port: port),
                                                          timeout: timeout, bodyLimit: 1024, cancellation: cancellation)
                outcome.set("answered \(answer.status)")
            } catch {
                outcome.set("\(error)")
            }
        }
        let start = Date()
        thread.start()
        usleep(UInt32(after * 1_000_000))
        while !ready() && Date().timeIntervalSince(start) < 10 { usleep(10_000) }
        cancellation.cancel()
        while outcome.value == nil && Date().timeIntervalSince(start) < timeout + 5 { usleep(10_000) }
        return (outcome.value, Date().timeIntervalSince(start))
    }

    @Test func cancellationEndsTheCallAtOnceUntilTheRequestIsSent() throws {
        // Still connecting (a port that never answers): cancelled at once.
        let (dead, keep) = try Blackhole.listener()
        defer { keep.forEach { close($0) } }
        let connecting = Self.cancelled(after: 0.2, port: dead, timeout: 30)
        #expect(connecting.outcome == "cancelled")
        #expect(connecting.seconds < 2, "cancelled, not timed out at 30 s")

        // Sent: the server may have acted on it, so its answer is waited for.
        let slow = try ScriptedServer([["sleep": 1.0], ["send": "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}"]])
        // Cancelled once the server has the request, however long a busy machine took to send it.
        let sent = Self.cancelled(after: 0.3, port: slow.port, timeout: 10, ready: { slow.requests().count == 1 })
        #expect(sent.outcome == "answered 201")
        #expect(slow.requests().count == 1)

        // A call made with a cancellation already cancelled sends nothing.
        let cancellation = Cancellation()
        cancellation.cancel()
        #expect(throws: ExchangeFailure.cancelled) {
            try CurlClient().exchange(Self.get(), with: HTTPEndpoint(secure: false, host: "127.0.0.1", port: slow.port),
                                         timeout: 5, bodyLimit: 1024, cancellation: cancellation)
        }
        #expect(slow.requests().count == 1)
    }

    @Test func refusedDroppedAndOversized() throws {
        // Port 9 (discard) on loopback has no listener here.
        #expect(throws: ExchangeFailure.unreachable(.refused)) {
            try CurlClient().exchange(Self.get(), with: HTTPEndpoint(secure: false, host: "127.0.0.1", port: 9), timeout: 2, bodyLimit: 1024)
        }
        #expect(throws: ExchangeFailure.unreachable(.hostNotFound)) {
            try CurlClient().exchange(Self.get(), with: HTTPEndpoint(secure: false, host: "no-such-host.invalid", port: 80), timeout: 5, bodyLimit: 1024)
        }
        let drop = try ScriptedServer([])
        #expect(throws: ExchangeFailure.dropped(.beforeAnswer)) {
            try CurlClient().exchange(Self.get(), with: HTTPEndpoint(secure: false, host: "127.0.0.1", port: drop.port), timeout: 2, bodyLimit: 1024)
        }
        // A header without end (libcurl caps it only from 8.3): refused at 64 KiB.
        let endless = try ScriptedServer([["send": "HTTP/1.1 200 OK\r\n" + String(repeating: "X-Filler: \(String(repeating: "y", count: 990))\r\n", count: 70)
                                                   + "Content-Length: 2\r\n\r\nok"]])
        let headerFailure = #expect(throws: ExchangeFailure.self) {
            try CurlClient().exchange(Self.get(), with: HTTPEndpoint(secure: false, host: "127.0.0.1", port: endless.port), timeout: 5, bodyLimit: 1024)
        }
        guard case .malformed = headerFailure else { Issue.record("\(String(describing: headerFailure))"); return }
        let big = try ScriptedServer([["send": "HTTP/1.1 200 OK\r\n\r\n" + String(repeating: "x", count: 5000)]])
        #expect(throws: ExchangeFailure.tooLarge(limit: 4096)) {
            try CurlClient().exchange(Self.get(), with: HTTPEndpoint(secure: false, host: "127.0.0.1", port: big.port), timeout: 2, bodyLimit: 4096)
        }
    }

    /// Before the handshake a TLS alert is plaintext: anyone on the path can
    /// answer the ClientHello with close_notify. That must end the call as a
    /// TLS failure, by its deadline at the latest, with nothing sent. (It
    /// once left the handshake half done and the write loop spinning at
    /// full CPU past every deadline.)
    @Test(arguments: [false, true])
    func anInjectedCloseNotifyIsAFailureNotASpin(thenClose: Bool) throws {
        let closeNotify = "\u{15}\u{03}\u{03}\u{00}\u{02}\u{01}\u{00}"
        var steps: [[String: Any]] = [["at_once": true], ["send": closeNotify + closeNotify]]
        if !thenClose { steps.append(["hang": true]) }
        let peer = try ScriptedServer(steps)
        let outcome = SetOnce()
        let start = Date()
        let thread = Thread {
            do {
                _ = try CurlClient().exchange(Self.get(), with: HTTPEndpoint(secure: true, host: "127.0.0.1", port: peer.port),
                                                 timeout: 2, bodyLimit: 1024)
                outcome.set("answered")
            } catch {
                if case .tls? = error as? ExchangeFailure { outcome.set("tls") } else { outcome.set("\(error)") }
            }
        }
        thread.start()
        while outcome.value == nil && Date().timeIntervalSince(start) < 6 { usleep(10_000) }
        let result = try #require(outcome.value, "no outcome 6 s into a call with a 2 s deadline")
        #expect(result == "tls", "\(result)")
        #expect(Date().timeIntervalSince(start) < 3)
    }

    @Test func tlsChecksTheCertificateAndTheName() throws {
        let good = try TestCertificates.make("DNS:localhost,IP:127.0.0.1")
        let server = try ScriptedServer(Self.ok, tls: good)
        let trusting = CurlClient(caFile: good.certificate)
        for host in ["localhost", "127.0.0.1"] {
            let answer = try trusting.exchange(Self.get(), with: HTTPEndpoint(secure: true, host: host, port: server.port), timeout: 5, bodyLimit: 1024)
            #expect(answer.status == 200 && answer.body == Array("ok".utf8), "\(host)")
        }

        // Not in the trust store: the system's (the test certificate is self-signed), or another CA file.
        let other = try TestCertificates.make("DNS:localhost,IP:127.0.0.1")
        for client in [CurlClient(), CurlClient(caFile: other.certificate)] {
            let failure = #expect(throws: ExchangeFailure.self) {
                try client.exchange(Self.get(), with: HTTPEndpoint(secure: true, host: "localhost", port: server.port), timeout: 5, bodyLimit: 1024)
            }
            guard case .tls(let why) = failure else { Issue.record("\(String(describing: failure))"); continue }
            #expect(why.description.contains("certificate problem"), "\(why)")
        }

        // Trusted, but for another name: refused, whether the host is a name or an IP literal.
        let elsewhere = try TestCertificates.make("DNS:api.example.com")
        let misnamed = try ScriptedServer(Self.ok, tls: elsewhere)
        for host in ["localhost", "127.0.0.1"] {
            let failure = #expect(throws: ExchangeFailure.self) {
                try CurlClient(caFile: elsewhere.certificate).exchange(Self.get(), with: HTTPEndpoint(secure: true, host: host, port: misnamed.port),
                                                                          timeout: 5, bodyLimit: 1024)
            }
            guard case .tls(let why) = failure else { Issue.record("\(String(describing: failure))"); continue }
            #expect(why.description.contains("does not match") || why.description.contains("matches target host"), "\(why)")
        }
        #expect(misnamed.requests().isEmpty, "nothing was sent to a server that failed the check")

        // Over TLS a body framed by the close needs close_notify: without it the answer may be cut short.
        let unframed = try ScriptedServer([["send": "HTTP/1.1 200 OK\r\n\r\npartial"]], tls: good)
        let cut = #expect(throws: ExchangeFailure.self) {
            try trusting.exchange(Self.get(), with: HTTPEndpoint(secure: true, host: "localhost", port: unframed.port), timeout: 5, bodyLimit: 1024)
        }
        guard case .dropped = cut else { Issue.record("not a drop: \(String(describing: cut))"); return }
        // A coding other than chunked runs to the close too (RFC 9112 §6.3).
        let coded = try ScriptedServer([["send": "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\npartial"]], tls: good)
        #expect(throws: ExchangeFailure.self) {
            try trusting.exchange(Self.get(), with: HTTPEndpoint(secure: true, host: "localhost", port: coded.port), timeout: 5, bodyLimit: 1024)
        }
        // A plain HTTP server on an https endpoint is a TLS failure, not an answer.
        let plain = try ScriptedServer([["at_once": true], ["send": "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"]])
        let failure = #expect(throws: ExchangeFailure.self) {
            try trusting.exchange(Self.get(), with: HTTPEndpoint(secure: true, host: "localhost", port: plain.port), timeout: 5, bodyLimit: 1024)
        }
        guard case .tls = failure else { Issue.record("\(String(describing: failure))"); return }
    }
}

/// Issue 21: MagicBell calls through an egress proxy (CONNECT), and the
/// hosts that bypass it.
@Suite struct ProxyTests {
    @Test func httpsGoesThroughTheProxyUnlessTheHostIsExcepted() throws {
        let certificate = try TestCertificates.make("IP:127.0.0.1")
        let server = try ScriptedServer(ClientTests.ok, tls: certificate)
        let proxy = try ConnectProxy()
        let endpoint = HTTPEndpoint(secure: true, host: "127.0.0.1", port: server.port)
        let proxied = CurlClient(caFile: certificate.certificate, proxy: proxy.url)
        let answer = try proxied.exchange(ClientTests.get(), with: endpoint, timeout: 5, bodyLimit: 1024)
        #expect(answer.status == 200 && answer.body == Array("ok".utf8))
        #expect(proxy.tunnels == ["127.0.0.1:\(server.port)"], "\(proxy.log)")
        // The certificate is still MagicBell's, checked end to end through the tunnel.
        let untrusting = CurlClient(caFile: try TestCertificates.make("IP:127.0.0.1").certificate, proxy: proxy.url)
        #expect(throws: ExchangeFailure.self) { try untrusting.exchange(ClientTests.get(), with: endpoint, timeout: 5, bodyLimit: 1024) }

        // Excepted: straight to the host, even with a proxy that is down.
        let excepted = CurlClient(caFile: certificate.certificate, proxy: "http://127.0.0.1:9", noProxy: "localhost,127.0.0.1")
        #expect(try excepted.exchange(ClientTests.get(), with: endpoint, timeout: 5, bodyLimit: 1024).status == 200)
        #expect(proxy.tunnels.count == 2, "only the two proxied calls went through it: \(proxy.tunnels)")
        // Plain http is loopback only, and never goes through the proxy.
        let plain = try ScriptedServer(ClientTests.ok)
        #expect(try proxied.exchange(ClientTests.get(), with: HTTPEndpoint(secure: false, host: "127.0.0.1", port: plain.port),
                                     timeout: 5, bodyLimit: 1024).status == 200)
        #expect(proxy.requests.count == 2, "\(proxy.requests)")
    }

    /// Credentials in the proxy URL (percent-encoded, RFC 3986 §3.2.1) reach
    /// the proxy, and never an error message: libcurl quotes the proxy
    /// string in some, so they are passed to it apart.
    @Test func proxyCredentialsWorkAndStayOutOfErrors() throws {
        let certificate = try TestCertificates.make("IP:127.0.0.1")
        let server = try ScriptedServer(ClientTests.ok, tls: certificate)
        // (tinyproxy takes letters, digits and "-._" in a password.)
        let proxy = try ConnectProxy(user: "ops", password: "pa55-w0rd")
        let endpoint = HTTPEndpoint(secure: true, host: "127.0.0.1", port: server.port)
        let authenticated = CurlClient(caFile: certificate.certificate, proxy: "http://ops:pa55%2Dw0rd@127.0.0.1:\(proxy.port)")
        #expect(try authenticated.exchange(ClientTests.get(), with: endpoint, timeout: 5, bodyLimit: 1024).status == 200)
        let wrong = CurlClient(caFile: certificate.certificate, proxy: "http://ops:wrong-pa55@127.0.0.1:\(proxy.port)")
        #expect(throws: ExchangeFailure.self) { try wrong.exchange(ClientTests.get(), with: endpoint, timeout: 5, bodyLimit: 1024) }
        for url in ["http://ops:s3cret-pa55@127.0.0.1:9", "http://ops:s3cret-pa55@no-such-proxy.invalid:3128"] {
            do {
                _ = try CurlClient(caFile: certificate.certificate, proxy: url).exchange(ClientTests.get(), with: endpoint, timeout: 5, bodyLimit: 1024)
                Issue.record("answered through a dead proxy")
            } catch {
                #expect(!"\(error)".contains("s3cret-pa55"), "\(error)")
            }
        }
        // (That libcurl never reads https_proxy itself: CGIModeTests, with the variable in a CGI request's environment.)
    }
}

/// Issue 21: HTTP/2 where MagicBell offers it, its calls on one kept
/// connection. Debian's nginx terminates TLS with h2 in front of a scripted
/// HTTP/1.1 peer, and logs each request's protocol and connection.
@Suite struct HTTP2Tests {
    @Test func callsGoOverHTTP2OnOneConnectionWhenOffered() throws {
        let certificate = try TestCertificates.make("IP:127.0.0.1")
        let backend = try ScriptedServer([["keep_alive": true], ["send": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]])
        let prefix = FileManager.default.temporaryDirectory.appendingPathComponent("h2-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: prefix, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: prefix) }
        let port = Int(try Loopback.freePort())
        try """
        daemon off;
        master_process off;
        error_log \(prefix)/error.log;
        pid \(prefix)/nginx.pid;
        events {}
        http {
            log_format protocol '$server_protocol $connection $request_method';
            access_log \(prefix)/access.log protocol;
            server {
                listen 127.0.0.1:\(port) ssl http2;
                ssl_certificate \(certificate.certificate);
                ssl_certificate_key \(certificate.key);
                location / {
                    proxy_pass http://127.0.0.1:\(backend.port);
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                }
            }
        }
        """.write(toFile: prefix + "/nginx.conf", atomically: true, encoding: .utf8)
        let nginx = Process()
        nginx.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
        nginx.arguments = ["-p", prefix, "-c", prefix + "/nginx.conf"]
        nginx.standardError = FileHandle.nullDevice
        try nginx.run()
        // SIGKILL: the test process's blocked signals are nginx's too.
        defer { kill(nginx.processIdentifier, SIGKILL); nginx.waitUntilExit() }
        #expect(waitUntil { Loopback.accepts(port) }, "nginx did not start")

        let client = CurlClient(caFile: certificate.certificate)
        let endpoint = HTTPEndpoint(secure: true, host: "127.0.0.1", port: port)
        for _ in 0..<3 {
            let answer = try client.exchange(ClientTests.get(), with: endpoint, timeout: 5, bodyLimit: 1024)
            #expect(answer.status == 200 && answer.body == Array("ok".utf8))
        }
        let post = HTTPRequestMessage(method: "POST", target: "/v2/jwt/project", fields: [], body: Array("{}".utf8))
        #expect(try client.exchange(post, with: endpoint, timeout: 5, bodyLimit: 1024).status == 200)
        // nginx logs a request after its answer is sent: the client can be
        // quicker than the POST's line (seen once, 2026-12-06).
        func logged() -> [Substring] {
            ((try? String(contentsOfFile: prefix + "/access.log", encoding: .utf8)) ?? "").split(separator: "\n")
        }
        _ = waitUntil { logged().count >= 4 }
        let lines = logged()
        let gets = lines.filter { $0.hasSuffix(" GET") }
        #expect(gets.count == 3 && gets.allSatisfy { $0.hasPrefix("HTTP/2.0 ") }, "\(lines)")
        #expect(Set(gets.map { $0.split(separator: " ")[1] }).count == 1, "the GETs on one connection: \(lines)")
        // A POST goes over HTTP/1.1 on a connection of its own: libcurl
        // re-sends a request whose HTTP/2 stream was reset with
        // HTTP_1_1_REQUIRED, and a create must be sent once.
        #expect(lines.last?.hasPrefix("HTTP/1.1 ") == true && lines.last?.hasSuffix(" POST") == true, "\(lines)")
    }

    func waitUntil(_ condition: () -> Bool) -> Bool {
        for _ in 0..<200 { if condition() { return true }; usleep(25_000) }
        return false
    }
}

/// A value one thread sets and another polls.
final class SetOnce: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: String?
    var value: String? { lock.withLock { stored } }
    func set(_ value: String) { lock.withLock { stored = value } }
}
