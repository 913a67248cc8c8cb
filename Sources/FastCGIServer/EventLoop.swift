import Glibc
import CFastCGI
import Synchronization
import Logging

/// One event-loop thread: its own epoll set, the connections it accepted,
/// and its own responder. It serves what does not block (tokens, health,
/// metrics) itself, and hands the rest to the blocking pool.
///
/// Under load one `epoll_wait` returns several ready connections, and each
/// costs one `recv` and one `send`: no thread sleeps and wakes per request,
/// and a connection stays in the set (level-triggered) from accept to
/// close, so no `epoll_ctl` per request either. The listen socket is in
/// every loop's set with `EPOLLEXCLUSIVE`: a new connection wakes one loop.
///
/// Bounded as before: a request must be whole within `--io-timeout` of its
/// first byte and an answer taken within it, an idle connection is closed
/// after `--idle-timeout` (the loop's reaper, a few times a second), and
/// requests still arriving hold at most `maxHeldBytes` together.
final class EventLoop: @unchecked Sendable {
    // @unchecked: everything here is the loop thread's, except `resumed`
    // (under its mutex) and `wakeFD` (an eventfd any thread may write).
    private let index: Int
    private let server: FastCGIServer
    private var answerer: Answerer
    private let epoll: Int32
    /// Written by a pool thread when it hands a connection back.
    private let wakeFD: Int32
    /// Connections handed back by the pool, as their addresses (a Mutex holds only Sendable values).
    private let resumed = Mutex<[UInt]>([])

    private let events: UnsafeMutablePointer<epoll_event>
    private static let maxEvents: Int32 = 64
    /// Where each read lands; a record that does not fit waits in its connection's carry.
    private let scratch: UnsafeMutableRawBufferPointer
    private var connections: [Connection] = []
    /// Closed connections, reused: a web server that does not keep its
    /// connections costs no allocation per request either.
    private var spare: [Connection] = []
    /// Connections with whole records in their carry to take without a read.
    private var runnable: [Connection] = []
    /// The runnable list being run (swapped, so that running it can queue again).
    private var running: [Connection] = []
    private var suspended = 0
    private var stopping = false
    private var acceptPaused = false
    /// While stopping: whether this loop counts itself in `server.busyLoops`.
    private var publishedBusy = false
    private var nextReap: Double = 0

    private static let listenToken: UInt64 = 0
    private static let stopToken: UInt64 = 1
    private static let wakeToken: UInt64 = 2

    init(index: Int, server: FastCGIServer, responder: any FastCGIResponder) throws(ListenError) {
        self.index = index
        self.server = server
        answerer = Answerer(responder)
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        events = .allocate(capacity: Int(Self.maxEvents))
        scratch = .allocate(byteCount: 64 * 1024, alignment: 16)
        connections.reserveCapacity(64)
        runnable.reserveCapacity(16)
        guard epoll >= 0, wakeFD >= 0 else { throw ListenError("epoll_create1 or eventfd: \(lastError())") }
        guard watch(server.socket.fd, Self.listenToken, EPOLLIN.rawValue | EPOLLEXCLUSIVE.rawValue),
              watch(server.stopFD, Self.stopToken, EPOLLIN.rawValue),
              watch(wakeFD, Self.wakeToken, EPOLLIN.rawValue) else {
            throw ListenError("epoll_ctl: \(lastError())")
        }
    }

    deinit {
        close(epoll)
        close(wakeFD)
        events.deallocate()
        scratch.deallocate()
    }

    private func watch(_ fd: Int32, _ token: UInt64, _ flags: UInt32, _ operation: Int32 = EPOLL_CTL_ADD) -> Bool {
        var event = epoll_event()
        event.events = flags
        event.data.u64 = token
        return epoll_ctl(epoll, operation, fd, &event) == 0
    }

    private func watch(_ connection: Connection, _ flags: UInt32, _ operation: Int32) -> Bool {
        watch(connection.fd, UInt64(UInt(bitPattern: Unmanaged.passUnretained(connection).toOpaque())), flags, operation)
    }

    private func unwatch(_ fd: Int32) { _ = epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nil) }

    // MARK: The loop

    /// Serves until the server stops and this loop's last connection is done.
    func run() {
        while !turn() {}
    }

    /// One turn of the loop: waits for events (at most `timeout` ms; by
    /// default until the reaper's next tick) and handles them. True once
    /// the loop is done. Tests drive a loop turn by turn, on their own thread.
    @discardableResult
    func turn(waitingAtMost timeout: Int32? = nil) -> Bool {
        let count = epoll_wait(epoll, events, Self.maxEvents, runnable.isEmpty ? timeout ?? tick : 0)
        let now = MonotonicClock.now()
        if count < 0 && errno != EINTR {
            server.logger.error("epoll_wait failed", metadata: ["error": "\(lastError())"])
            return true
        }
        for i in 0..<Int(max(count, 0)) {
            let event = events[i]
            switch event.data.u64 {
            case Self.listenToken: acceptConnections(now)
            case Self.stopToken: beginStop(now)
            case Self.wakeToken: takeResumed(now)
            default:
                let connection = Unmanaged<Connection>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(event.data.u64))!)
                    .takeUnretainedValue()
                ready(connection, event.events, now)
            }
        }
        if !runnable.isEmpty { runRunnable(now) }
        if now >= nextReap {
            nextReap = now + Double(tick) / 1000
            reap(now)
            if stopping && drained() { return true }
        }
        return false
    }

    /// A few times per --io-timeout (at most once a second): the reaper's
    /// tick, in ms; every 20 ms while stopping, so that a stop is prompt.
    private var tick: Int32 { stopping ? 20 : Int32(min(1000, max(50, server.options.ioTimeout * 250))) }

    private func ready(_ connection: Connection, _ flags: UInt32, _ now: Double) {
        switch connection.state {
        case .writing:
            write(connection, now)
        case .reading:
            read(connection, now)
        case .suspended:
            break // out of the set; an event from before it left is stale
        }
    }

    // MARK: Accepting

    /// Accepts up to `limit` queued connections (a few per wake, so that a
    /// flood of connects does not starve the requests of this loop's others).
    private func acceptConnections(_ now: Double, limit: Int = 16) {
        for _ in 0..<limit {
            let fd = mbf_accept_nonblocking(server.socket.fd)
            guard fd >= 0 else {
                let error = errno
                if error != EAGAIN && error != EWOULDBLOCK && error != EINTR && error != ECONNABORTED {
                    server.logger.error("accept failed", metadata: ["error": "\(String(cString: strerror(error)))"])
                    if error == EMFILE || error == ENFILE || error == ENOMEM || error == ENOBUFS {
                        // Out of descriptors: stop listening until the next tick instead of spinning.
                        unwatch(server.socket.fd)
                        acceptPaused = true
                    }
                }
                return
            }
            if let reason = server.options.peers.refusal(of: fd, family: server.family) {
                close(fd)
                server.refusals.record(.peer, reason)
                continue
            }
            guard server.openConnections.tryEnter() else {
                close(fd)
                server.refusals.record(.limit, "\(server.options.maxConnections) connections open (--max-connections)")
                continue
            }
            if server.family != AF_UNIX {
                mbf_set_tcp_nodelay(fd) // an answer is one write: nothing to wait for
            }
            adopt(fd, now)
        }
    }

    /// Serves a connected socket (non-blocking, close-on-exec) from now on.
    func adopt(_ fd: Int32, _ now: Double) {
        let connection = spare.popLast() ?? Connection(limits: server.limits)
        connection.open(fd, deadline: now + server.options.idleTimeout)
        connection.slot = connections.count
        connections.append(connection)
        if !watch(connection, EPOLLIN.rawValue, EPOLL_CTL_ADD) { discard(connection) }
    }

    /// Connections open on this loop, and requests of theirs on the pool.
    var connectionCount: Int { connections.count }
    var suspendedCount: Int { suspended }
    /// Bytes its connections carry (read, not yet taken).
    var carriedBytes: Int { connections.reduce(0) { $0 + $1.carry.count } }

    // MARK: Reading

    /// Reads what the connection has, a few reads at most per wake (the
    /// other connections of this loop get their turn), and nothing while
    /// whole records already wait their turn in its carry: a peer that sends
    /// faster than it is served is held back by its socket, not buffered here.
    private func read(_ connection: Connection, _ now: Double) {
        var reads = 0
        while !connection.queued && reads < 4 {
            let got = recv(connection.fd, scratch.baseAddress, scratch.count, Int32(MSG_DONTWAIT))
            if got > 0 {
                reads += 1
                guard take(connection, UnsafeRawBufferPointer(rebasing: scratch[..<got]), now) else {
                    if connection.fd >= 0 && connection.state == .writing { account(connection, now) }
                    return
                }
                // A short read took everything there was: the set says when there is more.
                if got < scratch.count { return ranDry(connection, now) }
                continue
            }
            if got == 0 { return peerClosed(connection, now) }
            let error = errno
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK { return ranDry(connection, now) }
            return refuse(connection, .incomplete, "read failed: \(String(cString: strerror(error)))")
        }
        account(connection, now)
    }

    /// Takes `bytes` (behind what the connection carries), serving each
    /// request as it is whole. Returns whether the connection is still
    /// this loop's to read: not closed, suspended, or waiting to write.
    private func take(_ connection: Connection, _ bytes: UnsafeRawBufferPointer, _ now: Double) -> Bool {
        guard connection.carry.isEmpty else {
            connection.carry.append(bytes)
            return takeCarried(connection, now)
        }
        var offset = 0
        let outcome = takeRecords(connection, bytes, &offset, now)
        if offset < bytes.count && connection.fd >= 0 {
            connection.carry.append(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
        }
        return settle(connection, outcome, now)
    }

    /// Takes the records the connection carries.
    private func takeCarried(_ connection: Connection, _ now: Double) -> Bool {
        var offset = 0
        // The carry is read in place: while it is, nothing appends to it.
        let outcome = takeRecords(connection, connection.carry.bytes, &offset, now)
        if connection.fd >= 0 { connection.carry.removeFirst(offset) }
        return settle(connection, outcome, now)
    }

    /// How taking records ended.
    private enum Taken {
        /// The connection is still this loop's to read (its answers to write).
        case open
        /// Its request is whole and goes to the pool (once the rest is carried).
        case blocking
        /// Closed.
        case closed
    }

    /// The records of `bytes` from `offset`: serves requests, queues
    /// answers, stops at a record not whole, a request for the pool,
    /// a turn's worth of answers, or the end of the connection.
    private func takeRecords(_ connection: Connection, _ bytes: UnsafeRawBufferPointer, _ offset: inout Int, _ now: Double) -> Taken {
        var served = 0
        while true {
            switch connection.take(bytes, from: &offset, now: now, ioTimeout: server.options.ioTimeout) {
            case .needMore:
                return .open
            case .request:
                if answerer.responder.blocks(FastCGIRequest(connection.received)) { return .blocking }
                activity.countServed(index)
                answerer.answer(connection)
                connection.finishRequest()
                connection.deadline = now + server.options.idleTimeout
                served += 1
                // A peer that sends requests back to back without reading
                // its answers gets them in turns: the rest waits its turn.
                if connection.closeWhenWritten || served >= 16 || connection.output.count >= 256 * 1024 {
                    if !connection.closeWhenWritten && offset < bytes.count { enqueue(connection) }
                    return .open
                }
            case .refused(let warning):
                server.refusals.record(.unsupported, warning.description)
                if connection.closeWhenWritten { return .open }
            case .aborted(let id):
                server.logger.info("the web server aborted a request", metadata: ["fastcgi_request_id": .stringConvertible(id)])
                if !connection.intake.keepConnection { connection.closeWhenWritten = true; return .open }
            case .close:
                connection.closeWhenWritten = true
                return .open
            case .invalid(let reason):
                refuse(connection, .malformed, reason.description)
                return .closed
            }
        }
    }

    private var activity: WorkerActivity { server.activity }

    /// After taking records (the rest carried): hands a blocking request to
    /// the pool, what it holds counted against the budget while it waits
    /// there (it has no deadline on the pool: the app bounds each call to
    /// MagicBell); or writes what was answered. False when the connection
    /// is no longer this loop's to read.
    private func settle(_ connection: Connection, _ outcome: Taken, _ now: Double) -> Bool {
        switch outcome {
        case .closed:
            return false
        case .blocking:
            account(connection, now)
            if connection.fd >= 0 { suspend(connection) }
            return false
        case .open:
            if !connection.output.isEmpty || connection.closeWhenWritten { return write(connection, now) }
            return true
        }
    }

    /// The connection has nothing more for now. Between requests it waits;
    /// a request whose params are whole may be answered before its body;
    /// a request still arriving is held within the budget.
    private func ranDry(_ connection: Connection, _ now: Double) {
        guard connection.fd >= 0, connection.state == .reading else { return }
        guard connection.isMidRequest else { return account(connection, now) }
        if connection.intake.phase == .stdin && !connection.asked {
            connection.asked = true
            let request = FastCGIRequest(connection.received)
            if !answerer.responder.blocks(request) && answerer.responder.answersBeforeBody(request) {
                activity.countServed(index)
                answerer.answer(connection, withheld: true)
                connection.intake.answered()
                // Nothing more is kept for it: a connection that only drops a body holds no buffers.
                connection.received.reset()
                guard write(connection, now) else { return }
            }
        }
        account(connection, now)
    }

    /// After taking records: counts what a request under way (arriving,
    /// carried, or on the pool) holds against the server's budget, and
    /// gives a connection that is idle again the idle deadline (after an
    /// abort, management records, or the end of a body answered early).
    private func account(_ connection: Connection, _ now: Double) {
        guard connection.fd >= 0 else { return }
        let busy = connection.isMidRequest || connection.state == .suspended
        if !busy && connection.state == .reading { connection.deadline = now + server.options.idleTimeout }
        let wanted = busy ? connection.received.heldBytes + connection.carry.capacity : 0
        let change = wanted - connection.held
        guard change != 0 else { return }
        connection.held = wanted
        if server.heldBytes.add(change, ordering: .relaxed).newValue > server.options.maxHeldBytes && change > 0 {
            refuse(connection, .limit, "requests still arriving hold over \(server.options.maxHeldBytes) bytes")
        }
    }

    private func enqueue(_ connection: Connection) {
        guard !connection.queued else { return }
        connection.queued = true
        runnable.append(connection)
    }

    private func release(_ connection: Connection) {
        server.heldBytes.subtract(connection.held, ordering: .relaxed)
        connection.held = 0
    }

    /// The end of the stream: the normal end of a connection between
    /// requests or after an answered request; a request cut short otherwise.
    private func peerClosed(_ connection: Connection, _ now: Double) {
        let intake = connection.intake
        if (intake.isIdle || intake.phase == .answered) && connection.carry.isEmpty { return discard(connection) }
        if now >= connection.deadline {
            return refuse(connection, .incomplete, "request incomplete after \(server.options.ioTimeout) s")
        }
        if intake.isIdle {
            return refuse(connection, .incomplete, connection.carry.count < FCGI.headerLength
                          ? "connection closed inside a record header" : "connection closed inside a record")
        }
        refuse(connection, .incomplete, connection.carry.isEmpty
               ? "connection closed inside request \(intake.requestID)" : "connection closed inside a record")
    }

    private func runRunnable(_ now: Double) {
        swap(&runnable, &running)
        for connection in running {
            connection.queued = false
            guard connection.fd >= 0, connection.state == .reading else { continue }
            if takeCarried(connection, now) { ranDry(connection, now) }
        }
        running.removeAll(keepingCapacity: true)
    }

    // MARK: Writing

    /// Writes the connection's output; returns whether it is still
    /// this loop's to read (false: closed, or waiting for the socket).
    @discardableResult
    private func write(_ connection: Connection, _ now: Double) -> Bool {
        let output = connection.output.bytes
        while connection.sent < output.count {
            let n = send(connection.fd, output.baseAddress! + connection.sent, output.count - connection.sent,
                         Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            if n > 0 { connection.sent += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                if connection.state != .writing {
                    connection.state = .writing
                    connection.deadline = now + server.options.ioTimeout
                    if !watch(connection, EPOLLOUT.rawValue, EPOLL_CTL_MOD) { discard(connection) }
                }
                return false
            }
            refuse(connection, .incomplete, "write failed: \(lastError())")
            return false
        }
        connection.output.removeAll(releasingAbove: 64 * 1024)
        connection.sent = 0
        if connection.closeWhenWritten {
            discard(connection)
            return false
        }
        if connection.state == .writing {
            connection.state = .reading
            // A request under way keeps its own deadline.
            if !connection.isMidRequest { connection.deadline = now + server.options.idleTimeout }
            guard watch(connection, EPOLLIN.rawValue, EPOLL_CTL_MOD) else {
                discard(connection)
                return false
            }
            // Records that waited while the answer was written.
            if !connection.carry.isEmpty { enqueue(connection) }
        }
        return true
    }

    // MARK: The pool

    private func suspend(_ connection: Connection) {
        connection.state = .suspended
        unwatch(connection.fd)
        suspended += 1
        server.pool.submit(.init(connection: connection, loop: self))
    }

    /// Called by a pool thread: the connection's answer is in its output.
    func resume(_ connection: Connection) {
        let address = UInt(bitPattern: Unmanaged.passUnretained(connection).toOpaque())
        resumed.withLock { $0.append(address) }
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    private func takeResumed(_ now: Double) {
        var count: UInt64 = 0
        _ = Glibc.read(wakeFD, &count, 8)
        let back = resumed.withLock { list in
            defer { list.removeAll(keepingCapacity: true) }
            return list
        }
        for address in back {
            let connection = Unmanaged<Connection>.fromOpaque(UnsafeRawPointer(bitPattern: address)!).takeUnretainedValue()
            suspended -= 1
            connection.finishRequest()
            connection.state = .reading
            connection.deadline = now + server.options.idleTimeout
            account(connection, now)
            guard connection.fd >= 0 else { continue }
            guard watch(connection, EPOLLIN.rawValue, EPOLL_CTL_ADD) else {
                discard(connection)
                continue
            }
            if write(connection, now) && !connection.carry.isEmpty { enqueue(connection) }
        }
    }

    // MARK: Closing

    /// Closes a connection quietly.
    private func discard(_ connection: Connection) {
        guard connection.fd >= 0 else { return }
        if connection.held > 0 { release(connection) }
        if connection.state != .suspended { unwatch(connection.fd) }
        close(connection.fd)
        connection.fd = -1
        server.openConnections.leave()
        let last = connections.removeLast()
        if last !== connection {
            connections[connection.slot] = last
            last.slot = connection.slot
        }
        connection.slot = -1
        if spare.count < 64 { spare.append(connection) }
    }

    private func refuse(_ connection: Connection, _ reason: RefusalReason, _ detail: String) {
        server.refusals.record(reason, detail)
        discard(connection)
    }

    /// Closes connections past their deadline: idle too long, a request
    /// not whole in time, or an answer not taken in time.
    private func reap(_ now: Double) {
        if acceptPaused && !stopping {
            acceptPaused = !watch(server.socket.fd, Self.listenToken, EPOLLIN.rawValue | EPOLLEXCLUSIVE.rawValue)
        }
        var closedIdle = 0
        var index = connections.count - 1
        while index >= 0 {
            let connection = connections[index]
            index -= 1
            guard connection.state != .suspended, now >= connection.deadline else { continue }
            if connection.state == .writing {
                refuse(connection, .incomplete, "answer not taken within \(server.options.ioTimeout) s")
            } else if connection.isMidRequest {
                refuse(connection, .incomplete, "request incomplete after \(server.options.ioTimeout) s")
            } else {
                discard(connection)
                closedIdle += 1
            }
        }
        if closedIdle > 0 {
            server.logger.debug("closed idle connections", metadata: ["count": .stringConvertible(closedIdle)])
        }
    }

    // MARK: Stopping

    /// The server stops: no new connections (after those already queued
    /// on a unix socket this process created, whose path is gone); what was
    /// sent is answered, requests still arriving are awaited within their
    /// deadline, and idle connections are closed.
    private func beginStop(_ now: Double) {
        guard !stopping else { return }
        stopping = true
        publishedBusy = true // counted in `server.busyLoops` by `stop()`
        unwatch(server.stopFD)
        if server.socket.drainsOnStop && !acceptPaused {
            acceptConnections(now, limit: Int.max)
        }
        if !acceptPaused { unwatch(server.socket.fd) }
        acceptPaused = true
        nextReap = now
    }

    /// While stopping: whether this loop is done. Its idle connections are
    /// kept while any loop still has a request under way (a request that
    /// nginx sends on a kept connection meanwhile is answered), then closed.
    private func drained() -> Bool {
        let busy = connections.contains { $0.state != .reading || ($0.isMidRequest && $0.intake.phase != .answered) }
        if busy != publishedBusy {
            publishedBusy = busy
            if busy { server.busyLoops.add(1, ordering: .relaxed) } else { server.busyLoops.subtract(1, ordering: .relaxed) }
        }
        guard !busy && server.busyLoops.load(ordering: .relaxed) == 0 else { return false }
        closeIdle()
        return connections.isEmpty
    }

    /// Closes each connection that has nothing sent, under way or to write.
    /// A request sent meanwhile is in the socket: the set reports it first,
    /// so one byte's look tells.
    private func closeIdle() {
        var index = connections.count - 1
        while index >= 0 {
            let connection = connections[index]
            index -= 1
            guard connection.state == .reading, connection.carry.isEmpty,
                  connection.intake.isIdle || connection.intake.phase == .answered else { continue }
            var byte: UInt8 = 0
            if recv(connection.fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) > 0 { continue }
            discard(connection)
        }
    }
}
