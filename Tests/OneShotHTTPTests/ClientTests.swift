import Foundation
import Glibc
import Testing
import TestSupport
@testable import OneShotHTTP

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

    /// The heads of the requests received, oldest first.
    func requests() -> [(head: String, body: String)] {
        let text = (try? String(contentsOfFile: requestsFile, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap {
            guard let object = try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] else { return nil }
            return (object["head"] ?? "", object["body"] ?? "")
        }
    }
}

@Suite struct ClientTests {
    nonisolated(unsafe) static let ok: [[String: Any]] = [["send": "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Request-Id: r1\r\n\r\nok"]]

    static func get(_ target: String = "/v2/jwt/project?limit=1") -> HTTPRequestMessage {
        HTTPRequestMessage(method: "GET", target: target, fields: [HTTPField(name: "Authorization", value: "Bearer t")])
    }

    @Test func sendsOneRequestPerConnectionAndReadsTheAnswer() throws {
        let server = try ScriptedServer(Self.ok)
        let client = OneShotClient()
        let endpoint = HTTPEndpoint(secure: false, host: "127.0.0.1", port: server.port)
        let answer = try client.exchange(Self.get(), with: endpoint, timeout: 5, bodyLimit: 1024)
        #expect(answer.status == 200 && answer.body == Array("ok".utf8) && answer.field("x-request-id") == "r1")

        let post = HTTPRequestMessage(method: "POST", target: "/v2/jwt/project", fields: [], body: Array(#"{"name":"a"}"#.utf8))
        _ = try client.exchange(post, with: endpoint, timeout: 5, bodyLimit: 1024)
        let seen = server.requests()
        #expect(seen.count == 2)
        #expect(seen[0].head == "GET /v2/jwt/project?limit=1 HTTP/1.1\r\nHost: 127.0.0.1:\(server.port)\r\nAuthorization: Bearer t\r\nConnection: close")
        #expect(seen[1].head.contains("\r\nContent-Length: 12\r\n") && seen[1].body == #"{"name":"a"}"#)

        // A name is looked up (on its own thread, within the deadline); IPv6 literals get brackets in Host.
        let byName = try client.exchange(Self.get(), with: HTTPEndpoint(secure: false, host: "localhost", port: server.port),
                                         timeout: 5, bodyLimit: 1024)
        #expect(byName.status == 200)
        #expect(HTTPEndpoint(secure: true, host: "::1", port: 8443).authority == "[::1]:8443")
        #expect(HTTPEndpoint(secure: true, host: "api.magicbell.com").authority == "api.magicbell.com")
    }

    @Test func aFieldThatWouldSplitTheRequestIsNeverSent() throws {
        let server = try ScriptedServer(Self.ok)
        let endpoint = HTTPEndpoint(secure: false, host: "127.0.0.1", port: server.port)
        for field in [HTTPField(name: "Authorization", value: "Bearer t\r\nX-Injected: 1"), HTTPField(name: "Bad Name", value: "v"),
                      HTTPField(name: "X", value: "a\u{0}b")] {
            var request = Self.get()
            request.fields = [field]
            #expect(throws: ExchangeFailure.self) { try OneShotClient().exchange(request, with: endpoint, timeout: 5, bodyLimit: 1024) }
        }
        #expect(throws: ExchangeFailure.self) { try OneShotClient().exchange(Self.get("/a b"), with: endpoint, timeout: 5, bodyLimit: 1024) }
        #expect(server.requests().isEmpty)
    }

    @Test func theDeadlineHoldsAgainstATrickleAndAHang() throws {
        // One byte every 50 ms: each read succeeds, so only a deadline over the whole exchange stops it.
        let trickle = try ScriptedServer([["trickle": "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + String(repeating: "x", count: 100), "every": 0.05]])
        var start = Date()
        #expect(throws: ExchangeFailure.timedOut) {
            try OneShotClient().exchange(Self.get(), with: HTTPEndpoint(secure: false, host: "127.0.0.1", port: trickle.port), timeout: 1, bodyLimit: 1024)
        }
        #expect(Date().timeIntervalSince(start) < 1.5)

        let hang = try ScriptedServer([["hang": true]])
        start = Date()
        #expect(throws: ExchangeFailure.timedOut) {
            try OneShotClient().exchange(Self.get(), with: HTTPEndpoint(secure: false, host: "127.0.0.1", port: hang.port), timeout: 0.5, bodyLimit: 1024)
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
                let answer = try OneShotClient().exchange(Self.get(), with: HTTPEndpoint(secure: false, host: "127.0.0.1", port: port),
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
            try OneShotClient().exchange(Self.get(), with: HTTPEndpoint(secure: false, host: "127.0.0.1", port: slow.port),
                                         timeout: 5, bodyLimit: 1024, cancellation: cancellation)
        }
        #expect(slow.requests().count == 1)
    }

    @Test func anAddressThatDropsSynsDoesNotTakeTheWholeDeadline() throws {
        let (dead, keep) = try Blackhole.listener()
        defer { keep.forEach { close($0) } }
        let live = try ScriptedServer(Self.ok)
        let deadAddress = try Resolver.addresses(of: "127.0.0.1", port: dead, until: Deadline(seconds: 1), cancellation: nil)
        let liveAddress = try Resolver.addresses(of: "127.0.0.1", port: live.port, until: Deadline(seconds: 1), cancellation: nil)
        // The premise: alone, the dead address takes the whole deadline.
        #expect(throws: ExchangeFailure.timedOut) {
            try TCPConnection.connect(to: deadAddress, until: Deadline(seconds: 0.3), cancellation: nil)
        }
        let start = Date()
        _ = try TCPConnection.connect(to: deadAddress + liveAddress, until: Deadline(seconds: 4), cancellation: nil)
        #expect(Date().timeIntervalSince(start) < 3, "the live address was tried before the deadline")
    }

    @Test func refusedDroppedAndOversized() throws {
        // Port 9 (discard) on loopback has no listener here.
        #expect(throws: ExchangeFailure.unreachable("connection refused")) {
            try OneShotClient().exchange(Self.get(), with: HTTPEndpoint(secure: false, host: "127.0.0.1", port: 9), timeout: 2, bodyLimit: 1024)
        }
        #expect(throws: ExchangeFailure.unreachable("host not found")) {
            try OneShotClient().exchange(Self.get(), with: HTTPEndpoint(secure: false, host: "no-such-host.invalid", port: 80), timeout: 5, bodyLimit: 1024)
        }
        let drop = try ScriptedServer([])
        #expect(throws: ExchangeFailure.dropped("the connection closed before an answer")) {
            try OneShotClient().exchange(Self.get(), with: HTTPEndpoint(secure: false, host: "127.0.0.1", port: drop.port), timeout: 2, bodyLimit: 1024)
        }
        let big = try ScriptedServer([["send": "HTTP/1.1 200 OK\r\n\r\n" + String(repeating: "x", count: 5000)]])
        #expect(throws: ExchangeFailure.tooLarge(limit: 4096)) {
            try OneShotClient().exchange(Self.get(), with: HTTPEndpoint(secure: false, host: "127.0.0.1", port: big.port), timeout: 2, bodyLimit: 4096)
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
                _ = try OneShotClient().exchange(Self.get(), with: HTTPEndpoint(secure: true, host: "127.0.0.1", port: peer.port),
                                                 timeout: 2, bodyLimit: 1024)
                outcome.set("answered")
            } catch {
                outcome.set("\(error)")
            }
        }
        thread.start()
        while outcome.value == nil && Date().timeIntervalSince(start) < 6 { usleep(10_000) }
        let result = try #require(outcome.value, "no outcome 6 s into a call with a 2 s deadline")
        #expect(result.hasPrefix("tls("), "\(result)")
        #expect(Date().timeIntervalSince(start) < 3)
    }

    @Test func tlsChecksTheCertificateAndTheName() throws {
        let good = try TestCertificates.make("DNS:localhost,IP:127.0.0.1")
        let server = try ScriptedServer(Self.ok, tls: good)
        let trusting = OneShotClient(caFile: good.certificate)
        for host in ["localhost", "127.0.0.1"] {
            let answer = try trusting.exchange(Self.get(), with: HTTPEndpoint(secure: true, host: host, port: server.port), timeout: 5, bodyLimit: 1024)
            #expect(answer.status == 200 && answer.body == Array("ok".utf8), "\(host)")
        }

        // Not in the trust store: the system's (the test certificate is self-signed), or another CA file.
        let other = try TestCertificates.make("DNS:localhost,IP:127.0.0.1")
        for client in [OneShotClient(), OneShotClient(caFile: other.certificate)] {
            let failure = #expect(throws: ExchangeFailure.self) {
                try client.exchange(Self.get(), with: HTTPEndpoint(secure: true, host: "localhost", port: server.port), timeout: 5, bodyLimit: 1024)
            }
            guard case .tls(let why) = failure else { Issue.record("\(String(describing: failure))"); continue }
            #expect(why.contains("certificate verify failed"), "\(why)")
        }

        // Trusted, but for another name: refused, whether the host is a name or an IP literal.
        let elsewhere = try TestCertificates.make("DNS:api.example.com")
        let misnamed = try ScriptedServer(Self.ok, tls: elsewhere)
        for host in ["localhost", "127.0.0.1"] {
            let failure = #expect(throws: ExchangeFailure.self) {
                try OneShotClient(caFile: elsewhere.certificate).exchange(Self.get(), with: HTTPEndpoint(secure: true, host: host, port: misnamed.port),
                                                                          timeout: 5, bodyLimit: 1024)
            }
            guard case .tls(let why) = failure else { Issue.record("\(String(describing: failure))"); continue }
            #expect(why.contains("mismatch"), "\(why)")
        }
        #expect(misnamed.requests().isEmpty, "nothing was sent to a server that failed the check")

        // Over TLS a body framed by the close needs close_notify: without it the answer may be cut short.
        let unframed = try ScriptedServer([["send": "HTTP/1.1 200 OK\r\n\r\npartial"]], tls: good)
        #expect(throws: ExchangeFailure.dropped("the connection closed without TLS close_notify")) {
            try trusting.exchange(Self.get(), with: HTTPEndpoint(secure: true, host: "localhost", port: unframed.port), timeout: 5, bodyLimit: 1024)
        }
        // A plain HTTP server on an https endpoint is a TLS failure, not an answer.
        let plain = try ScriptedServer([["at_once": true], ["send": "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"]])
        let failure = #expect(throws: ExchangeFailure.self) {
            try trusting.exchange(Self.get(), with: HTTPEndpoint(secure: true, host: "localhost", port: plain.port), timeout: 5, bodyLimit: 1024)
        }
        guard case .tls = failure else { Issue.record("\(String(describing: failure))"); return }
    }
}

/// A value one thread sets and another polls.
final class SetOnce: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: String?
    var value: String? { lock.withLock { stored } }
    func set(_ value: String) { lock.withLock { stored = value } }
}
