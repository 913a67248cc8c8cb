/// One FastCGI connection: its records read once, each checked by
/// `RequestIntake` as it comes and taken into the request it belongs to
/// (`ReceivedRequest`), and the answers waiting to be written. It belongs
/// to the event loop that accepted it; while its request is served on the
/// blocking pool it belongs to that pool thread alone (`State.suspended`).
///
/// A record is taken whole. What a read leaves of a record (its start, or
/// the records behind a request handed to the pool) waits in `carry`.
final class Connection {
    enum State {
        /// Waiting for records (in the loop's epoll set, for input).
        case reading
        /// An answer only partly written: waiting until the socket takes
        /// more (for output); nothing more is read meanwhile.
        case writing
        /// Its request is on the blocking pool; out of the epoll set.
        case suspended
    }

    /// What taking records came to.
    enum Step: Equatable {
        /// Every whole record was taken; what is left waits for more bytes.
        case needMore
        /// The request is whole in `received`: serve it.
        case request
        /// The web server aborted the open request (its END_REQUEST is queued).
        case aborted(UInt16)
        /// A request was refused with END_REQUEST (queued); the reason is
        /// for the log. The connection goes on.
        case refused(IntakeProblem)
        /// Close once the queued answers are written (§3.5: a connection
        /// the web server does not keep ends with its request).
        case close
        /// Never valid: close at once; the reason is for the log.
        case invalid(IntakeProblem)
    }

    var fd: Int32 = -1
    var state = State.reading
    var intake: RequestIntake
    let received = ReceivedRequest()
    /// Unread bytes: part of a record, or records after a request still being served.
    var carry = ByteBuffer()
    /// Answers not written yet, from `sent` on.
    var output = ByteBuffer()
    var sent = 0
    /// Monotonic seconds: when an idle connection is closed, a request
    /// must be whole, or a pending answer written.
    var deadline: Double = 0
    /// Whether the responder was asked if it answers before the body.
    var asked = false
    /// Close once `output` is written.
    var closeWhenWritten = false
    /// In its loop's runnable list: whole records wait their turn in
    /// `carry`, and nothing more is read from the socket meanwhile.
    var queued = false
    /// Bytes counted against the server's budget for requests still arriving.
    var held = 0
    /// Its place in its loop's list of connections.
    var slot = -1

    init(limits: RequestIntake.Limits) {
        intake = RequestIntake(limits: limits)
    }

    /// Ready for a new descriptor (connections are reused by their loop).
    func open(_ fd: Int32, deadline: Double) {
        self.fd = fd
        self.deadline = deadline
        state = .reading
        intake = RequestIntake(limits: intake.limits)
        received.reset()
        carry.removeAll(releasingAbove: 16 * 1024)
        output.removeAll(releasingAbove: 64 * 1024)
        sent = 0
        asked = false
        closeWhenWritten = false
        queued = false
        held = 0
    }

    /// Whether a request (or a record of one) is under way.
    var isMidRequest: Bool { !intake.isIdle || !carry.isEmpty }

    /// The request was answered: ready for the next one. The intake's
    /// budgets (management answers, skipped bytes) start again.
    func finishRequest() {
        if !intake.keepConnection { closeWhenWritten = true }
        intake = RequestIntake(limits: intake.limits)
        received.reset()
        asked = false
    }

    /// Takes the records of `data` from `offset` on, up to the first whole
    /// request or the first record not whole, and moves `offset` past what
    /// it took. Management records and refusals queue their answers in `output`.
    func take(_ data: UnsafeRawBufferPointer, from offset: inout Int, now: Double, ioTimeout: Double) -> Step {
        while data.count > offset {
            // Between requests, each record has its own deadline from its
            // first byte; within one, the request has one.
            if intake.isIdle { deadline = now + ioTimeout }
            guard data.count - offset >= FCGI.headerLength else { return .needMore }
            let header = RecordHeader(UnsafeRawBufferPointer(rebasing: data[offset...]))
            if let problem = intake.precheck(header) { return .invalid(problem) }
            guard data.count - offset >= header.recordLength else { return .needMore }
            let start = offset + FCGI.headerLength
            let content = UnsafeRawBufferPointer(rebasing: data[start..<(start + header.contentLength)])
            offset += header.recordLength
            let wasAnswered = intake.phase == .answered
            switch intake.take(header, content) {
            case .request:
                switch header.type {
                case FCGI.beginRequest:
                    // A new request (perhaps right after one answered early,
                    // whose body the web server gave up): its own deadline.
                    deadline = now + ioTimeout
                    received.reset()
                    asked = false
                case FCGI.params:
                    received.params.append(content)
                    if header.contentLength == 0 { received.indexPairs() }
                default:
                    received.body.append(content)
                }
                if intake.isComplete { return .request }
            case .reply(let reply, let warning):
                output.append(reply)
                if let warning {
                    // §3.5: without FCGI_KEEP_CONN the application closes the connection once the request is ended.
                    if header.type == FCGI.beginRequest && content[2] & FCGI.keepConnFlag == 0 { closeWhenWritten = true }
                    return .refused(warning)
                }
            case .skip:
                // The body of a request answered early has ended: on a
                // connection the web server does not keep, that is its end.
                if wasAnswered && intake.isIdle && !intake.keepConnection { return .close }
            case .aborted(let reply):
                output.append(reply)
                received.reset()
                asked = false
                return .aborted(header.requestID)
            case .invalid(let reason):
                return .invalid(reason)
            }
        }
        return .needMore
    }
}
