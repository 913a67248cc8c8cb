/// Checks the start of a FastCGI request (BEGIN_REQUEST and its PARAMS
/// records, spec §3.3, §5.1, §3.4) before libfcgi reads it.
///
/// Why: libfcgi trusts the name-value lengths it reads. Two lengths near
/// 2^31 overflow its `nameLen + valueLen + 2` and a single 24-byte request
/// aborts the whole process (seen with Debian's 2.4.2-2+deb12u1, which has
/// the CVE-2025-23016 patch; that patch rejects only lengths equal to
/// INT_MAX). So every request is peeked at on its socket and handed to
/// libfcgi only when its whole header block is present, well-formed and
/// within `limit` bytes. The bytes checked are exactly the bytes libfcgi
/// then reads: the connection belongs to one worker, and libfcgi starts a
/// fresh read buffer for each request.
///
/// The check is stricter than the protocol, as a responder that only nginx
/// talks to can be: the first record must be BEGIN_REQUEST for the
/// RESPONDER role, and only PARAMS records of that request may follow until
/// the empty PARAMS record that ends them. (Management records such as
/// FCGI_GET_VALUES carry name-value pairs too, and nginx never sends them.)
public enum FastCGIPreflight {
    public enum Verdict: Equatable, Sendable {
        /// The whole header block is there and well-formed.
        case ready
        /// Well-formed so far, but it continues past the bytes given.
        case incomplete
        /// Never valid, whatever follows; the reason is for the log.
        case invalid(String)
    }

    /// The default limit: nginx's own cap on request headers (4 × 8 KiB
    /// large_client_header_buffers) with room for a site that raises it.
    public static let defaultLimit = 128 * 1024

    static let version1: UInt8 = 1
    static let beginRequest: UInt8 = 1, params: UInt8 = 4
    static let responderRole: UInt16 = 1

    /// Checks `bytes`, the start of the connection's unread data. A block
    /// that does not end within `limit` bytes is invalid.
    public static func check(_ bytes: UnsafeRawBufferPointer, limit: Int = defaultLimit) -> Verdict {
        var offset = 0
        var requestID: UInt16? = nil
        var pairs = PairScanner(limit: limit)
        while true {
            guard bytes.count - offset >= 8 else { return offset + 8 > limit ? .invalid("header block over \(limit) bytes") : .incomplete }
            let version = bytes[offset]
            let type = bytes[offset + 1]
            let id = UInt16(bytes[offset + 2]) << 8 | UInt16(bytes[offset + 3])
            let contentLength = Int(bytes[offset + 4]) << 8 | Int(bytes[offset + 5])
            let recordEnd = offset + 8 + contentLength + Int(bytes[offset + 6])
            guard version == version1 else { return .invalid("FastCGI version \(version), not 1") }
            guard recordEnd <= limit else { return .invalid("header block over \(limit) bytes") }

            if let requestID {
                guard type == params else { return .invalid("record type \(type) before the params ended") }
                guard id == requestID else { return .invalid("params for request \(id) inside request \(requestID)") }
            } else {
                guard type == beginRequest else { return .invalid("record type \(type) where BEGIN_REQUEST belongs") }
                guard id != 0, contentLength == 8 else { return .invalid("malformed BEGIN_REQUEST") }
            }
            guard bytes.count >= recordEnd else { return .incomplete }
            let content = UnsafeRawBufferPointer(rebasing: bytes[(offset + 8)..<(offset + 8 + contentLength)])

            if requestID == nil {
                let role = UInt16(content[0]) << 8 | UInt16(content[1])
                guard role == responderRole else { return .invalid("FastCGI role \(role), not RESPONDER") }
                requestID = id
            } else if contentLength == 0 {
                return pairs.atPairBoundary ? .ready : .invalid("params end inside a name-value pair")
            } else if let problem = pairs.scan(content) {
                return .invalid(problem)
            }
            offset = recordEnd
        }
    }

    /// Walks the name-value pairs (spec §3.4) across record boundaries,
    /// checking only their lengths: each pair must fit within the limit.
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

        mutating func scan(_ content: UnsafeRawBufferPointer) -> String? {
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

        private mutating func finishLength(_ value: Int) -> String? {
            if field == 0 {
                nameLength = value
                field = 1
                return nil
            }
            field = 0
            // Both lengths are < 2^31, so the sum cannot overflow an Int.
            guard nameLength + value <= limit else {
                return "a param of \(nameLength) + \(value) bytes, over \(limit)"
            }
            skip = nameLength + value
            return nil
        }
    }
}
