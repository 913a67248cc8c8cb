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
///   are read one by one, without waiting, and checked as they come;
///   management records are answered, and libfcgi reads the checked
///   BEGIN_REQUEST and PARAMS from a pipe of this worker's; the body is
///   served from memory. libfcgi then writes the answer to the socket as usual.
///
/// No worker waits for a request's bytes (issue 19 §2): when a connection
/// runs dry in the middle of a request (a web server that passes a body on
/// as the client uploads it), the request is parked with its connection
/// (`PartialRequest`) and picked up by whichever worker its next bytes
/// wake. A request whose params are whole is first offered to the
/// responder to answer at once (`FastCGIResponder.answersBeforeBody`: the
/// token route never reads a body); the rest of its body is then read and
/// dropped as it comes.
///
/// All I/O is bounded: a request must arrive whole within `ioTimeout` of
/// its first byte (the reaper shuts down a parked one past it), and every
/// write of the socket times out.
final class ConnectionWorker: @unchecked Sendable {
    // @unchecked: a worker is made on the thread that starts the server and
    // from then on used only by the one worker thread it is handed to (its
    // buffers and its FCGX_Request are that thread's alone); the server never
    // touches it again.
    enum Outcome {
        /// Keep the connection: wait in the shared set for its next request.
        case park
        /// Keep the connection and its request still arriving: wait in the
        /// shared set for the rest, until the request's deadline.
        case parkPartial(PartialRequest)
        /// The connection is closed.
        case closed
    }

    private let index: Int
    private let responder: any FastCGIResponder
    private let limits: RequestIntake.Limits
    private let ioTimeout: Double
    private let logger: Logger
    private let activity: WorkerActivity
    private let refusals: Refusals

    private let request: UnsafeMutablePointer<FCGX_Request>
    /// The look at a connection's unread bytes (the fast path's window).
    private let peek: UnsafeMutableRawBufferPointer
    /// One record, header, content and padding, read whole.
    private let record: UnsafeMutableRawBufferPointer
    /// The request this worker reads record by record, when it is not one
    /// that was parked; replaced when it is parked itself.
    private var fresh: PartialRequest
    /// The params of a request still arriving, joined (see `answersBeforeBody`).
    private var paramStream: [UInt8] = []
    /// libfcgi reads a read request's header block from here.
    private var pipeRead: Int32 = -1
    private var pipeWrite: Int32 = -1

    private var response = HTTPResponse()
    private var wire: [UInt8] = []

    init(index: Int, responder: any FastCGIResponder, limits: RequestIntake.Limits, ioTimeout: Double,
         logger: Logger, activity: WorkerActivity, refusals: Refusals? = nil) throws {
        self.index = index
        self.responder = responder
        self.limits = limits
        self.ioTimeout = ioTimeout
        self.logger = logger
        self.activity = activity
        self.refusals = refusals ?? Refusals(activity: activity, logger: logger)
        request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        // No listen socket for libfcgi: the worker hands it connections.
        FCGX_InitRequest(request, -1, 0)
        peek = UnsafeMutableRawBufferPointer.allocate(byteCount: limits.maxHeaderBytes + 16 * 1024, alignment: 8)
        record = UnsafeMutableRawBufferPointer.allocate(byteCount: FCGI.maxRecordLength, alignment: 8)
        fresh = PartialRequest(limits: limits)
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
    /// and refusals that came before it. `parked` is the connection's
    /// request that was still arriving when it was parked.
    func serve(_ fd: Int32, resuming parked: PartialRequest? = nil) -> Outcome {
        if let parked { return intake(fd, parked) }
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
                return refuse(fd, .malformed, reason)
            case .needsIntake:
                fresh.start(deadline: MonotonicClock.now() + ioTimeout)
                return intake(fd, fresh)
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
        request.pointee.detached = 1 // see endRequest
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

    /// Reads the records `fd` has for now, without waiting: serves the
    /// request once it is whole, parks the connection (with the request,
    /// when one is still arriving) once it runs dry, or refuses it.
    private func intake(_ fd: Int32, _ state: PartialRequest) -> Outcome {
        state.restoreRecord(into: record)
        while true {
            // What is missing of the current record: its header, then its content and padding.
            let wanted = state.have < FCGI.headerLength ? FCGI.headerLength : RecordHeader(UnsafeRawBufferPointer(record)).recordLength
            if state.have < wanted {
                let got = recv(fd, record.baseAddress! + state.have, wanted - state.have, Int32(MSG_DONTWAIT))
                if got > 0 {
                    // Between requests, each record has its own deadline; within one, the request has one.
                    if state.have == 0 && state.intake.isIdle { state.deadline = MonotonicClock.now() + ioTimeout }
                    state.have += got
                    if state.have == FCGI.headerLength, let problem = state.intake.precheck(RecordHeader(UnsafeRawBufferPointer(record))) {
                        return refuse(fd, .malformed, problem)
                    }
                    continue
                }
                if got == 0 { return peerClosed(fd, state) }
                let error = errno
                if error == EINTR { continue }
                guard error == EAGAIN || error == EWOULDBLOCK else {
                    return refuse(fd, .incomplete, "read failed: \(String(cString: strerror(error)))")
                }
                if state.intake.phase == .stdin && !state.asked {
                    state.asked = true
                    if answersBeforeBody(state) {
                        guard answerEarly(fd, state) else { return .closed }
                        // Back to the shared set, as after any answer: one
                        // connection cannot keep a worker with request after request.
                    }
                }
                return ranDry(fd, state)
            }
            let header = RecordHeader(UnsafeRawBufferPointer(record))
            let content = UnsafeRawBufferPointer(rebasing: record[FCGI.headerLength..<(FCGI.headerLength + header.contentLength)])
            state.have = 0
            let wasAnswered = state.intake.phase == .answered
            switch state.intake.take(header, content) {
            case .request:
                if header.type == FCGI.beginRequest {
                    // A new request (perhaps right after one answered
                    // early, whose body the web server gave up): its own
                    // deadline, from about its first byte, and its own question.
                    state.deadline = MonotonicClock.now() + ioTimeout
                    state.asked = false
                }
                if header.type == FCGI.stdin {
                    state.body.append(contentsOf: content)
                } else {
                    // Rebuilt without padding: libfcgi reads exactly the checked content.
                    state.headerBlock.append(contentsOf: RecordHeader.bytes(type: header.type, requestID: header.requestID,
                                                                            contentLength: header.contentLength))
                    state.headerBlock.append(contentsOf: content)
                }
                if state.intake.isComplete { return serveRead(fd, state) }
            case .reply(let reply, let warning):
                guard writeAll(fd, reply) else { return refuse(fd, .incomplete, "write failed: \(lastError())") }
                if let warning {
                    refusals.record(.unsupported, warning)
                    // §3.5: without FCGI_KEEP_CONN the application closes the connection once the request is ended.
                    if header.type == FCGI.beginRequest && content[2] & FCGI.keepConnFlag == 0 {
                        close(fd)
                        return .closed
                    }
                }
            case .skip:
                // The body of a request answered early has ended: on a
                // connection the web server does not keep, that is its end.
                if wasAnswered && state.intake.isIdle && !state.intake.keepConnection {
                    close(fd)
                    return .closed
                }
            case .aborted(let reply):
                guard writeAll(fd, reply) else { return refuse(fd, .incomplete, "write failed: \(lastError())") }
                logger.info("the web server aborted a request", metadata: ["fastcgi_request_id": .stringConvertible(header.requestID)])
                if !state.intake.keepConnection {
                    close(fd)
                    return .closed
                }
                // The connection goes on; the intake's answer budget bounds
                // a peer that begins and aborts in a loop.
                state.headerBlock.removeAll(keepingCapacity: true)
                state.body.removeAll(keepingCapacity: true)
                state.asked = false
            case .invalid(let reason):
                return refuse(fd, .malformed, reason)
            }
        }
    }

    /// The connection has nothing more for now: park it, with its request
    /// when one is under way (unless that request is already past its deadline).
    private func ranDry(_ fd: Int32, _ state: PartialRequest) -> Outcome {
        if state.intake.isIdle && state.have == 0 { return .park } // between requests
        guard MonotonicClock.now() < state.deadline else {
            return refuse(fd, .incomplete, "request incomplete after \(ioTimeout) s")
        }
        state.saveRecord(from: record)
        if state === fresh { fresh = PartialRequest(limits: limits) } // it now belongs to the parked connection
        return .parkPartial(state)
    }

    /// The end of the stream: the normal end of a connection between
    /// requests or after an answered request; a request cut short otherwise
    /// (a client that aborted its upload, a reaped deadline).
    private func peerClosed(_ fd: Int32, _ state: PartialRequest) -> Outcome {
        if (state.intake.isIdle || state.intake.phase == .answered) && state.have == 0 {
            close(fd)
            return .closed
        }
        if MonotonicClock.now() >= state.deadline {
            return refuse(fd, .incomplete, "request incomplete after \(ioTimeout) s")
        }
        if state.intake.isIdle {
            return refuse(fd, .incomplete, state.have < FCGI.headerLength ? "connection closed inside a record header" : "connection closed inside a record")
        }
        return refuse(fd, .incomplete, state.have == 0 ? "connection closed inside request \(state.intake.requestID)" : "connection closed inside a record")
    }

    /// Whether the responder answers this request, whose params are whole,
    /// without its body (still arriving).
    private func answersBeforeBody(_ state: PartialRequest) -> Bool {
        HeaderBlockParameters.join(state.headerBlock, into: &paramStream)
        return paramStream.withUnsafeBufferPointer { stream in
            let params = HeaderBlockParameters(stream: stream)
            return params.namesArePlain && responder.answersBeforeBody(params)
        }
    }

    /// Serves a request whose body is still arriving, without it; its
    /// records go on being read and dropped. False when the connection broke.
    private func answerEarly(_ fd: Int32, _ state: PartialRequest) -> Bool {
        guard acceptChecked(fd, state.headerBlock) else { return false }
        activity.countServed(index, peeked: false)
        // The responder said it never reads the body: reading it anyway fails.
        respond(body: nil, withheld: true)
        guard endRequest(drain: false) else { return false }
        state.intake.answered()
        // Nothing more is kept for it: a parked connection that only drops
        // a body holds (and counts) no buffers.
        state.headerBlock.removeAll()
        state.body.removeAll()
        return true
    }

    private func serveRead(_ fd: Int32, _ state: PartialRequest) -> Outcome {
        guard acceptChecked(fd, state.headerBlock) else { return .closed }
        activity.countServed(index, peeked: false)
        return state.body.withUnsafeBufferPointer { bytes in
            respond(body: bytes)
            return finish(drain: false)
        }
    }

    /// Hands libfcgi a checked header block through the pipe, then the
    /// socket for the answer; the body, if any, comes from memory. False
    /// (and the connection closed) when libfcgi did not take it.
    private func acceptChecked(_ fd: Int32, _ headerBlock: [UInt8]) -> Bool {
        let written = headerBlock.withUnsafeBytes { write(pipeWrite, $0.baseAddress, $0.count) }
        guard written == headerBlock.count else {
            resetPipe(fd, "could not queue a header block: \(lastError())")
            return false
        }
        request.pointee.ipcFd = pipeRead
        request.pointee.keepConnection = 1 // see serveFromSocket
        request.pointee.detached = 1 // see endRequest
        let rc = FCGX_Accept_r(request)
        guard rc == 0 else {
            // Checked records never get here. libfcgi closed the pipe's read
            // end (its number may already be another connection's): never close it again.
            request.pointee.ipcFd = -1
            pipeRead = -1
            resetPipe(fd, "libfcgi refused a checked request (\(rc))")
            return false
        }
        request.pointee.ipcFd = fd
        // Everything of the request was read (or is not wanted); libfcgi's
        // STDIN stream must never read the socket.
        request.pointee.in.pointee.isClosed = 1
        return true
    }

    private func resetPipe(_ fd: Int32, _ why: String) {
        logger.error("FastCGI request not served", metadata: ["error": "\(why)"])
        if pipeRead >= 0 { close(pipeRead) }
        close(pipeWrite)
        pipeRead = -1
        pipeWrite = -1
        try? openPipe()
        close(fd)
    }

    // MARK: Answering

    private func respond(body: UnsafeBufferPointer<UInt8>?, withheld: Bool = false) {
        activity.setBusy(index, true)
        defer { activity.setBusy(index, false) }
        response.reset()
        responder.respond(to: FastCGIRequest(raw: request, body: body, bodyWithheld: withheld), with: &response)
        response.serialize(into: &wire)
        wire.withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) {
                _ = FCGX_PutStr($0.baseAddress, Int32($0.count), request.pointee.out)
            }
        }
    }

    /// Ends the request; a connection the web server keeps alive is parked.
    private func finish(drain: Bool) -> Outcome {
        let keep = request.pointee.keepConnection != 0 // the web server's FCGI_KEEP_CONN (libfcgi read it)
        let fd = request.pointee.ipcFd
        guard endRequest(drain: drain) else { return .closed }
        guard keep else {
            close(fd)
            return .closed
        }
        return .park
    }

    /// Ends the request: libfcgi writes the rest of the answer and
    /// END_REQUEST. Returns whether the connection is still usable (it is
    /// closed when it is not); it is this code's to keep or close.
    ///
    /// This code closes connections, not libfcgi: libfcgi's close shuts
    /// down the write side and then reads until the peer has been silent
    /// for 2 s, so a peer trickling a byte a second would hold the worker
    /// for ever. `detached` makes any close libfcgi still does a plain one;
    /// the whole request was checked and read (or drained) by then, so no
    /// unread input can turn the close into a reset that loses the answer.
    private func endRequest(drain: Bool) -> Bool {
        var usable = true
        if drain && !drainBody() { usable = false } // broken: close instead
        if FCGX_GetError(request.pointee.in) != 0 {
            logger.warning("a FastCGI connection broke during its request")
            usable = false
        }
        request.pointee.keepConnection = 1
        request.pointee.detached = 1
        FCGX_Finish_r(request)
        let fd = request.pointee.ipcFd
        guard fd >= 0 else { return false } // a write failed: libfcgi closed it
        request.pointee.ipcFd = -1 // the connection now belongs to the set, or is closed, not this request's
        guard usable else {
            close(fd)
            return false
        }
        return true
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

    private func refuse(_ fd: Int32, _ reason: RefusalReason, _ detail: String) -> Outcome {
        refusals.record(reason, detail)
        close(fd)
        return .closed
    }

    // MARK: Socket I/O

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
