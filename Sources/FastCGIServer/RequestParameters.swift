import Glibc

/// Read access to a request's FastCGI params (the CGI environment nginx sends).
/// Values are raw bytes, valid until the request finishes.
public protocol RequestParameters {
    /// The value of `name`, or nil if nginx did not send it.
    func param(_ name: StaticString) -> UnsafeBufferPointer<UInt8>?
}

extension RequestParameters {
    /// The value as a String (invalid UTF-8 is repaired); for logs and errors,
    /// not the hot path.
    public func string(_ name: StaticString) -> String? {
        param(name).map { String(decoding: $0, as: UTF8.self) }
    }
}

/// A request body as read, bounded.
public enum RequestBody: Equatable {
    case complete([UInt8])
    /// Longer than the limit (at most `limit + 1` bytes were read).
    case tooLarge
    /// The connection failed or the stream broke before the body's end.
    case incomplete
}

/// Reads a request's body (FastCGI stdin).
public protocol RequestBodyReader {
    func readBody(limit: Int) -> RequestBody
}

/// One request as its connection read it: the PARAMS contents joined (spec
/// §3.4 name-value pairs), an index of its pairs, and the STDIN contents.
/// Filled by `Connection` as the records arrive, each record checked by
/// `RequestIntake` first; its buffers are the connection's, kept across
/// requests, so a kept connection's next request allocates nothing.
final class ReceivedRequest {
    /// Offsets of one pair's name and value in `params`.
    struct Pair {
        var nameStart: Int32
        var nameLength: Int32
        var valueStart: Int32
        var valueLength: Int32
    }

    var params = ByteBuffer()
    private(set) var pairs: [Pair] = []
    var body = ByteBuffer()
    /// Answered before its body arrived (`FastCGIResponder.answersBeforeBody`):
    /// a responder that reads the body anyway gets `.incomplete`, never a
    /// body that looks empty.
    var bodyWithheld = false
    /// See `FastCGIRequest.note`.
    var note = 0

    init() { pairs.reserveCapacity(48) }

    /// Ready for the connection's next request. A buffer that grew past a
    /// few KiB for one large request is given back.
    func reset() {
        params.removeAll(releasingAbove: 16 * 1024)
        body.removeAll(releasingAbove: 16 * 1024)
        if pairs.capacity > 256 { pairs = []; pairs.reserveCapacity(48) } else { pairs.removeAll(keepingCapacity: true) }
        bodyWithheld = false
        note = 0
    }

    /// The memory it holds.
    var heldBytes: Int { params.capacity + body.capacity + pairs.capacity * MemoryLayout<Pair>.stride }

    /// Indexes the pairs of `params`, once they are all there. Every length
    /// was checked as the records came (`PairScanner`): the block ends at a
    /// pair boundary and no pair is over the header limit.
    func indexPairs() {
        pairs.removeAll(keepingCapacity: true)
        let stream = params.bytes
        var index = 0
        func length() -> Int {
            if stream[index] & 0x80 == 0 {
                index += 1
                return Int(stream[index - 1])
            }
            defer { index += 4 }
            return Int(stream[index] & 0x7F) << 24 | Int(stream[index + 1]) << 16 | Int(stream[index + 2]) << 8 | Int(stream[index + 3])
        }
        while index < stream.count {
            let nameLength = length(), valueLength = length()
            pairs.append(Pair(nameStart: Int32(index), nameLength: Int32(nameLength),
                              valueStart: Int32(index + nameLength), valueLength: Int32(valueLength)))
            index += nameLength + valueLength
        }
    }

    /// The first pair named exactly `name`, as libfcgi's `FCGX_GetParam`
    /// finds the first; but a name is compared whole, so a name that holds
    /// `=` never answers for a shorter one, and a value is given whole, NUL
    /// bytes and all (libfcgi keeps `name=value` C strings, which cut a
    /// value at its first NUL): the app sees exactly what the web server sent.
    func value(of name: StaticString) -> UnsafeBufferPointer<UInt8>? {
        value(named: UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
    }

    func value(named name: UnsafeRawBufferPointer) -> UnsafeBufferPointer<UInt8>? {
        let wanted = name.count
        guard let base = params.base else { return nil }
        return pairs.withUnsafeBufferPointer { pairs in
            for pair in pairs where Int(pair.nameLength) == wanted
                && (wanted == 0 || memcmp(base + Int(pair.nameStart), name.baseAddress!, wanted) == 0) {
                return UnsafeBufferPointer(start: (base + Int(pair.valueStart)).assumingMemoryBound(to: UInt8.self),
                                           count: Int(pair.valueLength))
            }
            return nil
        }
    }
}

/// One request, seen by a responder: its params and its body, read and
/// checked by the server. Valid during `FastCGIResponder.respond` only.
public struct FastCGIRequest: RequestParameters, RequestBodyReader {
    // unowned(unsafe): a request never outlives the call it is passed to,
    // and the connection holds its storage meanwhile; no reference counting
    // on the hot path.
    unowned(unsafe) let received: ReceivedRequest

    init(_ received: ReceivedRequest) { self.received = received }

    public func param(_ name: StaticString) -> UnsafeBufferPointer<UInt8>? { received.value(of: name) }

    /// A value the responder keeps with the request from `blocks` to
    /// `respond` (0 until it sets one), so that what it decided from the
    /// params there (the app: the declared route) is not decided twice.
    public var note: Int {
        get { received.note }
        nonmutating set { received.note = newValue }
    }

    public func readBody(limit: Int) -> RequestBody {
        if received.bodyWithheld { return .incomplete }
        let body = received.body.bytes
        return body.count > limit ? .tooLarge : .complete(Array(body))
    }
}
