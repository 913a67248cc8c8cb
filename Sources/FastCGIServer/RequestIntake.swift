/// Every record of a connection, checked before it is taken into a
/// request (`Connection`), from the first byte of a request to the end of
/// its STDIN, and whatever comes between requests (spec §3.3 records, §3.4 name-value pairs, §4
/// management records, §5.1–§5.5 the request's records).
///
/// Why these rules: libfcgi, which parsed requests before issue 22 (and
/// which another responder behind the same web server may use), trusts
/// what it reads. Two name-value lengths near 2^31
/// overflow its `nameLen + valueLen + 2` and abort the process (Debian's
/// 2.4.2-2+deb12u1 has the CVE-2025-23016 patch, which rejects only
/// lengths equal to INT_MAX), and its GET_VALUES answer overruns a stack
/// buffer (see `ManagementValues`). So the app is only ever handed one
/// RESPONDER request whose every record and length was checked here:
/// BEGIN_REQUEST, its PARAMS (each pair within the limit), its STDIN
/// (within the limit), nothing else in between.
///
/// What the spec asks and this answers itself: management records (request
/// id 0) anywhere, with GET_VALUES_RESULT or UNKNOWN_TYPE (§4); a
/// BEGIN_REQUEST for a second request id while one is open, with
/// END_REQUEST(FCGI_CANT_MPX_CONN) (§5.1, §3.5); a role other than
/// RESPONDER, with END_REQUEST(FCGI_UNKNOWN_ROLE); ABORT_REQUEST for the
/// open request ends it (§5.4). Anything else is a peer that does not
/// speak FastCGI, and its connection is closed with one log line.
struct RequestIntake {
    struct Limits: Sendable {
        /// The largest header block: BEGIN_REQUEST and the PARAMS records.
        var maxHeaderBytes: Int
        /// The largest request body (the STDIN contents).
        var maxBodyBytes: Int
        /// Records answered (management records, refused and aborted
        /// requests) by one intake, and bytes of records of refused
        /// requests skipped: what a connection may spend on a
        /// connection before it serves a request.
        var maxAnswers = 64
        var maxSkippedBytes = 1 << 20
        var values: ManagementValues
    }

    enum Action: Equatable {
        /// The record is part of the request: BEGIN_REQUEST, PARAMS, STDIN.
        case request
        /// Write `reply` and drop the record; the connection goes on. With
        /// a `warning`, the peer sent something this server refuses to serve.
        case reply([UInt8], warning: IntakeProblem?)
        /// Drop the record (ABORT_REQUEST for a request that is over, a
        /// refused request's records).
        case skip
        /// The open request was aborted: write `reply` (its END_REQUEST)
        /// and start over; the request is not served.
        case aborted([UInt8])
        /// Close the connection; the reason is for the log.
        case invalid(IntakeProblem)
    }

    /// `answered`: the request was answered before its body had arrived
    /// (`EventLoop`); the rest of its STDIN is read and dropped.
    enum Phase: Equatable { case idle, params, stdin, complete, answered }

    let limits: Limits
    private(set) var phase = Phase.idle
    private(set) var requestID: UInt16 = 0
    private(set) var keepConnection = false
    private var headerBytes = 0
    private var bodyBytes = 0
    private var answers = 0
    private var skippedBytes = 0
    private var pairs: PairScanner
    /// Ids answered with END_REQUEST whose records are skipped; a few at most.
    private var refused: [UInt16] = []

    init(limits: Limits) {
        self.limits = limits
        pairs = PairScanner(limit: limits.maxHeaderBytes)
    }

    var isComplete: Bool { phase == .complete }

    /// Between requests: nothing of one has been taken yet.
    var isIdle: Bool { phase == .idle }

    /// The open request was answered before its body ended. §3.3: its id
    /// is inactive from its END_REQUEST on, and the application ignores its
    /// records; they are still checked and bounded as its body (the body
    /// limit, the request's deadline) until the empty STDIN that ends it.
    mutating func answered() {
        precondition(phase == .stdin, "only a request whose params are whole can be answered")
        phase = .answered
    }

    /// Ready for the connection's next request. The answer and skip
    /// budgets are the intake's, not the request's: they are not reset.
    mutating func reset() {
        phase = .idle
        headerBytes = 0
        bodyBytes = 0
        pairs = PairScanner(limit: limits.maxHeaderBytes)
    }

    /// Checks a header before its content is read: whatever the content,
    /// this record can never be accepted.
    func precheck(_ header: RecordHeader) -> IntakeProblem? {
        guard header.version == FCGI.version1 else { return .version(header.version) }
        if header.requestID == 0 { return nil }
        // libfcgi never skips the padding of BEGIN_REQUEST or of an empty
        // record (it resets its padding count when the stream changes
        // type) and reads those bytes as the next record: a record hidden
        // from this check. nginx never pads them.
        if (header.type == FCGI.beginRequest || header.contentLength == 0) && header.paddingLength != 0 {
            return .paddingOnBeginOrEmptyRecord
        }
        switch header.type {
        case FCGI.beginRequest:
            guard header.contentLength == 8 else { return .malformedBeginRequest }
        case FCGI.params where phase == .params && header.requestID == requestID:
            guard headerBytes + header.recordLength <= limits.maxHeaderBytes else { return .headerBlockOver(limits.maxHeaderBytes) }
        case FCGI.stdin where (phase == .stdin || phase == .answered) && header.requestID == requestID:
            guard bodyBytes + header.contentLength <= limits.maxBodyBytes else { return .bodyOver(limits.maxBodyBytes) }
        default:
            break
        }
        return nil
    }

    /// Takes one whole record: its header and its content (padding dropped).
    mutating func take(_ header: RecordHeader, _ content: UnsafeRawBufferPointer) -> Action {
        if let problem = precheck(header) { return .invalid(problem) }
        let id = header.requestID
        if id == 0 { return management(header.type, content) }
        switch header.type {
        case FCGI.beginRequest:
            return begin(id, content)
        case FCGI.abortRequest:
            if id == requestID && phase == .answered { // it was answered: nothing more will come for it
                phase = .idle
                return .skip
            }
            guard id == requestID, phase == .params || phase == .stdin else { return skip(header) }
            reset()
            if let over = spendAnswer() { return over }
            // Whatever the web server had still in flight for it is skipped.
            if !refused.contains(id) && refused.count < 8 { refused.append(id) }
            return .aborted(ManagementValues.endRequest(id, FCGI.requestComplete))
        default:
            break
        }
        guard phase != .idle, id == requestID else {
            if refused.contains(id) { return skip(header) }
            return .invalid(.neverBegun(type: header.type, requestID: id))
        }
        switch (header.type, phase) {
        case (FCGI.params, .params):
            headerBytes += header.recordLength
            if header.contentLength == 0 {
                guard pairs.atPairBoundary else { return .invalid(.paramsEndInsidePair) }
                phase = .stdin
            } else if let problem = pairs.scan(content) {
                return .invalid(problem)
            }
            return .request
        case (FCGI.stdin, .stdin):
            bodyBytes += header.contentLength
            if header.contentLength == 0 { phase = .complete }
            return .request
        case (FCGI.stdin, .answered):
            bodyBytes += header.contentLength // within the body limit: precheck
            if header.contentLength == 0 { phase = .idle }
            return .skip
        default:
            return .invalid(.unexpected(type: header.type, requestID: id))
        }
    }

    /// Counts one record answered; the refusal once the budget is spent.
    private mutating func spendAnswer() -> Action? {
        answers += 1
        return answers <= limits.maxAnswers ? nil : .invalid(.answersOver(limits.maxAnswers))
    }

    private mutating func management(_ type: UInt8, _ content: UnsafeRawBufferPointer) -> Action {
        if let over = spendAnswer() { return over }
        if type == FCGI.getValues { return .reply(limits.values.getValuesResult(for: content), warning: nil) }
        return .reply(ManagementValues.unknownType(type), warning: nil)
    }

    private mutating func begin(_ id: UInt16, _ content: UnsafeRawBufferPointer) -> Action {
        let role = UInt16(content[0]) << 8 | UInt16(content[1])
        // §3.3: an answered request's id is inactive, and a web server that
        // gave up sending its body may begin the next request at once.
        if phase == .answered { reset() }
        if phase != .idle {
            if id == requestID { return .invalid(.begunTwice(id)) }
            return refuse(id, FCGI.cantMultiplex, warning: nil)
        }
        guard role == FCGI.responderRole else {
            return refuse(id, FCGI.unknownRole, warning: .unsupportedRole(role))
        }
        refused.removeAll { $0 == id }
        reset()
        phase = .params
        requestID = id
        keepConnection = content[2] & FCGI.keepConnFlag != 0
        headerBytes = FCGI.headerLength + 8
        return .request
    }

    private mutating func refuse(_ id: UInt16, _ status: UInt8, warning: IntakeProblem?) -> Action {
        if let over = spendAnswer() { return over }
        if !refused.contains(id) {
            guard refused.count < 8 else { return .invalid(.refusedOver(8)) }
            refused.append(id)
        }
        return .reply(ManagementValues.endRequest(id, status), warning: warning)
    }

    private mutating func skip(_ header: RecordHeader) -> Action {
        skippedBytes += header.recordLength
        guard skippedBytes <= limits.maxSkippedBytes else { return .invalid(.skippedOver(limits.maxSkippedBytes)) }
        return .skip
    }
}

/// Walks name-value pairs (§3.4) across record boundaries, checking only
/// their lengths: each pair must fit within the limit.
struct PairScanner {
    let limit: Int
    /// Bytes of the current length field read so far, and its value.
    private var lengthBytesSeen = 0
    private var lengthBytesWanted = 0
    private var length = 0
    /// Which length comes next: the name's (0) or the value's (1).
    private var field = 0
    private var nameLength = 0
    /// Name and value bytes still to skip.
    private var skip = 0

    init(limit: Int) { self.limit = limit }

    var atPairBoundary: Bool { skip == 0 && field == 0 && lengthBytesWanted == 0 }

    mutating func scan(_ content: UnsafeRawBufferPointer) -> IntakeProblem? {
        var index = 0
        while index < content.count {
            if skip > 0 {
                let step = min(skip, content.count - index)
                skip -= step
                index += step
                continue
            }
            let byte = content[index]
            index += 1
            if lengthBytesWanted == 0 {
                // First byte of a length: one byte if < 128, else four.
                if byte & 0x80 == 0 {
                    if let problem = finishLength(Int(byte)) { return problem }
                } else {
                    length = Int(byte & 0x7F)
                    lengthBytesWanted = 3
                    lengthBytesSeen = 0
                }
            } else {
                length = length << 8 | Int(byte)
                lengthBytesSeen += 1
                if lengthBytesSeen == lengthBytesWanted {
                    lengthBytesWanted = 0
                    if let problem = finishLength(length) { return problem }
                }
            }
        }
        return nil
    }

    private mutating func finishLength(_ value: Int) -> IntakeProblem? {
        if field == 0 {
            nameLength = value
            field = 1
            return nil
        }
        field = 0
        // Both lengths are < 2^31, so the sum cannot overflow an Int.
        guard nameLength + value <= limit else {
            return .pairOver(nameBytes: nameLength, valueBytes: value, limit: limit)
        }
        skip = nameLength + value
        return nil
    }
}

/// What a peer did that the intake refuses, typed: the one log line says it
/// (`description`), tests match the case. All but `unsupportedRole` close
/// the connection; that one refuses its request with END_REQUEST.
enum IntakeProblem: Error, Equatable, CustomStringConvertible {
    case version(UInt8)
    case paddingOnBeginOrEmptyRecord
    case malformedBeginRequest
    case headerBlockOver(Int)
    case bodyOver(Int)
    case pairOver(nameBytes: Int, valueBytes: Int, limit: Int)
    case paramsEndInsidePair
    case neverBegun(type: UInt8, requestID: UInt16)
    case unexpected(type: UInt8, requestID: UInt16)
    case begunTwice(UInt16)
    case answersOver(Int)
    case refusedOver(Int)
    case skippedOver(Int)
    case unsupportedRole(UInt16)

    var description: String {
        switch self {
        case .version(let version): "FastCGI version \(version), not 1"
        case .paddingOnBeginOrEmptyRecord: "padding on a BEGIN_REQUEST or an empty record"
        case .malformedBeginRequest: "malformed BEGIN_REQUEST"
        case .headerBlockOver(let limit): "header block over \(limit) bytes"
        case .bodyOver(let limit): "request body over \(limit) bytes"
        case .pairOver(let name, let value, let limit): "a param of \(name) + \(value) bytes, over \(limit)"
        case .paramsEndInsidePair: "params end inside a name-value pair"
        case .neverBegun(let type, let id): "record type \(type) for request \(id), which was never begun"
        case .unexpected(let type, let id): "record type \(type) inside request \(id)"
        case .begunTwice(let id): "request \(id) begun twice"
        case .answersOver(let limit): "more than \(limit) records answered without a request served"
        case .refusedOver(let limit): "more than \(limit) refused requests on one connection"
        case .skippedOver(let limit): "over \(limit) bytes of skipped records"
        case .unsupportedRole(let role): "FastCGI role \(role), not RESPONDER"
        }
    }
}
