@testable import FastCGIServer
import CFastCGI
import Dispatch
import Glibc
import Logging
import TestSupport
import Testing

/// The server core in process: an event loop driven turn by turn on the
/// test's thread, its connections socketpairs (as swift-nio's
/// `EmbeddedChannel` tests a pipeline without a network), and a responder
/// that says what it saw. Fast, so the core can change under them; the
/// integration tests then check the real binary behind real web servers.
@Suite(.serialized)
struct EventLoopTests {
    typealias F = FastCGIClient

    /// Answers with what it saw: the route, REQUEST_ID, the body's length
    /// (or "withheld"), and the thread's name. `admin` blocks (the pool), on
    /// `gate` when one is given; `token` is answered before its body.
    final class EchoResponder: FastCGIResponder, @unchecked Sendable {
        // @unchecked: immutable; `gate` is a semaphore.
        let gate: DispatchSemaphore?
        init(gate: DispatchSemaphore? = nil) { self.gate = gate }

        func respond(to request: FastCGIRequest, with response: inout HTTPResponse) {
            let route = request.string("MAGICBELL_ROUTE") ?? "-"
            if route == "admin", let gate { gate.wait() }
            let body: String
            switch request.readBody(limit: 1 << 20) {
            case .complete(let bytes): body = "\(bytes.count)"
            case .tooLarge: body = "too large"
            case .incomplete: body = "withheld"
            }
            let thread = EventLoopTests.threadName()
            response.body.append(contentsOf: "route=\(route) id=\(request.string("REQUEST_ID") ?? "-") body=\(body) thread=\(thread)".utf8)
            response.addHeader("Content-Type", "text/plain")
        }

        func blocks(_ request: FastCGIRequest) -> Bool { request.string("MAGICBELL_ROUTE") == "admin" }
        func answersBeforeBody(_ request: FastCGIRequest) -> Bool { request.string("MAGICBELL_ROUTE") == "token" }
    }

    /// One loop of a server whose listen socket is never used.
    final class Embedded {
        let server: FastCGIServer
        let loop: EventLoop
        let socket: ListenSocket
        private var peers: [Int32] = []

        init(_ options: FastCGIServer.Options = .init(eventLoops: 1, workers: 1), responder: EchoResponder = EchoResponder()) throws {
            let path = "/tmp/mbf-embedded-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
            socket = try ListenSocket.open(.unix(path: path, mode: 0o600))
            server = try FastCGIServer(socket: socket, options: options, logger: Logger(label: "test")) { responder }
            loop = try EventLoop(index: 0, server: server, responder: responder)
        }

        deinit {
            for fd in peers { close(fd) }
            socket.removeSocketFile()
            socket.close()
        }

        /// A new connection: the loop holds one end, the test the other
        /// (reads on it time out after 2 s instead of hanging the suite).
        func connect() -> Int32 {
            var ends: [Int32] = [-1, -1]
            precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0)
            _ = fcntl(ends[0], F_SETFL, fcntl(ends[0], F_GETFL) | O_NONBLOCK)
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(ends[1], SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            loop.adopt(ends[0], MonotonicClock.now())
            peers.append(ends[1])
            return ends[1]
        }

        func send(_ fd: Int32, _ bytes: [UInt8]) {
            precondition(bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count)
        }

        /// Turns until nothing is left to do right now.
        func settle() {
            for _ in 0..<4 { loop.turn(waitingAtMost: 0) }
        }

        /// Whether the test's end has something to read (or the end of the stream).
        func readable(_ fd: Int32) -> Bool {
            var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            return Glibc.poll(&poll, 1, 0) == 1
        }

        /// Whether the loop closed the connection (after whatever it had sent).
        func closed(_ fd: Int32) -> Bool {
            var byte: UInt8 = 0
            return recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) == 0
        }
    }

    static func request(_ route: String, id: String = "r1", keep: Bool = true, body: [UInt8] = [], requestID: UInt16 = 1) -> [UInt8] {
        F.begin(id: requestID, keepConnection: keep)
            + F.record(F.params, id: requestID, F.encodeParams([("MAGICBELL_ROUTE", route), ("REQUEST_ID", id)]))
            + F.record(F.params, id: requestID, [])
            + (body.isEmpty ? [] : F.record(F.stdin, id: requestID, body)) + F.record(F.stdin, id: requestID, [])
    }

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test func aWholeRequestIsAnsweredWithStdoutTheEndOfStdoutAndEndRequest() throws {
        let embedded = try Embedded()
        let peer = embedded.connect()
        embedded.send(peer, Self.request("health", body: [1, 2, 3]))
        embedded.settle()
        let stdout = try F.readRecord(peer)
        #expect(stdout.type == F.stdout && stdout.id == 1)
        let body = "route=health id=r1 body=3 thread=\(Self.threadName())"
        #expect(Self.text(stdout.content) == "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
        #expect(try F.readRecord(peer) == F.Record(type: F.stdout, id: 1, content: []))
        #expect(try F.readRecord(peer) == F.Record(type: F.endRequest, id: 1, content: [0, 0, 0, 0, 0, 0, 0, 0]))
        #expect(!embedded.readable(peer), "nothing else")
        #expect(embedded.server.activity.eventLoopRequests == 1 && embedded.server.activity.poolRequests == 0)
    }

    static func threadName() -> String {
        var name = [CChar](repeating: 0, count: 32)
        mbf_thread_name(&name, 32)
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    @Test func aRequestSentByteByByteIsHeldWithinTheBudgetThenServed() throws {
        let embedded = try Embedded()
        let peer = embedded.connect()
        let request = Self.request("metrics", body: Array(repeating: 7, count: 100))
        var heldOnTheWay = 0
        for byte in request.dropLast() {
            embedded.send(peer, [byte])
            embedded.settle()
            heldOnTheWay = max(heldOnTheWay, embedded.server.heldBytes.load(ordering: .relaxed))
        }
        #expect(!embedded.readable(peer), "no answer before the request is whole")
        #expect(heldOnTheWay > 0, "a request still arriving is counted against --max-held-bytes")
        embedded.send(peer, [request.last!])
        embedded.settle()
        #expect(Self.text(try F.readResponse(peer)).hasSuffix("route=metrics id=r1 body=100 thread=\(Self.threadName())"))
        #expect(embedded.server.heldBytes.load(ordering: .relaxed) == 0, "released once served")
    }

    @Test func requestsSentBackToBackAreAnsweredInOrderOnOneConnection() throws {
        let embedded = try Embedded()
        let peer = embedded.connect()
        embedded.send(peer, (1...20).flatMap { Self.request("health", id: "n\($0)") })
        embedded.settle()
        for n in 1...20 {
            #expect(Self.text(try F.readResponse(peer)).contains("id=n\(n) "))
        }
        #expect(embedded.server.activity.eventLoopRequests == 20)
        #expect(embedded.loop.connectionCount == 1)
    }

    @Test func managementRecordsAreAnsweredOnTheWayToTheRequest() throws {
        let embedded = try Embedded(.init(eventLoops: 3, workers: 5, maxConnections: 64))
        let peer = embedded.connect()
        let ask = F.record(F.getValues, id: 0, F.encodeParams([("FCGI_MAX_REQS", ""), ("FCGI_MAX_CONNS", ""), ("FCGI_MPXS_CONNS", "")]))
        embedded.send(peer, ask + F.record(42, id: 0, []) + Self.request("health"))
        embedded.settle()
        let values = try F.readRecord(peer)
        #expect(values.type == F.getValuesResult)
        #expect(values.pairs.map { "\($0.0)=\($0.1)" } == ["FCGI_MAX_REQS=8", "FCGI_MAX_CONNS=64", "FCGI_MPXS_CONNS=0"])
        #expect(try F.readRecord(peer) == F.Record(type: F.unknownType, id: 0, content: [42, 0, 0, 0, 0, 0, 0, 0]))
        #expect(Self.text(try F.readResponse(peer)).contains("route=health"))
    }

    @Test func aMalformedConnectionIsClosedAndCounted() throws {
        let embedded = try Embedded()
        let peer = embedded.connect()
        var wrong = Self.request("health")
        wrong[0] = 2
        embedded.send(peer, wrong)
        embedded.settle()
        #expect(embedded.closed(peer))
        #expect(embedded.server.activity.refusals(.malformed) == 1)
        #expect(embedded.loop.connectionCount == 0)
    }

    @Test func withoutKeepConnTheConnectionEndsWithItsAnswer() throws {
        let embedded = try Embedded()
        let peer = embedded.connect()
        embedded.send(peer, Self.request("health", keep: false))
        embedded.settle()
        #expect(Self.text(try F.readResponse(peer)).contains("route=health"))
        #expect(embedded.closed(peer))
        #expect(embedded.loop.connectionCount == 0)
    }

    @Test func aPeerThatClosesInsideARequestIsCountedIncomplete() throws {
        let embedded = try Embedded()
        let peer = embedded.connect()
        embedded.send(peer, Array(Self.request("health").dropLast(3)))
        embedded.settle()
        shutdown(peer, Int32(SHUT_WR))
        embedded.settle()
        #expect(embedded.closed(peer))
        #expect(embedded.server.activity.refusals(.incomplete) == 1)
        #expect(embedded.server.heldBytes.load(ordering: .relaxed) == 0)
    }

    @Test func aRequestThatAnswersBeforeItsBodyIsAnsweredAtOnceAndItsBodyDropped() throws {
        let embedded = try Embedded()
        let peer = embedded.connect()
        let head = F.begin(keepConnection: true) + F.record(F.params, F.encodeParams([("MAGICBELL_ROUTE", "token"), ("REQUEST_ID", "early")]))
            + F.record(F.params, [])
        embedded.send(peer, head + F.record(F.stdin, [1, 1]))
        embedded.settle()
        #expect(Self.text(try F.readResponse(peer)).hasSuffix("route=token id=early body=withheld thread=\(Self.threadName())"))
        // The rest of the body is read and dropped; the next request is served.
        embedded.send(peer, F.record(F.stdin, Array(repeating: 1, count: 498)) + F.record(F.stdin, []) + Self.request("health", id: "next"))
        embedded.settle()
        #expect(Self.text(try F.readResponse(peer)).contains("route=health id=next "))
    }

    @Test func aBlockingRequestIsAnsweredOnThePoolWhileTheLoopGoesOnServing() throws {
        let gate = DispatchSemaphore(value: 0)
        let responder = EchoResponder(gate: gate)
        let embedded = try Embedded(responder: responder)
        let server = embedded.server
        let poolThread = try WorkerThread.start(named: "fcgi-pool-0") {
            server.pool.run(slot: 1, answerer: Answerer(responder), activity: server.activity)
        }
        let admin = embedded.connect(), token = embedded.connect()
        embedded.send(admin, Self.request("admin", id: "slow", body: [9, 9]) + Self.request("health", id: "after"))
        embedded.settle()
        #expect(embedded.loop.suspendedCount == 1)
        #expect(embedded.server.heldBytes.load(ordering: .relaxed) > 0, "a request on the pool is counted while it waits")
        embedded.send(token, Self.request("health", id: "fast"))
        embedded.settle()
        #expect(Self.text(try F.readResponse(token)).contains("id=fast "), "answered while the admin call waits")
        #expect(!embedded.readable(admin))
        gate.signal()
        for _ in 0..<200 where embedded.loop.suspendedCount > 0 { embedded.loop.turn(waitingAtMost: 10) }
        embedded.settle()
        #expect(Self.text(try F.readResponse(admin)).hasSuffix("route=admin id=slow body=2 thread=fcgi-pool-0"))
        // The request sent behind it waited its turn, and is answered by the loop.
        #expect(Self.text(try F.readResponse(admin)).contains("id=after "))
        #expect(server.activity.poolRequests == 1 && server.activity.eventLoopRequests == 2)
        #expect(server.heldBytes.load(ordering: .relaxed) == 0)
        server.pool.stop()
        pthread_join(poolThread, nil)
    }

    @Test func idleConnectionsAreClosedAfterTheIdleTimeoutAndSlowRequestsAfterTheIOTimeout() throws {
        // The reaper runs every 50 ms (a quarter of the I/O timeout, at least 50 ms).
        let embedded = try Embedded(.init(eventLoops: 1, workers: 1, ioTimeout: 0.2, idleTimeout: 1.5))
        let idle = embedded.connect(), slow = embedded.connect()
        embedded.send(slow, Array(Self.request("health").prefix(10)))
        embedded.settle()
        usleep(300_000)
        embedded.loop.turn(waitingAtMost: 0)
        #expect(embedded.closed(slow) && !embedded.closed(idle))
        #expect(embedded.server.activity.refusals(.incomplete) == 1)
        usleep(1_300_000)
        embedded.loop.turn(waitingAtMost: 0)
        #expect(embedded.closed(idle))
        #expect(embedded.loop.connectionCount == 0)
    }

    @Test func aStopAnswersWhatWasSentThenClosesTheRestAndEndsTheLoop() throws {
        let embedded = try Embedded()
        let busy = embedded.connect(), idle = embedded.connect()
        embedded.send(busy, Self.request("health", id: "last"))
        embedded.server.stop()
        var done = false
        for _ in 0..<20 where !done { done = embedded.loop.turn(waitingAtMost: 10) }
        #expect(done)
        #expect(Self.text(try F.readResponse(busy)).contains("id=last "))
        #expect(embedded.closed(busy) && embedded.closed(idle))
    }

    @Test func answersTheSocketCannotTakeAtOnceWaitAndNothingMoreIsReadMeanwhile() throws {
        final class Big: FastCGIResponder {
            func respond(to request: FastCGIRequest, with response: inout HTTPResponse) {
                response.body.append(contentsOf: [UInt8](repeating: 65, count: 300_000))
            }
        }
        let embedded = try Embedded(responder: EchoResponder())
        let loop = try EventLoop(index: 0, server: embedded.server, responder: Big())
        var ends: [Int32] = [-1, -1]
        precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0)
        defer { close(ends[1]) }
        _ = fcntl(ends[0], F_SETFL, fcntl(ends[0], F_GETFL) | O_NONBLOCK)
        loop.adopt(ends[0], MonotonicClock.now())
        embedded.send(ends[1], Self.request("x") + Self.request("y"))
        for _ in 0..<4 { loop.turn(waitingAtMost: 0) }
        // The first answer is partly written; the second request waits for
        // it. The test reads what is there, turn by turn.
        var received: [UInt8] = []
        var stdout: [UInt8] = []
        var answers = 0
        var chunk = [UInt8](repeating: 0, count: 65536)
        for _ in 0..<10_000 where answers < 2 {
            loop.turn(waitingAtMost: 0)
            let n = chunk.withUnsafeMutableBytes { recv(ends[1], $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 { received += chunk[..<n] }
            while received.count >= 8 {
                let length = Int(received[4]) << 8 | Int(received[5]), total = 8 + length + Int(received[6])
                guard received.count >= total else { break }
                if received[1] == F.stdout { stdout += received[8..<(8 + length)] }
                if received[1] == F.endRequest { answers += 1 }
                received.removeFirst(total)
            }
        }
        #expect(answers == 2)
        #expect(stdout.count == 2 * (300_000 + "Status: 200 OK\r\nContent-Length: 300000\r\n\r\n".utf8.count))
    }

    /// A peer that floods back-to-back requests faster than it reads its
    /// answers gets them in turns, and what it sent beyond a turn waits in
    /// the socket, not in the responder's memory (found by review: each
    /// 64 KiB read was carried whole, without a bound).
    @Test func aFloodOfRequestsWaitsInTheSocketNotInTheCarry() throws {
        let embedded = try Embedded()
        let peer = embedded.connect()
        var big: Int32 = 4 << 20
        setsockopt(peer, SOL_SOCKET, SO_SNDBUF, &big, socklen_t(MemoryLayout<Int32>.size))
        let tiny = F.begin(keepConnection: true) + F.record(F.params, []) + F.record(F.stdin, [])
        let flood = (0..<20_000).flatMap { _ in tiny }
        var sent = 0
        while sent < flood.count {
            let n = flood[sent...].withUnsafeBytes { send(peer, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            guard n > 0 else { break }
            sent += n
        }
        #expect(sent > 256 * 1024, "enough queued in the socket (\(sent) bytes)")
        embedded.loop.turn(waitingAtMost: 0)
        #expect(embedded.loop.carriedBytes <= 128 * 1024, "carried \(embedded.loop.carriedBytes) bytes after one turn")
        #expect(embedded.server.heldBytes.load(ordering: .relaxed) >= embedded.loop.carriedBytes, "what is carried is counted")
    }

    /// After an abort (or management records, or the rest of an early
    /// answer's body), a kept connection is idle again, with the idle
    /// deadline, not the old request's (found by review: it was closed
    /// within a tick of the request's --io-timeout).
    @Test func aConnectionIdleAgainAfterAnAbortKeepsTheIdleTimeout() throws {
        let embedded = try Embedded(.init(eventLoops: 1, workers: 1, ioTimeout: 0.2, idleTimeout: 5))
        let peer = embedded.connect()
        embedded.send(peer, F.begin(keepConnection: true) + F.record(F.abortRequest, []) + F.record(F.getValues, id: 0, []))
        embedded.settle()
        #expect(try F.readRecord(peer).type == F.endRequest)
        #expect(try F.readRecord(peer).type == F.getValuesResult)
        usleep(400_000)
        embedded.loop.turn(waitingAtMost: 0)
        #expect(!embedded.closed(peer), "idle, within --idle-timeout")
        embedded.send(peer, Self.request("health", id: "still"))
        embedded.settle()
        #expect(Self.text(try F.readResponse(peer)).contains("id=still "))
    }

    /// Requests sent back to back and then the end of the stream: every
    /// request is answered before the end is taken for a cut (found by
    /// review: the 17th on was refused as "closed inside a record").
    @Test func requestsBeforeTheEndOfTheStreamAreAllAnswered() throws {
        let embedded = try Embedded()
        let peer = embedded.connect()
        embedded.send(peer, (1...40).flatMap { Self.request("health", id: "h\($0)", keep: $0 < 40) })
        shutdown(peer, Int32(SHUT_WR))
        embedded.settle()
        for n in 1...40 {
            #expect(Self.text(try F.readResponse(peer)).contains("id=h\(n) "))
        }
        #expect(embedded.closed(peer))
        #expect(embedded.server.activity.refusals(.incomplete) == 0)
    }

    /// libfcgi, the reference implementation, reads the same records: every
    /// param must read the same. Random params (names from nginx's alphabet,
    /// values of any byte but NUL, lengths across the one- and four-byte
    /// forms, names sent twice), split across records at random, padded.
    @Test func paramsReadAsLibfcgiReadsThem() throws {
        #expect(FCGX_Init() == 0)
        var random = SplitMix64(seed: 22)
        for round in 0..<150 {
            var pairs: [([UInt8], [UInt8])] = []
            for _ in 0..<Int.random(in: 1...40, using: &random) {
                let name: [UInt8]
                if !pairs.isEmpty && Int.random(in: 0..<8, using: &random) == 0 {
                    name = pairs.randomElement(using: &random)!.0 // sent twice: the first one counts
                } else {
                    name = (0..<Int.random(in: 1...24, using: &random)).map { _ in Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789".utf8).randomElement(using: &random)! }
                }
                let length = [0, 1, 5, 127, 128, 129, 300, 2000].randomElement(using: &random)!
                pairs.append((name, (0..<length).map { _ in UInt8.random(in: 1...255, using: &random) }))
            }
            let stream = F.encodeParams(bytes: pairs)
            var records = F.begin()
            var offset = 0
            while offset < stream.count {
                let size = min(stream.count - offset, Int.random(in: 1...4000, using: &random))
                var record = F.record(F.params, Array(stream[offset..<(offset + size)]))
                let padding = Int.random(in: 0...7, using: &random)
                record[6] = UInt8(padding)
                records += record + [UInt8](repeating: 0, count: padding)
                offset += size
            }
            records += F.record(F.params, []) + F.record(F.stdin, [])

            let connection = Connection(limits: RequestIntake.Limits(maxHeaderBytes: 1 << 20, maxBodyBytes: 1 << 20,
                                                                     values: ManagementValues(maxConnections: 1, maxRequests: 1)))
            let step = records.withUnsafeBytes { raw in
                var at = 0
                return connection.take(raw, from: &at, now: 0, ioTimeout: 10)
            }
            #expect(step == .request)
            let theirs = try Self.libfcgiParams(records, names: pairs.map(\.0) + [Array("ABSENT".utf8)])
            for (name, expected) in theirs {
                let ours = name.withUnsafeBytes { connection.received.value(named: $0).map(Array.init) }
                #expect(ours == expected, "round \(round): \(Self.text(name))")
            }
        }
    }

    /// What libfcgi's `FCGX_GetParam` finds for each name in `records`.
    static func libfcgiParams(_ records: [UInt8], names: [[UInt8]]) throws -> [([UInt8], [UInt8]?)] {
        var ends: [Int32] = [-1, -1]
        precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0)
        defer { close(ends[1]) }
        var size = Int32(records.count + 4096)
        setsockopt(ends[1], SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        let writer = Thread { records.withUnsafeBytes { _ = write(ends[1], $0.baseAddress, $0.count) } }
        let request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        defer { request.deallocate() }
        FCGX_InitRequest(request, -1, 0)
        // libfcgi's state for a connection it did not accept (see fcgiapp.c).
        request.pointee.ipcFd = ends[0]
        request.pointee.keepConnection = 1
        guard FCGX_Accept_r(request) == 0 else { throw LibfcgiRefused() }
        writer.join()
        let found = names.map { name -> ([UInt8], [UInt8]?) in
            let value = (name.map { CChar(bitPattern: $0) } + [0]).withUnsafeBufferPointer { FCGX_GetParam($0.baseAddress, request.pointee.envp) }
            return (name, value.map { Array(UnsafeBufferPointer(start: UnsafeRawPointer($0).assumingMemoryBound(to: UInt8.self), count: strlen($0))) })
        }
        request.pointee.keepConnection = 0
        request.pointee.detached = 1 // a plain close, not libfcgi's 2-second lingering one
        FCGX_Finish_r(request)
        FCGX_Free(request, 1)
        return found
    }

    /// A joinable thread, for the writer above.
    final class Thread: @unchecked Sendable {
        private var thread = pthread_t()
        private let body: () -> Void
        init(_ body: @escaping () -> Void) {
            self.body = body
            let context = Unmanaged.passRetained(self).toOpaque()
            pthread_create(&thread, nil, { context in
                let me = Unmanaged<Thread>.fromOpaque(context!).takeRetainedValue()
                me.body()
                return nil
            }, context)
        }
        func join() { pthread_join(thread, nil) }
    }
}

struct LibfcgiRefused: Error {}
