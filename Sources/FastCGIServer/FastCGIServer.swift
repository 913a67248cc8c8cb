import Glibc
import CFastCGI
import Dispatch
import FoundationEssentials
import Logging
import Synchronization

/// Handles requests on one thread. Each event loop and each pool thread
/// gets its own responder from the factory, so per-thread state (a keyed
/// HMAC context, buffers) needs no lock.
public protocol FastCGIResponder: AnyObject {
    func respond(to request: FastCGIRequest, with response: inout HTTPResponse)

    /// Whether `request` is answered the same whatever its body, so that it
    /// can be answered before its body has arrived. Asked only of a request
    /// whose params are whole and whose body is still arriving (a web
    /// server that streams uploads); true serves it at once, with an empty
    /// body, and drops the rest of the body as it comes. The default, false,
    /// parks the request until its body is whole.
    func answersBeforeBody(_ request: FastCGIRequest) -> Bool

    /// Whether answering `request` (whole, or with its params whole) may
    /// wait on something else: a call to another service. Such a request is
    /// answered on the blocking pool, never on an event loop. The default,
    /// false, answers everything on the loops.
    func blocks(_ request: FastCGIRequest) -> Bool
}

extension FastCGIResponder {
    public func answersBeforeBody(_ request: FastCGIRequest) -> Bool { false }
    public func blocks(_ request: FastCGIRequest) -> Bool { false }
}

/// A FastCGI responder server (spec: fcgi2 doc/fcgi-spec.html): event loops
/// that read, check and answer requests, and a pool for blocking work.
///
/// - **Event loops** (`eventLoops`, half the CPUs by default): each has its
///   own epoll set and the connections it accepted, reads each request once
///   into the connection's buffers, checks every record as it comes
///   (`RequestIntake`: management records answered here, malformed
///   connections closed with one log line), and answers what does not block
///   (the token, health and metrics routes) with one write. An idle
///   connection, kept alive by nginx, holds no thread.
/// - **The blocking pool** (`workers` threads): requests the responder says
///   may block (`FastCGIResponder.blocks`: calls to MagicBell) are handed
///   over whole and handed back answered, so a slow MagicBell never delays
///   a token.
///
/// libfcgi opens `--listen` sockets (`FCGX_OpenSocket`) and its `fastcgi.h`
/// defines the wire format; its parser is the reference the server's own is
/// tested against. It no longer reads requests: it allocates 42 times per
/// request (a copy of each param, three 8 KiB stream buffers) and would read
/// every record a second time (issue 22).
public final class FastCGIServer: @unchecked Sendable {
    // @unchecked: every stored property is a `let` of a Sendable type or
    // of one used as documented: the listen socket (its descriptor is only
    // read after init; `close` runs once the loops are done) and the pool.
    public struct Options: Sendable {
        /// Threads that read requests and answer those that do not block.
        public var eventLoops: Int
        /// Threads that answer requests that may block (calls to MagicBell).
        public var workers: Int
        /// How long a stop waits for in-flight requests before exiting anyway.
        public var drainTimeout: Double
        /// The longest a request may take to arrive whole from its first
        /// byte, and an answer to be taken by the web server. nginx sends
        /// a request whole and reads its answer at once, so only a broken
        /// or slow peer gets near it.
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
        /// The most memory that requests still arriving may hold together;
        /// beyond, the connection that would go over is closed.
        public var maxHeldBytes: Int

        public init(eventLoops: Int = FastCGIServer.defaultEventLoops, workers: Int = FastCGIServer.defaultWorkers,
                    drainTimeout: Double = 10, ioTimeout: Double = 10,
                    maxHeaderBytes: Int = FastCGIServer.defaultMaxHeaderBytes, maxBodyBytes: Int = 1 << 20,
                    maxConnections: Int = 1024, idleTimeout: Double = 120, peers: PeerPolicy = PeerPolicy(),
                    maxHeldBytes: Int = 64 << 20) {
            self.eventLoops = eventLoops
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
                                 values: ManagementValues(maxConnections: maxConnections, maxRequests: eventLoops + workers))
        }
    }

    /// Half the CPUs, at least one. A loop never waits on anything but its
    /// sockets, so each can keep a core busy; the web server in front
    /// spends about as much CPU per request as the responder, and loops
    /// that outnumber the cores it leaves are preempted while their
    /// connections wait. Measured on 2 cores behind one nginx worker
    /// (bench/README.md): one loop, p99 0.56 ms; two, 0.63 to 1.08 ms.
    public static var defaultEventLoops: Int { max(1, ProcessInfo.processInfo.activeProcessorCount / 2) }
    public static let maxEventLoops = 256

    /// Pool threads: 4 per CPU, at least 4. They mostly wait on MagicBell,
    /// so they are cheap; the app's gates bound how many may wait at once.
    public static var defaultWorkers: Int {
        max(4, 4 * ProcessInfo.processInfo.activeProcessorCount)
    }
    public static let maxWorkers = 1024

    /// The default header block limit: nginx's own cap on request headers
    /// (4 × 8 KiB large_client_header_buffers) with room for a site that raises it.
    public static let defaultMaxHeaderBytes = 128 * 1024

    let socket: ListenSocket
    let options: Options
    let limits: RequestIntake.Limits
    let logger: Logger
    private let makeResponder: @Sendable () throws -> any FastCGIResponder
    /// Requests served and refusals, for whoever reports metrics.
    public let activity: WorkerActivity
    /// Every loop's epoll set holds it: written once, it stops them all.
    let stopFD: Int32
    /// AF_UNIX, AF_INET or AF_INET6: what `options.peers` checks.
    let family: Int32
    /// Every refusal, counted by reason and logged at most once a second each.
    let refusals: Refusals
    /// Connections open, across the loops (`--max-connections`).
    let openConnections: CountingGate
    /// Bytes held by requests still arriving, across the loops.
    let heldBytes = Atomic<Int>(0)
    /// While stopping: loops that still have a request under way.
    let busyLoops = Atomic<Int>(0)
    private let stopRequested = Atomic<Bool>(false)
    let pool = BlockingPool()

    public init(socket: ListenSocket, options: Options, logger: Logger, activity: WorkerActivity? = nil,
                makeResponder: @escaping @Sendable () throws -> any FastCGIResponder) throws {
        precondition((1...Self.maxEventLoops).contains(options.eventLoops) && (1...Self.maxWorkers).contains(options.workers))
        precondition(activity == nil || (activity!.workers == options.workers && activity!.eventLoops == options.eventLoops),
                     "one activity slot per thread")
        self.activity = activity ?? WorkerActivity(eventLoops: options.eventLoops, workers: options.workers)
        self.socket = socket
        self.options = options
        limits = options.limits
        self.logger = logger
        self.makeResponder = makeResponder
        openConnections = CountingGate(limit: options.maxConnections)
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
        // The loops accept without blocking; an inherited socket may not be yet.
        let flags = fcntl(socket.fd, F_GETFL)
        guard flags >= 0, fcntl(socket.fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw ListenError("fcntl O_NONBLOCK on the listen socket: \(lastError())")
        }
    }

    deinit {
        close(stopFD)
    }

    /// No core dumps and no same-uid ptrace for this process, from now on:
    /// call it before any secret is read.
    public static func forbidCoreDumps() -> Bool { mbf_forbid_core_dumps() == 0 }

    /// Raises the soft descriptor limit toward the hard one, enough for
    /// `connections` plus the threads' own; returns the limit in force.
    public static func raiseDescriptorLimit(toHold connections: Int, threads: Int) -> Int {
        mbf_raise_nofile_limit(connections + 2 * threads + 64)
    }

    /// Asks every loop to finish what it has and exit.
    public func stop() {
        // Every loop counts as busy until it has looked at its own
        // connections: none closes its idle ones before all have.
        guard stopRequested.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        busyLoops.store(options.eventLoops, ordering: .relaxed)
        var one: UInt64 = 1
        _ = write(stopFD, &one, 8)
    }

    /// Serves until SIGTERM or SIGINT (or `stop()`), then stops accepting,
    /// lets in-flight requests finish, removes the socket file it created and
    /// returns. SIGHUP calls `onHangup` when given.
    public func run(onHangup: (() -> Void)? = nil) throws {
        // Every socket write says MSG_NOSIGNAL; this covers the rest (a log
        // line to a closed pipe, libcurl's TLS writes before 7.87): a peer
        // that went away is an error to handle, never the end of the process.
        signal(SIGPIPE, SIG_IGN)
        // Threads inherit this mask, so the signals reach only the signalfd below.
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&signals, signal) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        let signalFD = signalfd(-1, &signals, Int32(SFD_CLOEXEC))
        guard signalFD >= 0 else { throw ListenError("signalfd: \(lastError())") }
        defer { close(signalFD) }

        // Dispatch, not Synchronization: the stop needs a blocking wait with
        // a timeout for the threads, which Mutex and Atomic do not offer.
        let loopsDone = DispatchGroup()
        let poolDone = DispatchGroup()
        let loops = try (0..<options.eventLoops).map { index in
            try EventLoop(index: index, server: self, responder: try makeResponder())
        }
        let answerers = try (0..<options.workers).map { _ in Answerer(try makeResponder()) }
        var threads: [pthread_t] = []
        for (index, answerer) in answerers.enumerated() {
            poolDone.enter()
            let slot = options.eventLoops + index
            threads.append(try WorkerThread.start(named: "fcgi-pool-\(index)") { [self] in
                pool.run(slot: slot, answerer: answerer, activity: activity)
                poolDone.leave()
            })
        }
        for (index, loop) in loops.enumerated() {
            loopsDone.enter()
            threads.append(try WorkerThread.start(named: "fcgi-loop-\(index)") {
                loop.run()
                loopsDone.leave()
            })
        }
        logger.info("listening", metadata: ["address": "\(socket.address)", "event_loops": .stringConvertible(options.eventLoops),
                                            "workers": .stringConvertible(options.workers)])

        waitForStop(signalFD: signalFD, onHangup: onHangup)
        // A unix socket we own leaves the filesystem first: no new connection
        // can reach it, and the loops answer what is already queued.
        socket.removeSocketFile()
        stop()
        if loopsDone.wait(timeout: .now() + options.drainTimeout) == .timedOut {
            logger.error("stopping with requests still in flight", metadata: ["after_seconds": .stringConvertible(options.drainTimeout)])
        } else {
            // Every loop is done, so no request is on the pool: its threads
            // end at once. Joined, so that each has run its thread-local
            // destructors (OpenSSL's, libcurl's kept connections) by exit.
            pool.stop()
            if poolDone.wait(timeout: .now() + 1) == .success {
                for thread in threads { pthread_join(thread, nil) }
            }
        }
        socket.close()
        logger.info("stopped")
    }

    private func waitForStop(signalFD: Int32, onHangup: (() -> Void)?) {
        var fds = [pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0)]
        while true {
            let ready = poll(&fds, 2, -1)
            if ready < 0 { if errno == EINTR { continue }; return }
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
}
