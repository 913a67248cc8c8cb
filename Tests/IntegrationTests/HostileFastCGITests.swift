import Glibc
import Foundation
import TestSupport
import Testing

/// Malformed FastCGI written straight to the responder's socket: each
/// connection is refused with one log line (a record that can never be
/// valid closes it; an unknown role gets END_REQUEST), and everyone else
/// keeps being served. (What the spec says to answer, and the answers:
/// ManagementRecordTests.)
@Suite(.serialized) struct HostileFastCGITests {
    typealias F = FastCGIClient

    static let tokenParams = F.encodeParams([
        ("REQUEST_METHOD", "GET"), ("DOCUMENT_URI", "/magicbell-token"), ("MAGICBELL_ROUTE", "token"), ("MAGICBELL_USER_EXTERNAL_ID", "bystander"),
    ])

    enum Outcome: Equatable { case closed, answered }

    struct Case: Sendable {
        let name: String
        let bytes: [UInt8]
        /// Shut down the sending side after the bytes (a peer that hangs up).
        var hangUp = false
        let outcome: Outcome
        /// Text of the one warning line the responder must log.
        let logs: String
    }

    static let cases: [Case] = {
        let begin = F.begin(keepConnection: true)
        let params = F.record(F.params, tokenParams) + F.record(F.params, [])
        var wrongVersion = F.begin()
        wrongVersion[0] = 2
        let hugeLengths: [UInt8] = [0xFF, 0xFF, 0xFF, 0xF0, 0xFF, 0xFF, 0xFF, 0xF0] + [UInt8](repeating: 65, count: 64)
        let bigCookies = (1...3).flatMap { n in
            F.record(F.params, F.encodeParams([("HTTP_COOKIE_\(n)", String(repeating: "c", count: 50_000))]))
        }
        let hidden = F.record(F.getValues, id: 0, F.encodeParams(Array(repeating: ("FCGI_MAX_CONNS", ""), count: 8)))
        var paddedBegin = F.begin(keepConnection: true)
        paddedBegin[6] = UInt8(hidden.count)
        let hiddenInBeginPadding = paddedBegin + hidden
        // The admin route waits for a body (the token route would answer first: SlowBodyTests).
        let postParams = F.encodeParams([
            ("REQUEST_METHOD", "POST"), ("DOCUMENT_URI", "/magicbell-admin/jwt/project"), ("MAGICBELL_ROUTE", "admin"),
            ("CONTENT_LENGTH", "1000"),
        ])
        return [
            Case(name: "a header cut short, then silence", bytes: Array(begin.prefix(5)), outcome: .closed,
                 logs: "request incomplete after 1.0 s"),
            Case(name: "a header cut short, then hang-up", bytes: Array(begin.prefix(5)), hangUp: true, outcome: .closed,
                 logs: "connection closed inside a record header"),
            Case(name: "params cut short, then hang-up", bytes: begin + F.record(F.params, tokenParams), hangUp: true,
                 outcome: .closed, logs: "connection closed inside request 1"),
            Case(name: "a record cut short, then hang-up", bytes: begin + Array(F.record(F.params, tokenParams).prefix(20)), hangUp: true,
                 outcome: .closed, logs: "connection closed inside a record"),
            Case(name: "FastCGI version 2", bytes: wrongVersion + params, outcome: .closed, logs: "FastCGI version 2, not 1"),
            Case(name: "name and value lengths that overflow libfcgi", bytes: begin + F.record(F.params, hugeLengths),
                 outcome: .closed, logs: "a param of 2147483632 + 2147483632 bytes"),
            Case(name: "an unknown record type first", bytes: F.record(42, [1, 2, 3]) + begin + params, outcome: .closed,
                 logs: "record type 42 for request 1, which was never begun"),
            Case(name: "an unknown record type among the params", bytes: begin + F.record(11, []) + params,
                 outcome: .closed, logs: "record type 11 inside request 1"),
            Case(name: "STDIN before the params ended", bytes: begin + F.record(F.stdin, [1]), outcome: .closed,
                 logs: "record type 5 inside request 1"),
            Case(name: "a flood of management records",
                 bytes: (0..<65).flatMap { _ in F.record(42, id: 0, []) }, outcome: .closed,
                 logs: "more than 64 records answered without a request served"),
            Case(name: "a GET_VALUES hidden in BEGIN_REQUEST's padding (libfcgi reads it; its stack overflows)",
                 bytes: hiddenInBeginPadding + params + F.record(F.stdin, []), outcome: .closed,
                 logs: "padding on a BEGIN_REQUEST or an empty record"),
            Case(name: "the AUTHORIZER role", bytes: F.record(F.beginRequest, [0, 2, 0, 0, 0, 0, 0, 0]) + params,
                 outcome: .closed, logs: "FastCGI role 2, not RESPONDER"),
            Case(name: "request id 1 begun twice", bytes: begin + begin + params, outcome: .closed,
                 logs: "request 1 begun twice"),
            // To the admin route, which waits for a body: a token request may
            // be answered before the body goes over (and then closed).
            Case(name: "a body over the limit (1 MiB)",
                 bytes: begin + F.record(F.params, postParams) + F.record(F.params, [])
                    + (0..<17).flatMap { _ in F.record(F.stdin, Array(repeating: 66, count: 65_535)) },
                 outcome: .closed, logs: "request body over 1048576 bytes"),
            Case(name: "a header block over the limit (3 × 50 kB cookies)", bytes: begin + bigCookies + params,
                 outcome: .closed, logs: "header block over 131072 bytes"),
            Case(name: "a connection dropped mid-body",
                 bytes: begin + F.record(F.params, postParams) + F.record(F.params, []) + F.record(F.stdin, Array(repeating: 120, count: 100)),
                 hangUp: true, outcome: .closed, logs: "connection closed inside request 1"),
        ]
    }()

    /// One responder for all cases (2 workers, 1 s I/O timeout), and one
    /// kept connection of a well-behaved client used between them.
    final class Fixture: @unchecked Sendable {
        let scratch: Scratch
        let responder: Responder
        let bystander: Int32

        init() throws {
            scratch = try Scratch()
            let socket = scratch.file("fcgi.sock")
            responder = try Responder(scratch: scratch, arguments: ["serve", "--socket", socket, "--workers", "2", "--io-timeout", "1"])
            bystander = try Sockets.connectUnix(path: socket, timeout: 5)
        }

        deinit { close(bystander) }

        func serveBystander() throws -> String {
            try Sockets.writeAll(bystander, F.begin(keepConnection: true) + F.record(F.params, HostileFastCGITests.tokenParams)
                + F.record(F.params, []) + F.record(F.stdin, []))
            return String(decoding: try F.readResponse(bystander), as: UTF8.self)
        }

        var warnings: [String] {
            responder.child.stderr.split(separator: "\n").filter { $0.contains(#""level":"warning""#) }.map(String.init)
        }
    }

    /// One fixture for all cases (a static one would outlive the test run).
    @Test func eachMalformedConnectionIsRefusedAloneWithOneLogLine() throws {
        let fixture = try Fixture()
        for hostile in Self.cases { try check(hostile, fixture) }
    }

    func check(_ hostile: Case, _ fixture: Fixture) throws {
        // Refusals log one line a second at most (see below): one case a second.
        usleep(1_050_000)
        #expect(try fixture.serveBystander().hasPrefix("Status: 200 OK"), "\(hostile.name)")
        let warningsBefore = fixture.warnings.count

        let fd = try Sockets.connectUnix(path: try #require(fixture.responder.socketPath), timeout: 5)
        defer { close(fd) }
        // The responder may close before it has read everything: that is a refusal too.
        try? Sockets.writeAll(fd, hostile.bytes)
        if hostile.hangUp { shutdown(fd, Int32(SHUT_WR)) }
        // Meanwhile the others are served (one of the two workers may be
        // waiting out this connection's I/O timeout).
        #expect(try fixture.serveBystander().hasPrefix("Status: 200 OK"), "\(hostile.name)")

        let reply = (try? Sockets.readToEnd(fd)) ?? [] // a reset counts as closed
        let stdoutText = String(decoding: reply.count > 8 ? Array(reply.dropFirst(8)) : [], as: UTF8.self)
        #expect((stdoutText.contains("Status: ") ? Outcome.answered : .closed) == hostile.outcome, "\(hostile.name)")

        #expect(Sockets.waitUntil(timeout: 3) { fixture.warnings.count > warningsBefore }, "\(hostile.name)")
        let added = fixture.warnings.dropFirst(warningsBefore)
        #expect(added.count == 1, "\(hostile.name): \(added)")
        #expect(added.first?.contains(hostile.logs) == true, "\(hostile.name): \(added)")
        #expect(fixture.responder.child.isRunning, "\(hostile.name)")
        #expect(try fixture.serveBystander().hasPrefix("Status: 200 OK"), "\(hostile.name)")
    }

    /// Issue 19 §5: each upload a client aborts reaches the responder,
    /// through Apache or HAProxy, as a connection closed in the middle of
    /// its request. A client doing that in a loop gets one warning line a
    /// second at most (with how many were left out), and every one is
    /// counted in the metrics.
    @Test func abortedUploadsInALoopLogOneLineASecondAndAreAllCounted() throws {
        let fixture = try Fixture()
        let socket = try #require(fixture.responder.socketPath)
        let upload = F.begin(keepConnection: true) + F.record(F.params, F.encodeParams([
            ("REQUEST_METHOD", "POST"), ("DOCUMENT_URI", "/magicbell-admin/jwt/project"), ("MAGICBELL_ROUTE", "admin"),
            ("CONTENT_LENGTH", "1000"),
        ])) + F.record(F.params, []) + F.record(F.stdin, Array(repeating: 120, count: 100))
        let started = Date()
        for _ in 0..<40 {
            let fd = try Sockets.connectUnix(path: socket, timeout: 5)
            try Sockets.writeAll(fd, upload)
            close(fd)
        }
        let seconds = Date().timeIntervalSince(started)
        #expect(Sockets.waitUntil(timeout: 5) { Self.refused(fixture, "incomplete") == 40 }, "\(Self.refused(fixture, "incomplete"))")
        let lines = fixture.warnings.filter { $0.contains("ended before it was whole") }
        #expect(!lines.isEmpty && lines.count <= Int(seconds) + 2, "\(lines.count) lines in \(seconds) s: \(lines)")
        #expect(lines.last?.contains("suppressed_since_last_line") == true)
        #expect(Self.refused(fixture, "malformed") == 0, "an aborted upload is not a malformed request")
    }

    /// `magicbell_fcgi_fastcgi_refused_total{reason}`, from the metrics route.
    static func refused(_ fixture: Fixture, _ reason: String) -> Int {
        guard let fd = try? Sockets.connectUnix(path: fixture.responder.socketPath ?? "", timeout: 5) else { return -1 }
        defer { close(fd) }
        let metrics = F.request([("REQUEST_METHOD", "GET"), ("DOCUMENT_URI", "/magicbell-admin/metrics"), ("MAGICBELL_ROUTE", "metrics")])
        guard (try? Sockets.writeAll(fd, metrics)) != nil, let answer = try? F.readResponse(fd) else { return -1 }
        let line = String(decoding: answer, as: UTF8.self).split(separator: "\n")
            .first { $0.hasPrefix("magicbell_fcgi_fastcgi_refused_total{reason=\"\(reason)\"}") }
        return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? -1
    }
}
