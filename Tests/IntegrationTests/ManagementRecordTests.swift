import Glibc
import Foundation
import TestSupport
import Testing

/// What the FastCGI spec asks of an application besides requests (§4
/// management records, §5.1 BEGIN_REQUEST, §5.4 ABORT_REQUEST, §5.5
/// END_REQUEST), written to the real binary's socket; and the peer that
/// needs it: HAProxy with `option get-values`.
@Suite(.serialized) struct ManagementRecordTests {
    typealias F = FastCGIClient
    static let workers = 3

    static let tokenParams = F.encodeParams([
        ("REQUEST_METHOD", "GET"), ("DOCUMENT_URI", "/magicbell-token"), ("MAGICBELL_ROUTE", "token"),
        ("MAGICBELL_USER_EXTERNAL_ID", "mgmt-user"),
    ])
    static func header(id: UInt16 = 1, keep: Bool = true) -> [UInt8] {
        F.begin(id: id, keepConnection: keep) + F.record(F.params, id: id, tokenParams) + F.record(F.params, id: id, [])
    }
    static func getValues(_ names: [String]) -> [UInt8] {
        F.record(F.getValues, id: 0, F.encodeParams(names.map { ($0, "") }))
    }

    final class Fixture {
        let scratch: Scratch
        let responder: Responder
        init() throws {
            scratch = try Scratch()
            let socket = scratch.file("fcgi.sock")
            responder = try Responder(scratch: scratch, arguments: ["serve", "--socket", socket, "--workers", "\(ManagementRecordTests.workers)", "--event-loops", "2",
                                                                    "--io-timeout", "2"])
        }
        func connect() throws -> Int32 { try Sockets.connectUnix(path: responder.socketPath!, timeout: 5) }
    }

    /// Reads records until the END_REQUEST of `id`; returns them all.
    static func records(_ fd: Int32, until id: UInt16) throws -> [F.Record] {
        var out: [F.Record] = []
        while true {
            let record = try F.readRecord(fd)
            out.append(record)
            if record.type == F.endRequest && record.id == id { return out }
        }
    }

    static func stdout(_ records: [F.Record], id: UInt16 = 1) -> String {
        String(decoding: records.filter { $0.type == F.stdout && $0.id == id }.flatMap(\.content), as: UTF8.self)
    }

    @Test func getValuesInsideARequestIsAnsweredOnceEachAndTheProcessLives() throws {
        // libfcgi 2.4.2 writes its answer to this into a 64-byte stack buffer:
        // "*** stack smashing detected ***", SIGABRT.
        let fixture = try Fixture()
        let fd = try fixture.connect()
        defer { close(fd) }
        try Sockets.writeAll(fd, Self.header() + Self.getValues(Array(repeating: "FCGI_MAX_CONNS", count: 8)) + F.record(F.stdin, []))
        let answer = try Self.records(fd, until: 1)
        let results = answer.filter { $0.type == F.getValuesResult }
        #expect(results.count == 1)
        #expect(results.first?.id == 0)
        #expect(results.first?.pairs.map(\.0) == ["FCGI_MAX_CONNS"])
        #expect(Self.stdout(answer).hasPrefix("Status: 200 OK"))
        #expect(fixture.responder.child.isRunning)
        // The same connection serves the next request.
        try Sockets.writeAll(fd, Self.header() + F.record(F.stdin, []))
        #expect(Self.stdout(try Self.records(fd, until: 1)).hasPrefix("Status: 200 OK"))
    }

    @Test func getValuesNamesOnlyTheVariablesAskedWithTheRealLimits() throws {
        let fixture = try Fixture()
        let fd = try fixture.connect()
        defer { close(fd) }
        // Before any request, as HAProxy asks when it connects; unknown and repeated names.
        try Sockets.writeAll(fd, Self.getValues(["FCGI_MPXS_CONNS", "FCGI_MAX_REQS", "X_UNKNOWN", "FCGI_MPXS_CONNS", "FCGI_MAX_CONNS"]))
        let result = try F.readRecord(fd)
        #expect(result.type == F.getValuesResult && result.id == 0)
        let values = Dictionary(result.pairs, uniquingKeysWith: { first, _ in first })
        #expect(result.pairs.count == 3, "\(result.pairs)")
        #expect(values["FCGI_MPXS_CONNS"] == "0")
        #expect(values["FCGI_MAX_REQS"] == "\(Self.workers + 2)", "the pool's threads and the event loops")
        #expect(Int(values["FCGI_MAX_CONNS"] ?? "") ?? 0 >= Self.workers, "\(values)")
        try Sockets.writeAll(fd, Self.getValues([]))
        #expect(try F.readRecord(fd) == F.Record(type: F.getValuesResult, id: 0, content: []))
        // Still usable for requests.
        try Sockets.writeAll(fd, Self.header() + F.record(F.stdin, []))
        #expect(Self.stdout(try Self.records(fd, until: 1)).hasPrefix("Status: 200 OK"))
    }

    @Test func otherManagementTypesGetUnknownType() throws {
        let fixture = try Fixture()
        let fd = try fixture.connect()
        defer { close(fd) }
        try Sockets.writeAll(fd, F.record(42, id: 0, [1, 2, 3]) + Self.header() + F.record(200, id: 0, []) + F.record(F.stdin, []))
        let answer = try Self.records(fd, until: 1)
        let unknown = answer.filter { $0.type == F.unknownType }
        #expect(unknown.map(\.id) == [0, 0])
        #expect(unknown.map { $0.content } == [[42, 0, 0, 0, 0, 0, 0, 0], [200, 0, 0, 0, 0, 0, 0, 0]])
        #expect(Self.stdout(answer).hasPrefix("Status: 200 OK"))
    }

    @Test func aSecondRequestIdWhileOneIsOpenIsCantMpxConn() throws {
        let fixture = try Fixture()
        let fd = try fixture.connect()
        defer { close(fd) }
        try Sockets.writeAll(fd, Self.header(id: 1) + F.begin(id: 2, keepConnection: true)
            + F.record(F.params, id: 2, Self.tokenParams) + F.record(F.stdin, id: 1, []))
        let answer = try Self.records(fd, until: 1)
        let refused = answer.filter { $0.type == F.endRequest && $0.id == 2 }
        #expect(refused.count == 1)
        #expect(refused.first?.content == [0, 0, 0, 0, 1, 0, 0, 0]) // appStatus 0, FCGI_CANT_MPX_CONN
        #expect(Self.stdout(answer, id: 1).hasPrefix("Status: 200 OK"))
        #expect(answer.allSatisfy { $0.id != 2 || $0.type == F.endRequest }, "request 2 is not served")
    }

    @Test func abortRequestEndsItsRequest() throws {
        let fixture = try Fixture()
        let fd = try fixture.connect()
        defer { close(fd) }
        let postParams = F.encodeParams([("REQUEST_METHOD", "POST"), ("DOCUMENT_URI", "/magicbell-token"),
                                         ("MAGICBELL_ROUTE", "token"), ("MAGICBELL_USER_EXTERNAL_ID", "u"), ("CONTENT_LENGTH", "10")])
        try Sockets.writeAll(fd, F.begin(keepConnection: true) + F.record(F.params, postParams) + F.record(F.params, [])
            + F.record(F.stdin, [1, 2, 3]) + F.record(F.abortRequest, []))
        let answer = try Self.records(fd, until: 1)
        #expect(Self.stdout(answer).isEmpty, "an aborted request gets no answer")
        #expect(answer.last?.content.count == 8)
        // The connection was kept and serves the next request.
        try Sockets.writeAll(fd, Self.header() + F.record(F.stdin, []))
        #expect(Self.stdout(try Self.records(fd, until: 1)).hasPrefix("Status: 200 OK"))
    }

    @Test func haproxyWithGetValuesGetsTokens() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/haproxy") else {
            Issue.record("haproxy is not installed (scripts/test installs it)")
            return
        }
        let fixture = try Fixture()
        let port = try Sockets.freePort()
        let config = """
            global
                log stderr format raw local0 info
            defaults
                mode http
                timeout connect 5s
                timeout client 10s
                timeout server 10s
            fcgi-app magicbell
                docroot /nonexistent
                option get-values
                option keep-conn
                set-param MAGICBELL_ROUTE token
                set-param MAGICBELL_USER_EXTERNAL_ID haproxy-user
                set-param DOCUMENT_URI %[path]
            frontend web
                bind 127.0.0.1:\(port)
                default_backend responder
            backend responder
                use-fcgi-app magicbell
                server r1 unix@\(fixture.responder.socketPath!) proto fcgi
            """
        let configPath = fixture.scratch.file("haproxy.cfg")
        try (config + "\n").write(toFile: configPath, atomically: true, encoding: .utf8) // haproxy wants a final newline
        let haproxy = try Child("/usr/sbin/haproxy", ["-db", "-f", configPath], environment: [:],
                                stderrPath: fixture.scratch.file("haproxy.log"))
        defer { haproxy.stop() }
        try #require(Sockets.waitUntil {
            guard let fd = try? Sockets.connectTCP(port: port) else { return false }
            close(fd)
            return true
        }, "haproxy did not start: \(haproxy.stderr)")
        for _ in 0..<3 {
            let answer = try HTTP.request(port: port, "GET", "/magicbell-token")
            #expect(answer.status == 200, "\(answer.status) \(answer.text) \(haproxy.stderr)")
            let claims = try PyJWT.decode(try #require(answer.json?["token"] as? String))
            #expect(claims["user_external_id"] as? String == "haproxy-user")
        }
        #expect(!fixture.responder.child.stderr.contains("refused a malformed FastCGI request"), "\(fixture.responder.child.stderr)")
    }
}
