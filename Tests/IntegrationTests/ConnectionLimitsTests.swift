import Glibc
import Foundation
import Synchronization
import TestSupport
import Testing

/// The socket is the trust boundary, narrowed (who may connect) and bounded
/// (how many, for how long); and a crash writes no core file.
@Suite(.serialized) struct ConnectionLimitsTests {
    typealias F = FastCGIClient
    static let token = F.request([("REQUEST_METHOD", "GET"), ("DOCUMENT_URI", "/magicbell-token"), ("MAGICBELL_ROUTE", "token"),
                                  ("MAGICBELL_USER_EXTERNAL_ID", "limits-user")])

    /// A request on a fresh connection: the answer's first line, or nil when refused.
    static func ask(_ fd: Int32) -> String? {
        defer { close(fd) }
        guard (try? Sockets.writeAll(fd, token)) != nil, let answer = try? F.readResponse(fd), !answer.isEmpty else { return nil }
        return String(decoding: answer, as: UTF8.self).components(separatedBy: "\r\n").first
    }

    static func start(_ scratch: Scratch, _ extra: [String], environment: [String: String] = Responder.environment()) throws -> Responder {
        try Responder(scratch: scratch, arguments: ["serve", "--socket", scratch.file("fcgi.sock"), "--workers", "2"] + extra,
                      environment: environment)
    }

    @Test func peerUIDAdmitsOnlyTheListedUsers() throws {
        let me = getuid()
        let other = me == 65534 ? 65533 : 65534
        let scratch = try Scratch()
        let refusing = try Self.start(scratch, ["--peer-uid", "\(other)"], environment: Responder.environment())
        #expect(Self.ask(try Sockets.connectUnix(path: refusing.socketPath!)) == nil)
        #expect(Sockets.waitUntil(timeout: 3) { refusing.child.stderr.contains("peer uid \(me) is not in --peer-uid") })
        #expect(refusing.child.isRunning)
        refusing.child.stop()

        let second = try Scratch()
        let admitting = try Self.start(second, ["--peer-uid", "\(other),\(String(cString: getpwuid(me).pointee.pw_name))"])
        #expect(Self.ask(try Sockets.connectUnix(path: admitting.socketPath!)) == "Status: 200 OK")
    }

    @Test func aPeerUIDThatNamesNoUserIsAUsageError() throws {
        let result = try runProcess(Project.binary, ["serve", "--socket", "/tmp/x.sock", "--peer-uid", "no-such-user-here"],
                                    environment: Responder.environment())
        #expect(result.status == 64)
        #expect(result.stderr.contains("--peer-uid names no user \"no-such-user-here\""), "\(result.stderr)")
    }

    @Test func fcgiWebServerAddrsIsHonouredOnTCP() throws {
        for (allowed, served) in [("127.0.0.2, 10.1.2.3", false), ("127.0.0.2,127.0.0.1", true), ("::1, ::ffff:127.0.0.1", true)] {
            let scratch = try Scratch()
            let port = try Sockets.freePort()
            let responder = try Responder(scratch: scratch, arguments: ["serve", "--listen", "127.0.0.1:\(port)", "--workers", "2"],
                                          environment: Responder.environment(["FCGI_WEB_SERVER_ADDRS": allowed]), waitForSocket: false)
            #expect(Sockets.waitUntil { responder.child.stderr.contains("listening") })
            let answer = Self.ask(try Sockets.connectTCP(port: port))
            #expect((answer == "Status: 200 OK") == served, "\(allowed): \(answer ?? "refused")")
            if !served {
                #expect(Sockets.waitUntil(timeout: 3) { responder.child.stderr.contains("peer 127.0.0.1 is not in FCGI_WEB_SERVER_ADDRS") })
            }
        }
    }

    @Test func anInvalidFCGIWebServerAddrsIsAConfigurationError() throws {
        let env = Responder.environment(["FCGI_WEB_SERVER_ADDRS": "127.0.0.1,localhost"])
        for arguments in [["check-config"], ["serve", "--listen", "127.0.0.1:1"]] {
            let result = try runProcess(Project.binary, arguments, environment: env)
            #expect(result.status == 78, "\(arguments)")
            #expect(result.stderr.contains("FCGI_WEB_SERVER_ADDRS has \"localhost\", which is not an IPv4 or IPv6 address"),
                    "\(arguments): \(result.stderr)")
        }
    }

    @Test func connectionsBeyondMaxConnectionsAreClosedAtOnce() throws {
        let scratch = try Scratch()
        let responder = try Self.start(scratch, ["--max-connections", "3"])
        let path = responder.socketPath!
        // The start-up probe's connection may still be counted for a moment.
        #expect(Sockets.waitUntil { Self.ask(try! Sockets.connectUnix(path: path)) != nil })
        usleep(100_000)
        // Three kept connections, each served once (so surely accepted), then idle.
        let idle = try (0..<3).map { _ in try Sockets.connectUnix(path: path) }
        defer { idle.forEach { close($0) } }
        for fd in idle {
            try Sockets.writeAll(fd, F.begin(keepConnection: true) + Array(Self.token.dropFirst(16)))
            #expect(String(decoding: try F.readResponse(fd), as: UTF8.self).hasPrefix("Status: 200 OK"))
        }
        let over = try Sockets.connectUnix(path: path)
        #expect(Self.ask(over) == nil, "a fourth connection is closed")
        #expect(Sockets.waitUntil(timeout: 3) { responder.child.stderr.contains("3 connections open (--max-connections)") })
        // The held ones still work, and a closed one frees its place.
        try Sockets.writeAll(idle[0], Self.token)
        #expect(String(decoding: try F.readResponse(idle[0]), as: UTF8.self).hasPrefix("Status: 200 OK"))
        #expect(Sockets.waitUntil { Self.ask(try! Sockets.connectUnix(path: path)) == "Status: 200 OK" })
    }

    @Test func anIdleConnectionIsClosedAfterTheIdleTimeout() throws {
        let scratch = try Scratch()
        let responder = try Self.start(scratch, ["--idle-timeout", "1"])
        let kept = try Sockets.connectUnix(path: responder.socketPath!)
        defer { close(kept) }
        // Used, then left idle: closed by the responder within about 2 s.
        try Sockets.writeAll(kept, F.begin(keepConnection: true) + Array(Self.token.dropFirst(16)))
        #expect(String(decoding: try F.readResponse(kept), as: UTF8.self).hasPrefix("Status: 200 OK"))
        let started = Date()
        Sockets.setTimeout(kept, 5)
        var byte: UInt8 = 0
        #expect(read(kept, &byte, 1) == 0, "the responder closed the idle connection")
        let waited = Date().timeIntervalSince(started)
        #expect(waited >= 0.9 && waited < 3.5, "closed after \(waited) s")
        #expect(Self.ask(try Sockets.connectUnix(path: responder.socketPath!)) == "Status: 200 OK")
    }

    @Test func aPeerTricklingBytesAfterItsAnswerHoldsNoWorker() throws {
        // libfcgi's own close reads until the peer is silent for 2 s; the
        // responder closes connections itself.
        let scratch = try Scratch()
        let responder = try Responder(scratch: scratch, arguments: ["serve", "--socket", scratch.file("fcgi.sock"), "--workers", "1"])
        let path = responder.socketPath!
        let trickler = try Sockets.connectUnix(path: path)
        defer { close(trickler) }
        try Sockets.writeAll(trickler, Self.token) // no FCGI_KEEP_CONN: the responder closes after answering
        #expect(String(decoding: try F.readResponse(trickler), as: UTF8.self).hasPrefix("Status: 200 OK"))
        let stop = Atomic<Bool>(false)
        let thread = Thread {
            var byte: UInt8 = 0
            for _ in 0..<20 where !stop.load(ordering: .relaxed) {
                if send(trickler, &byte, 1, Int32(MSG_NOSIGNAL)) < 0 { return }
                usleep(250_000)
            }
        }
        thread.start()
        defer { stop.store(true, ordering: .relaxed) }
        usleep(300_000)
        let started = Date()
        #expect(Self.ask(try Sockets.connectUnix(path: path)) == "Status: 200 OK")
        #expect(Date().timeIntervalSince(started) < 1.5, "the only worker was free")
    }

    @Test func serveWritesNoCoreFile() throws {
        let scratch = try Scratch()
        let responder = try Self.start(scratch, [])
        // (cat: /proc files report size 0, which Foundation's file reading mishandles.)
        let limits = try runProcess("/bin/cat", ["/proc/\(responder.child.process.processIdentifier)/limits"]).stdout
        let core = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max core file size") })
        #expect(core.split(separator: " ", omittingEmptySubsequences: true).dropFirst(4).prefix(2) == ["0", "0"], "\(core)")
    }
}
