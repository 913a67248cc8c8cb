import Glibc
import CFastCGI
import Dispatch
import FoundationEssentials
import Logging

/// Handles requests on one worker thread. Each worker gets its own responder
/// from the factory, so per-worker state (a keyed HMAC context, buffers)
/// needs no lock.
public protocol FastCGIResponder: AnyObject {
    func respond(to request: FastCGIRequest, with response: inout HTTPResponse)

    /// Whether `request` is answered the same whatever its body, so that it
    /// can be answered before its body has arrived. Asked only of a request
    /// whose params are whole and whose body is still arriving (a web
    /// server that streams uploads); true serves it at once, with an empty
    /// body, and drops the rest of the body as it comes. The default, false,
    /// parks the request until its body is whole.
    func answersBeforeBody(_ request: some RequestParameters) -> Bool
}

extension FastCGIResponder {
    public func answersBeforeBody(_ request: some RequestParameters) -> Bool { false }
}

/// A threaded libfcgi responder: one listen socket, N worker threads, each
/// with its own `FCGX_Request` and `FCGX_Accept_r` loop (the model of fcgi2's
/// examples/threaded.c).
///
/// Waiting: all workers wait in one shared epoll set that holds the
/// non-blocking listen socket, a stop eventfd, and every idle connection
/// (one-shot). Whichever worker is free takes the next event: it accepts a
/// new connection (a worker that loses the race gets EAGAIN and waits
/// again), or takes up a connection that has data. An idle connection, kept
/// alive by nginx or just opened, therefore holds no thread, so nginx's
/// FastCGI keep-alive pool can be larger than the worker count, and a stop
/// reaches every idle worker at once.
///
/// Checking: every record of a connection is checked before libfcgi sees
/// it, management records are answered by this server, and a malformed
/// connection is closed with one log line (`ConnectionWorker`,
/// `RequestIntake`). No worker waits for a request's bytes: a request still
/// arriving is parked with its connection (`PartialRequest`). Writes time
/// out after `ioTimeout`, and a request must be whole within it.
public final class FastCGIServer: @unchecked Sendable {
    // @unchecked: every stored property is a `let`; the ones that are not
    // Sendable themselves are the listen socket (its descriptor is only
    // read after init, `close` runs once the workers are done) and the
    // responder factory's products, each handed to one worker thread.
    public struct Options: Sendable {
        public var workers: Int
        /// How long a stop waits for in-flight requests before exiting anyway.
        public var drainTimeout: Double
        /// The longest a worker waits on one write of a connection, and the
        /// longest a request may take to arrive whole from its first byte
        /// (parked meanwhile: it holds no worker). nginx sends a request
        /// whole, so only a broken or slow peer gets near it.
        public var ioTimeout: Double
        /// The largest header block (BEGIN_REQUEST and PARAMS) accepted.
        public var maxHeaderBytes: Int
        /// The largest request body (STDIN) accepted; a larger one closes
        /// the connection. nginx's admin snippet stops bodies over 128 KiB.
        public var maxBodyBytes: Int
        /// The most connections held at once (FCGI_MAX_CONNS); beyond,
        /// new ones are closed at once.
        public var maxConnections: Int
        /// How long a kept connection may wait for its next request (and a
        /// new one for its first) before it is closed. Above nginx's own
        /// upstream keepalive_timeout (60 s), so nginx closes first.
        public var idleTimeout: Double
        /// Who may connect (`--peer-uid`, `FCGI_WEB_SERVER_ADDRS`).
        public var peers: PeerPolicy
        /// The most memory that requests still arriving (parked with their
        /// connections, `PartialRequest`) may hold together; beyond, the
        /// connection that would go over is closed.
        public var maxHeldBytes: Int

        public init(workers: Int = FastCGIServer.defaultWorkers, drainTimeout: Double = 10, ioTimeout: Double = 10,
                    maxHeaderBytes: Int = FastCGIPreflight.defaultLimit, maxBodyBytes: Int = 1 << 20,
                    maxConnections: Int = 1024, idleTimeout: Double = 120, peers: PeerPolicy = PeerPolicy(),
                    maxHeldBytes: Int = 64 << 20) {
            self.workers = workers
            self.drainTimeout = drainTimeout
            self.ioTimeout = ioTimeout
            self.maxHeaderBytes = maxHeaderBytes
            self.maxBodyBytes = maxBodyBytes
            self.maxConnections = maxConnections
            self.idleTimeout = idleTimeout
            self.peers = peers
            self.maxHeldBytes = maxHeldBytes
        }

        var limits: RequestIntake.Limits {
            RequestIntake.Limits(maxHeaderBytes: maxHeaderBytes, maxBodyBytes: maxBodyBytes,
                                 values: ManagementValues(maxConnections: maxConnections, maxRequests: workers))
        }
    }

    /// Four workers per CPU, at least 4: the token path is CPU-bound (a few µs),
    /// so about one busy worker per core saturates it; the extra ones keep
    /// requests flowing while some workers wait on I/O (a slow FastCGI peer,
    /// libfcgi's lingering close, later an upstream call).
    public static var defaultWorkers: Int {
        max(4, 4 * ProcessInfo.processInfo.activeProcessorCount)
    }

    public static let maxWorkers = 1024

    private let socket: ListenSocket
    private let options: Options
    private let logger: Logger
    private let makeResponder: @Sendable () throws -> any FastCGIResponder
    /// Busy workers and refusals, for whoever reports metrics.
    public let activity: WorkerActivity
    private let stopFD: Int32
    /// The epoll set every worker waits in (see the type's comment).
    private let events: Int32
    /// AF_UNIX, AF_INET or AF_INET6: what `options.peers` checks.
    private let family: Int32
    /// Every refusal, counted by reason and logged at most once a second each.
    private let refusals: Refusals
    /// Open connections and how long parked ones have been idle.
    private let connections: IdleConnections

    public init(socket: ListenSocket, options: Options, logger: Logger, activity: WorkerActivity? = nil,
                makeResponder: @escaping @Sendable () throws -> any FastCGIResponder) throws {
        precondition((1...Self.maxWorkers).contains(options.workers))
        precondition(activity == nil || activity!.workers == options.workers, "one activity slot per worker")
        self.activity = activity ?? WorkerActivity(workers: options.workers)
        self.socket = socket
        self.options = options
        self.logger = logger
        self.makeResponder = makeResponder
        connections = IdleConnections(maxConnections: options.maxConnections, maxHeldBytes: options.maxHeldBytes)
        refusals = Refusals(activity: self.activity, logger: logger)
        var bound = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket.fd, $0, &length) }
        }
        family = Int32(bound.ss_family)
        if options.peers.allowedUIDs != nil && family != AF_UNIX {
            throw ListenError("--peer-uid needs a unix socket, and \(socket.address) is not one: for TCP, use FCGI_WEB_SERVER_ADDRS")
        }
        stopFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard stopFD >= 0 else { throw ListenError("eventfd: \(lastError())") }
        events = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard events >= 0 else { throw ListenError("epoll_create1: \(lastError())") }
        guard Self.watch(events, socket.fd, EPOLLIN.rawValue), Self.watch(events, stopFD, EPOLLIN.rawValue) else {
            throw ListenError("epoll_ctl: \(lastError())")
        }
    }

    deinit {
        close(stopFD)
        close(events)
    }

    private static func watch(_ epoll: Int32, _ fd: Int32, _ flags: UInt32, modify: Bool = false) -> Bool {
        var event = epoll_event()
        event.events = flags
        event.data.fd = fd
        return epoll_ctl(epoll, modify ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &event) == 0
    }

    /// No core dumps and no same-uid ptrace for this process, from now on:
    /// call it before any secret is read.
    public static func forbidCoreDumps() -> Bool { mbf_forbid_core_dumps() == 0 }

    /// Raises the soft descriptor limit toward the hard one, enough for
    /// `connections` plus the workers' pipes; returns the limit in force.
    public static func raiseDescriptorLimit(toHold connections: Int, workers: Int) -> Int {
        mbf_raise_nofile_limit(connections + 2 * workers + 64)
    }

    /// libfcgi's one-time setup, before any worker hands it a connection.
    static func initializeLibfcgi() -> Bool { FCGX_Init() == 0 }

    /// Asks every worker to finish its current request and exit.
    public func stop() {
        var one: UInt64 = 1
        _ = write(stopFD, &one, 8)
    }

    /// Serves until SIGTERM or SIGINT (or `stop()`), then stops accepting,
    /// lets in-flight requests finish, removes the socket file it created and
    /// returns. SIGHUP calls `onHangup` when given.
    public func run(onHangup: (() -> Void)? = nil) throws {
        guard Self.initializeLibfcgi() else { throw ListenError("FCGX_Init failed") }

        // Workers inherit this mask, so the signals reach only the signalfd below.
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&signals, signal) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        let signalFD = signalfd(-1, &signals, Int32(SFD_CLOEXEC))
        guard signalFD >= 0 else { throw ListenError("signalfd: \(lastError())") }
        defer { close(signalFD) }

        // Dispatch, not Synchronization: the stop needs a blocking wait with
        // a timeout for the worker threads, which Mutex and Atomic do not offer.
        let finished = DispatchGroup()
        let workers = try (0..<options.workers).map { index in
            try ConnectionWorker(index: index, responder: try makeResponder(), limits: options.limits,
                                 ioTimeout: options.ioTimeout, logger: logger, activity: activity, refusals: refusals)
        }
        for (index, worker) in workers.enumerated() {
            finished.enter()
            try WorkerThread.start(named: "fcgi-worker-\(index)") { [self] in
                workerLoop(worker)
                finished.leave()
            }
        }
        logger.info("listening", metadata: ["address": "\(socket.address)", "workers": .stringConvertible(options.workers)])

        waitForStop(signalFD: signalFD, onHangup: onHangup)
        // A unix socket we own leaves the filesystem first: no new connection
        // can reach it, and the workers drain what is already queued.
        socket.removeSocketFile()
        stop()
        if finished.wait(timeout: .now() + options.drainTimeout) == .timedOut {
            logger.error("stopping with requests still in flight", metadata: ["after_seconds": .stringConvertible(options.drainTimeout)])
        }
        socket.close()
        logger.info("stopped")
    }

    private func waitForStop(signalFD: Int32, onHangup: (() -> Void)?) {
        var fds = [pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0)]
        // A few times per --io-timeout (at most once a second), shut down the
        // parked connections past their deadline: idle for too long, or with
        // a request not whole in time. Each scan is one load per descriptor slot.
        let interval = Int32(min(1000, max(50, options.ioTimeout * 250)))
        while true {
            let ready = poll(&fds, 2, interval)
            if ready < 0 { if errno == EINTR { continue }; return }
            if ready == 0 {
                let reaped = connections.reap(now: MonotonicClock.now())
                if reaped > 0 { logger.debug("closed parked connections past their deadline", metadata: ["count": .stringConvertible(reaped)]) }
                continue
            }
            if fds[1].revents != 0 { return }
            guard fds[0].revents != 0 else { continue }
            var info = signalfd_siginfo()
            guard read(signalFD, &info, MemoryLayout<signalfd_siginfo>.size) == MemoryLayout<signalfd_siginfo>.size else {
                continue
            }
            switch Int32(info.ssi_signo) {
            case SIGHUP:
                if let onHangup { onHangup() } else { logger.notice("SIGHUP ignored: nothing to reload") }
            default:
                logger.info("stopping", metadata: ["signal": .stringConvertible(info.ssi_signo)])
                return
            }
        }
    }

    private enum Wake: Equatable { case listen, stop, kept(Int32) }

    private func workerLoop(_ worker: ConnectionWorker) {
        var stopping = false
        while true {
            let fd: Int32
            var partial: PartialRequest?
            switch stopping ? nextWhileStopping() : wait() {
            case .stop:
                if stopping { return } // nothing is left to serve
                stopping = true
                continue
            case .kept(let kept):
                partial = connections.claim(kept)
                fd = kept
            case .listen:
                guard let accepted = accept() else { continue }
                fd = accepted
            }
            switch worker.serve(fd, resuming: partial) {
            case .park: park(fd, until: MonotonicClock.now() + options.idleTimeout)
            case .parkPartial(let request): park(fd, until: request.deadline, holding: request)
            case .closed: connections.closed()
            }
        }
    }

    /// Accepts one connection, or nil if another worker got it first.
    private func accept() -> Int32? {
        let fd = mbf_accept_cloexec(socket.fd)
        guard fd >= 0 else {
            let error = errno
            if error != EAGAIN && error != EWOULDBLOCK && error != EINTR && error != ECONNABORTED {
                logger.error("accept failed", metadata: ["error": "\(String(cString: strerror(error)))"])
                if error == EMFILE || error == ENFILE || error == ENOMEM || error == ENOBUFS {
                    usleep(10_000) // out of descriptors: back off instead of spinning
                }
            }
            return nil
        }
        // Blocking, as libfcgi expects, but never for longer than ioTimeout.
        var timeout = timeval(tv_sec: Int(options.ioTimeout),
                              tv_usec: Int(options.ioTimeout.truncatingRemainder(dividingBy: 1) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        if let reason = options.peers.refusal(of: fd, family: family) {
            close(fd)
            refusals.record(.peer, reason)
            return nil
        }
        guard connections.admit() else {
            close(fd)
            refusals.record(.limit, "\(options.maxConnections) connections open (--max-connections)")
            return nil
        }
        return fd
    }

    /// Puts a connection in the shared set, to be served when it has data,
    /// with its request still arriving, if any, until `deadline`.
    private func park(_ fd: Int32, until deadline: Double, holding partial: PartialRequest? = nil) {
        // Stamped before it is armed: a worker woken at once finds the stamp to claim.
        if let refusal = connections.park(fd, until: deadline, holding: partial) {
            close(fd)
            connections.closed()
            refusals.record(.limit, refusal)
            return
        }
        if !Self.watch(events, fd, EPOLLIN.rawValue | EPOLLONESHOT.rawValue, modify: true)
            && !Self.watch(events, fd, EPOLLIN.rawValue | EPOLLONESHOT.rawValue) {
            _ = connections.claim(fd)
            close(fd)
            connections.closed()
        }
    }

    /// After a stop: what is still to be served. Requests already sent on
    /// kept connections are answered, and so are requests still arriving
    /// (parked: their rest is waited for, within their deadline and the
    /// drain timeout), and, on a unix socket this process created (its path
    /// is gone, so the queue only shrinks), so are the connections queued
    /// on it. `.stop` when nothing is left.
    ///
    /// One event per call: a one-shot kept connection that was dequeued but
    /// not served would never be reported again. The stop eventfd is always
    /// ready and level-triggered, so it comes back after the other ready
    /// entries: seeing it twice in a row means nothing else is ready.
    private func nextWhileStopping() -> Wake {
        var event = epoll_event()
        var stopsSeen = 0
        while true {
            if stopsSeen >= 2 {
                // Nothing ready; a request still arriving is worth waiting
                // for (the reaper no longer runs: its deadline is checked here).
                guard connections.partials > 0 else { break }
                _ = connections.reap(now: MonotonicClock.now())
                usleep(20_000)
                stopsSeen = 0
            }
            let count = epoll_wait(events, &event, 1, 0)
            if count < 0 && errno == EINTR { continue }
            guard count == 1 else { break }
            let fd = event.data.fd
            if fd == stopFD {
                stopsSeen += 1
            } else if fd == socket.fd {
                // Left for the next process otherwise (or refused on TCP).
                if socket.drainsOnStop { return .listen }
            } else {
                return .kept(fd)
            }
        }
        return .stop
    }

    /// Waits for the next event: a new connection, a kept connection with a
    /// request, or the stop signal.
    private func wait() -> Wake {
        var event = epoll_event()
        while true {
            let count = epoll_wait(events, &event, 1, -1)
            if count < 0 {
                if errno == EINTR { continue }
                return .stop
            }
            if count == 0 { continue }
            let fd = event.data.fd
            if fd == stopFD { return .stop }
            if fd == socket.fd { return .listen }
            return .kept(fd)
        }
    }
}
