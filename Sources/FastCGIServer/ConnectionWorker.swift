import Glibc
import CFastCGI
import Logging

/// One worker thread's handling of a connection that has data: it checks
/// every record (`RequestIntake`), answers what the spec says the
/// application answers, and hands libfcgi one checked request at a time.
///
/// Two ways in, one check:
/// - **peeked** (nginx's way: a request sent whole, in one write): a look at
///   the socket finds exactly one clean request, and libfcgi reads those
///   checked bytes from the socket. Costs one `recv(MSG_PEEK)`.
/// - **read** (everything else: management records, a second request id, an
///   abort, a request still arriving or bigger than the look): the records
///   are read one by one and checked as they come, management records are
///   answered, and libfcgi reads the checked BEGIN_REQUEST and PARAMS from
///   a pipe of this worker's; the body is served from memory. libfcgi then
///   writes the answer to the socket as usual.
///
/// All I/O is bounded: a request must arrive whole within `ioTimeout` of
/// its first byte, and every read and write of the socket times out.
final class ConnectionWorker: @unchecked Sendable {
    // @unchecked: a worker is made on the thread that starts the server and
    // from then on used only by the one worker thread it is handed to (its
    // buffers and its FCGX_Request are that thread's alone); the server never
    // touches it again.
    enum Outcome: Equatable {
        /// Keep the connection: wait in the shared set for its next request.
        case park
        /// The connection is closed.
        case closed
    }

    private let index: Int
    private let responder: any FastCGIResponder
    private let limits: RequestIntake.Limits
    private let ioTimeout: Double
    private let logger: Logger
    private let activity: WorkerActivity

    private let request: UnsafeMutablePointer<FCGX_Request>
    /// The look at a connection's unread bytes (the fast path's window).
    private let peek: UnsafeMutableRawBufferPointer
    /// One record's content and padding, read whole.
    private let record: UnsafeMutableRawBufferPointer
    /// A read request's checked header block (for libfcgi) and body.
    private var headerBlock: [UInt8] = []
    private var body: [UInt8] = []
    /// libfcgi reads a read request's header block from here.
    private var pipeRead: Int32 = -1
    private var pipeWrite: Int32 = -1

    private let refusedRequests = RateLimitedWarning()
    private var response = HTTPResponse()
    private var wire: [UInt8] = []

    init(index: Int, responder: any FastCGIResponder, limits: RequestIntake.Limits, ioTimeout: Double,
         logger: Logger, activity: WorkerActivity) throws {
        self.index = index
        self.responder = responder
        self.limits = limits
        self.ioTimeout = ioTimeout
        self.logger = logger
        self.activity = activity
        request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        // No listen socket for libfcgi: the worker hands it connections.
        FCGX_InitRequest(request, -1, 0)
        peek = UnsafeMutableRawBufferPointer.allocate(byteCount: limits.maxHeaderBytes + 16 * 1024, alignment: 8)
        record = UnsafeMutableRawBufferPointer.allocate(byteCount: FCGI.maxRecordLength, alignment: 8)
        wire.reserveCapacity(2048)
        try openPipe()
    }

    deinit {
        FCGX_Free(request, 1)
        request.deallocate()
        peek.deallocate()
        record.deallocate()
        close(pipeRead)
        close(pipeWrite)
    }

    /// A pipe that holds a whole header block, so that writing one never
    /// blocks and libfcgi's reads of it never wait.
    private func openPipe() throws {
        var fds: [Int32] = [-1, -1]
        guard mbf_pipe_cloexec_nonblock(&fds) == 0 else { throw ListenError("pipe2: \(lastError())") }
        pipeRead = fds[0]
        pipeWrite = fds[1]
        guard mbf_set_pipe_size(pipeWrite, Int32(limits.maxHeaderBytes + FCGI.maxRecordLength)) >= limits.maxHeaderBytes else {
            throw ListenError("cannot size a pipe for \(limits.maxHeaderBytes)-byte header blocks: \(lastError()) (see /proc/sys/fs/pipe-max-size)")
        }
    }

    /// Serves what `fd` has sent: one request, or the management records
    /// and refusals that came before it.
    func serve(_ fd: Int32) -> Outcome {
        while true {
            let got = recv(fd, peek.baseAddress, peek.count, Int32(MSG_PEEK | MSG_DONTWAIT))
            if got == 0 { // the peer closed between requests: the normal end of a kept connection
                close(fd)
                return .closed
            }
            if got < 0 {
                let error = errno
                if error == EINTR { continue }
                if error == EAGAIN || error == EWOULDBLOCK { return .park } // connected, nothing sent yet
                close(fd)
                return .closed
            }
            switch FastCGIPreflight.check(UnsafeRawBufferPointer(rebasing: peek[..<got]), limits: limits) {
            case .ready:
                return serveFromSocket(fd)
            case .invalid(let reason):
                return refuse(fd, reason)
            case .needsIntake:
                return intake(fd)
            }
        }
    }

    // MARK: The peeked request

    private func serveFromSocket(_ fd: Int32) -> Outcome {
        // libfcgi has no call for a connection it did not accept: its whole
        // state is these two fields (ipcFd, keepConnection), the same since
        // fcgi 2.4. keepConnection = 1 keeps FCGX_Accept_r's opening
        // FCGX_Finish_r from closing the connection.
        request.pointee.ipcFd = fd
        request.pointee.keepConnection = 1
        request.pointee.detached = 1 // see finish
        let rc = FCGX_Accept_r(request)
        guard rc == 0 else {
            // libfcgi closed it (a read failed or timed out).
            logger.warning("dropped a FastCGI connection", metadata: ["error": "\(String(cString: strerror(-rc)))"])
            return .closed
        }
        activity.countServed(index, peeked: true)
        respond(body: nil)
        return finish(drain: true)
    }

    // MARK: The request read record by record

    /// Reads records until a whole request is in (then serves it), or the
    /// connection has nothing more for now, or is refused.
    private func intake(_ fd: Int32) -> Outcome {
        var intake = RequestIntake(limits: limits)
        headerBlock.removeAll(keepingCapacity: true)
        body.removeAll(keepingCapacity: true)
        var deadline = MonotonicClock.now() + ioTimeout
        while true {
            if intake.isIdle {
                // Between requests: wait in the shared set, not here.
                switch available(fd) {
                case .some(false): return .park
                case nil: close(fd); return .closed
                case .some(true): break
                }
                deadline = MonotonicClock.now() + ioTimeout
            }
            if let problem = readRecordPart(fd, into: UnsafeMutableRawBufferPointer(rebasing: peek[..<FCGI.headerLength]), deadline: deadline,
                                            closed: intake.isIdle ? "connection closed inside a record header"
                                                                  : "connection closed inside request \(intake.requestID)") {
                return refuse(fd, problem)
            }
            let header = RecordHeader(UnsafeRawBufferPointer(peek))
            if let problem = intake.precheck(header) { return refuse(fd, problem) }
            let rest = UnsafeMutableRawBufferPointer(rebasing: record[..<(header.contentLength + header.paddingLength)])
            if let problem = readRecordPart(fd, into: rest, deadline: deadline, closed: "connection closed inside a record") {
                return refuse(fd, problem)
            }
            let content = UnsafeRawBufferPointer(rebasing: record[..<header.contentLength])
            switch intake.take(header, content) {
            case .request:
                if header.type == FCGI.stdin {
                    body.append(contentsOf: content)
                } else {
                    // Rebuilt without padding: libfcgi reads exactly the checked content.
                    headerBlock.append(contentsOf: RecordHeader.bytes(type: header.type, requestID: header.requestID,
                                                                      contentLength: header.contentLength))
                    headerBlock.append(contentsOf: content)
                }
                if intake.isComplete { return serveRead(fd) }
            case .reply(let reply, let warning):
                guard writeAll(fd, reply) else { return refuse(fd, "write failed: \(lastError())") }
                if let warning {
                    activity.countRefused()
                    refusedRequests.warn(logger, "refused a FastCGI request", warning)
                    // §3.5: without FCGI_KEEP_CONN the application closes the connection once the request is ended.
                    if header.type == FCGI.beginRequest && content[2] & FCGI.keepConnFlag == 0 {
                        close(fd)
                        return .closed
                    }
                }
            case .skip:
                continue
            case .aborted(let reply):
                guard writeAll(fd, reply) else { return refuse(fd, "write failed: \(lastError())") }
                logger.info("the web server aborted a request", metadata: ["fastcgi_request_id": "\(header.requestID)"])
                if !intake.keepConnection {
                    close(fd)
                    return .closed
                }
                // The connection goes on; the intake's answer budget bounds
                // a peer that begins and aborts in a loop.
                headerBlock.removeAll(keepingCapacity: true)
                body.removeAll(keepingCapacity: true)
            case .invalid(let reason):
                return refuse(fd, reason)
            }
        }
    }

    /// Hands libfcgi the checked header block through the pipe, then the
    /// socket for the answer; the body comes from memory.
    private func serveRead(_ fd: Int32) -> Outcome {
        let written = headerBlock.withUnsafeBytes { write(pipeWrite, $0.baseAddress, $0.count) }
        guard written == headerBlock.count else {
            return resetPipe(fd, "could not queue a header block: \(lastError())")
        }
        request.pointee.ipcFd = pipeRead
        request.pointee.keepConnection = 1 // see serveFromSocket
        request.pointee.detached = 1 // see finish
        let rc = FCGX_Accept_r(request)
        guard rc == 0 else {
            // Checked records never get here. libfcgi closed the pipe's read
            // end (its number may already be another connection's): never close it again.
            request.pointee.ipcFd = -1
            pipeRead = -1
            return resetPipe(fd, "libfcgi refused a checked request (\(rc))")
        }
        request.pointee.ipcFd = fd
        // Everything of the request was read; libfcgi's STDIN stream must
        // never read the socket.
        request.pointee.in.pointee.isClosed = 1
        activity.countServed(index, peeked: false)
        return body.withUnsafeBufferPointer { bytes in
            respond(body: bytes)
            return finish(drain: false)
        }
    }

    private func resetPipe(_ fd: Int32, _ why: String) -> Outcome {
        logger.error("FastCGI request not served", metadata: ["error": "\(why)"])
        if pipeRead >= 0 { close(pipeRead) }
        close(pipeWrite)
        pipeRead = -1
        pipeWrite = -1
        try? openPipe()
        close(fd)
        return .closed
    }

    // MARK: Answering

    private func respond(body: UnsafeBufferPointer<UInt8>?) {
        activity.setBusy(index, true)
        defer { activity.setBusy(index, false) }
        response.reset()
        responder.respond(to: FastCGIRequest(raw: request, body: body), with: &response)
        response.serialize(into: &wire)
        wire.withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) {
                _ = FCGX_PutStr($0.baseAddress, Int32($0.count), request.pointee.out)
            }
        }
    }

    /// Ends the request (libfcgi writes the rest of the answer and
    /// END_REQUEST); a connection the web server keeps alive is parked.
    ///
    /// This code closes connections, not libfcgi: libfcgi's close shuts
    /// down the write side and then reads until the peer has been silent
    /// for 2 s, so a peer trickling a byte a second would hold the worker
    /// for ever. `detached` makes any close libfcgi still does a plain one;
    /// the whole request was checked and read (or drained) by then, so no
    /// unread input can turn the close into a reset that loses the answer.
    private func finish(drain: Bool) -> Outcome {
        var keep = request.pointee.keepConnection != 0
        if drain && !drainBody() { keep = false } // broken: close instead
        if FCGX_GetError(request.pointee.in) != 0 {
            logger.warning("a FastCGI connection broke during its request")
            keep = false
        }
        request.pointee.keepConnection = 1
        request.pointee.detached = 1
        FCGX_Finish_r(request)
        let fd = request.pointee.ipcFd
        guard fd >= 0 else { return .closed } // a write failed: libfcgi closed it
        request.pointee.ipcFd = -1 // the connection now belongs to the set, or is closed, not this request's
        guard keep else {
            close(fd)
            return .closed
        }
        return .park
    }

    /// Reads and drops what is left of a peeked request's body (checked,
    /// and within the body limit), so that the next request starts at a
    /// record boundary.
    private func drainBody() -> Bool {
        var scratch = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        return withUnsafeMutableBytes(of: &scratch) { buffer in
            let base = buffer.baseAddress!.assumingMemoryBound(to: CChar.self)
            while FCGX_GetStr(base, Int32(buffer.count), request.pointee.in) > 0 {}
            return FCGX_GetError(request.pointee.in) == 0
        }
    }

    private func refuse(_ fd: Int32, _ reason: String) -> Outcome {
        activity.countRefused()
        logger.warning("refused a malformed FastCGI request", metadata: ["reason": "\(reason)"])
        close(fd)
        return .closed
    }

    // MARK: Socket I/O

    /// Whether the connection has unread bytes now; nil when it is closed.
    private func available(_ fd: Int32) -> Bool? {
        var byte: UInt8 = 0
        while true {
            let got = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
            if got > 0 { return true }
            if got == 0 { return nil }
            if errno == EINTR { continue }
            return errno == EAGAIN || errno == EWOULDBLOCK ? false : nil
        }
    }

    enum ReadResult: Equatable { case done, closed, timedOut, failed(Int32) }

    /// `readExactly`, as the reason to refuse the connection, or nil when done.
    private func readRecordPart(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, deadline: Double,
                                closed: @autoclosure () -> String) -> String? {
        switch readExactly(fd, into: buffer, deadline: deadline) {
        case .done: return nil
        case .closed: return closed()
        case .timedOut: return "request incomplete after \(ioTimeout) s"
        case .failed(let error): return "read failed: \(String(cString: strerror(error)))"
        }
    }

    /// Fills `buffer` from the socket by `deadline`, never reading past it.
    private func readExactly(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, deadline: Double) -> ReadResult {
        var got = 0
        while got < buffer.count {
            let n = recv(fd, buffer.baseAddress! + got, buffer.count - got, Int32(MSG_DONTWAIT))
            if n > 0 { got += n; continue }
            if n == 0 { return .closed }
            let error = errno
            if error == EINTR { continue }
            guard error == EAGAIN || error == EWOULDBLOCK else { return .failed(error) }
            let left = deadline - MonotonicClock.now()
            guard left > 0 else { return .timedOut }
            var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&ready, 1, Int32(min(left * 1000 + 1, 60_000))) < 0 && errno != EINTR { return .failed(errno) }
        }
        return .done
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let n = send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                if n > 0 { sent += n; continue }
                if n < 0 && errno == EINTR { continue }
                return false // the socket's send timeout (ioTimeout) or a broken peer
            }
            return true
        }
    }
}
