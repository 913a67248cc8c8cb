#if canImport(Glibc)
import Glibc
#endif
import CFastCGI
import Foundation
import Logging

/// Handles requests on one worker thread. Each worker gets its own responder
/// from the factory, so per-worker state (a keyed HMAC context, buffers)
/// needs no lock.
public protocol FastCGIResponder: AnyObject {
    func respond(to request: FastCGIRequest, with response: inout HTTPResponse)
}

/// A threaded libfcgi responder: one listen socket, N worker threads, each
/// with its own `FCGX_Request` and `FCGX_Accept_r` loop (the model of fcgi2's
/// examples/threaded.c).
///
/// Accepting: the listen socket is non-blocking and each worker waits in its
/// own epoll set on the listen socket (EPOLLEXCLUSIVE, so a connection wakes
/// one worker, not all) and on a stop eventfd. `FCGX_Accept_r` then accepts
/// without blocking; a worker that loses the race gets EAGAIN and waits again.
/// A stop therefore reaches every idle worker at once.
public final class FastCGIServer: @unchecked Sendable {
    public struct Options: Sendable {
        public var workers: Int
        /// How long a stop waits for in-flight requests before exiting anyway.
        public var drainTimeout: Double

        public init(workers: Int = FastCGIServer.defaultWorkers, drainTimeout: Double = 10) {
            self.workers = workers
            self.drainTimeout = drainTimeout
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
    private let stopFD: Int32

    public init(socket: ListenSocket, options: Options, logger: Logger,
                makeResponder: @escaping @Sendable () throws -> any FastCGIResponder) throws {
        precondition((1...Self.maxWorkers).contains(options.workers))
        self.socket = socket
        self.options = options
        self.logger = logger
        self.makeResponder = makeResponder
        stopFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard stopFD >= 0 else { throw ListenError("eventfd: \(lastError())") }
    }

    deinit { close(stopFD) }

    /// Asks every worker to finish its current request and exit.
    public func stop() {
        var one: UInt64 = 1
        _ = write(stopFD, &one, 8)
    }

    /// Serves until SIGTERM or SIGINT (or `stop()`), then stops accepting,
    /// lets in-flight requests finish, removes the socket file it created and
    /// returns. SIGHUP calls `onHangup` when given.
    public func run(onHangup: (() -> Void)? = nil) throws {
        guard FCGX_Init() == 0 else { throw ListenError("FCGX_Init failed") }

        // Workers inherit this mask, so the signals reach only the signalfd below.
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&signals, signal) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        let signalFD = signalfd(-1, &signals, Int32(SFD_CLOEXEC))
        guard signalFD >= 0 else { throw ListenError("signalfd: \(lastError())") }
        defer { close(signalFD) }

        let finished = DispatchGroup()
        let responders = try (0..<options.workers).map { _ in try makeResponder() }
        for (index, responder) in responders.enumerated() {
            finished.enter()
            let thread = Thread { [self] in
                workerLoop(responder: responder)
                finished.leave()
            }
            thread.name = "fcgi-worker-\(index)"
            thread.start()
        }
        logger.info("listening", metadata: ["address": "\(socket.address)", "workers": "\(options.workers)"])

        waitForStop(signalFD: signalFD, onHangup: onHangup)
        // A unix socket we own leaves the filesystem first: no new connection
        // can reach it, and the workers drain what is already queued.
        socket.removeSocketFile()
        stop()
        if finished.wait(timeout: .now() + options.drainTimeout) == .timedOut {
            logger.error("stopping with requests still in flight", metadata: ["after_seconds": "\(options.drainTimeout)"])
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
                logger.info("stopping", metadata: ["signal": "\(info.ssi_signo)"])
                return
            }
        }
    }

    private enum Wake { case listen, stop }

    private func workerLoop(responder: any FastCGIResponder) {
        let epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else {
            logger.critical("epoll_create1 failed", metadata: ["error": "\(lastError())"])
            return
        }
        defer { close(epollFD) }
        var listenEvent = epoll_event()
        listenEvent.events = EPOLLIN.rawValue | EPOLLEXCLUSIVE.rawValue
        listenEvent.data.fd = socket.fd
        var stopEvent = epoll_event()
        stopEvent.events = EPOLLIN.rawValue
        stopEvent.data.fd = stopFD
        guard epoll_ctl(epollFD, EPOLL_CTL_ADD, socket.fd, &listenEvent) == 0,
              epoll_ctl(epollFD, EPOLL_CTL_ADD, stopFD, &stopEvent) == 0 else {
            logger.critical("epoll_ctl failed", metadata: ["error": "\(lastError())"])
            return
        }

        let request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        FCGX_InitRequest(request, socket.fd, 0)
        defer {
            FCGX_Free(request, 1)
            request.deallocate()
        }
        var response = HTTPResponse()
        var wire: [UInt8] = []
        wire.reserveCapacity(2048)
        var stopping = false

        while true {
            // Finish the previous request first, so a kept-alive connection can
            // be watched for the stop signal instead of blocking in read().
            FCGX_Finish_r(request)
            if request.pointee.ipcFd >= 0 && !waitForKeptConnection(request.pointee.ipcFd) {
                return
            }
            let rc = FCGX_Accept_r(request)
            if rc == 0 {
                response.reset()
                responder.respond(to: FastCGIRequest(raw: request), with: &response)
                response.serialize(into: &wire)
                wire.withUnsafeBufferPointer { bytes in
                    bytes.withMemoryRebound(to: CChar.self) {
                        _ = FCGX_PutStr($0.baseAddress, Int32($0.count), request.pointee.out)
                    }
                }
                continue
            }
            let error = -rc
            if error == EAGAIN || error == EWOULDBLOCK {
                // Nothing queued. When stopping, the queue is now drained.
                if stopping || wait(epollFD) == .stop {
                    if stopping || !socket.drainsOnStop { return }
                    stopping = true // serve what is already queued, then exit
                }
            } else if error == EINTR {
                continue
            } else {
                logger.error("accept failed", metadata: ["error": "\(String(cString: strerror(error)))"])
                if stopping { return }
                if error == EMFILE || error == ENFILE || error == ENOMEM || error == ENOBUFS {
                    usleep(10_000) // out of descriptors: back off instead of spinning
                }
            }
        }
    }

    private func wait(_ epollFD: Int32) -> Wake {
        var events = (epoll_event(), epoll_event())
        while true {
            let count = withUnsafeMutableBytes(of: &events) { raw in
                epoll_wait(epollFD, raw.baseAddress!.assumingMemoryBound(to: epoll_event.self), 2, -1)
            }
            if count < 0 {
                if errno == EINTR { continue }
                return .stop
            }
            if count >= 1 && (events.0.data.fd == stopFD || (count == 2 && events.1.data.fd == stopFD)) {
                return .stop
            }
            if count >= 1 { return .listen }
        }
    }

    /// Waits until the kept-alive connection has the next request (true) or a
    /// stop is requested (false: the caller closes the connection).
    private func waitForKeptConnection(_ fd: Int32) -> Bool {
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0)]
        while true {
            let ready = poll(&fds, 2, -1)
            if ready < 0 { if errno == EINTR { continue }; return false }
            if fds[0].revents != 0 { return true }
            if fds[1].revents != 0 { return false }
        }
    }
}
