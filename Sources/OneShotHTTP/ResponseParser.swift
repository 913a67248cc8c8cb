/// An HTTP/1.1 response read incrementally from hostile bytes (RFC 9112).
///
/// Everything is bounded: the header section (`maxHeadBytes`, `maxFields`),
/// each line, the number of interim (1xx) answers, and the body (`bodyLimit`,
/// checked against Content-Length before any of it arrives). What RFC 9112
/// calls an unrecoverable framing error is `.malformed`; nothing is guessed.
package struct ResponseParser {
    package static let maxHeadBytes = 64 * 1024
    package static let maxFields = 100
    static let maxInterim = 8
    static let maxChunkLine = 4096

    private enum Phase {
        case head
        case fixed(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
        case done
    }

    private let bodyLimit: Int
    private var phase = Phase.head
    /// Bytes received and not yet consumed.
    private var pending: [UInt8] = []
    private var headBytes = 0
    private var interim = 0
    private var lines: [ArraySlice<UInt8>] = []
    private var status = 0
    private var fields: [HTTPField] = []
    private var body: [UInt8] = []
    private var trailerBytes = 0
    /// How many bytes after the cursor are known to hold no LF: the line
    /// being read is searched only where it grew, so a peer sending it a
    /// byte at a time costs linear time, not quadratic.
    private var searched = 0
    /// Bytes examined for line ends, in all (for the tests of that bound).
    package private(set) var bytesSearched = 0

    package init(bodyLimit: Int) {
        self.bodyLimit = bodyLimit
    }

    /// The answer once it is complete; nil while more bytes are needed.
    package var response: HTTPResponseMessage? {
        guard case .done = phase else { return nil }
        return HTTPResponseMessage(status: status, fields: fields, body: body)
    }

    /// Takes the next bytes from the connection.
    package mutating func feed(_ bytes: some Collection<UInt8>) throws(ExchangeFailure) {
        if case .done = phase { return } // anything after the answer is ignored; the connection closes
        pending.append(contentsOf: bytes)
        try advance()
    }

    /// The connection has ended (clean EOF). Completes a body framed by the
    /// close; anything else cut short is `.dropped`.
    package mutating func finish() throws(ExchangeFailure) {
        switch phase {
        case .done: return
        case .untilClose: phase = .done
        case .head where pending.isEmpty && lines.isEmpty && headBytes == 0:
            throw .dropped("the connection closed before an answer")
        default:
            throw .dropped("the connection closed in the middle of the answer")
        }
    }

    private mutating func advance() throws(ExchangeFailure) {
        var cursor = 0
        defer { pending.removeFirst(cursor) }
        while cursor < pending.count {
            switch phase {
            case .done:
                return
            case .head:
                let start = cursor
                guard let line = try nextLine(from: &cursor, limit: Self.maxHeadBytes - headBytes,
                                              tooLong: "the header section is larger than \(Self.maxHeadBytes) bytes")
                else { return }
                headBytes += cursor - start // with its CR and LF
                if line.isEmpty && lines.isEmpty {
                    continue // RFC 9112 §2.2: empty lines before the status line may be ignored
                }
                if !line.isEmpty {
                    lines.append(line)
                    continue
                }
                try headComplete()
            case .fixed(let remaining):
                let left = takeBody(remaining, from: &cursor)
                phase = left == 0 ? .done : .fixed(remaining: left)
            case .chunkSize:
                guard let line = try nextLine(from: &cursor, limit: Self.maxChunkLine, tooLong: "a chunk-size line is too long")
                else { return }
                let size = try Self.chunkSize(line)
                if size == 0 {
                    phase = .trailers
                } else {
                    guard size <= bodyLimit - body.count else { throw .tooLarge(limit: bodyLimit) }
                    phase = .chunkData(remaining: size)
                }
            case .chunkData(let remaining):
                let left = takeBody(remaining, from: &cursor)
                phase = left == 0 ? .chunkDataEnd : .chunkData(remaining: left)
            case .chunkDataEnd:
                guard let line = try nextLine(from: &cursor, limit: 1, tooLong: "a chunk is longer than its size")
                else { return }
                guard line.isEmpty else { throw .malformed("a chunk is longer than its size") }
                phase = .chunkSize
            case .trailers:
                // RFC 9112 §7.1.2: trailer fields may be discarded; they are bounded like headers.
                let start = cursor
                guard let line = try nextLine(from: &cursor, limit: Self.maxHeadBytes - trailerBytes,
                                              tooLong: "the trailer section is too large")
                else { return }
                trailerBytes += cursor - start
                if line.isEmpty { phase = .done }
            case .untilClose:
                let take = pending.count - cursor
                guard take <= bodyLimit - body.count else { throw .tooLarge(limit: bodyLimit) }
                body.append(contentsOf: pending[cursor...])
                cursor = pending.count
            }
        }
    }

    /// Moves up to `remaining` body bytes (already checked against the
    /// limit) from `pending`; what is still to come.
    private mutating func takeBody(_ remaining: Int, from cursor: inout Int) -> Int {
        let take = min(remaining, pending.count - cursor)
        body.append(contentsOf: pending[cursor..<cursor + take])
        cursor += take
        return remaining - take
    }

    /// The next line without its LF (and CR), or nil if it has not all arrived.
    private mutating func nextLine(from cursor: inout Int, limit: Int, tooLong: String) throws(ExchangeFailure) -> ArraySlice<UInt8>? {
        let available = pending.count - cursor
        let scan = min(available, max(limit, 0) + 2) // the line, CR, LF
        let from = cursor + min(searched, scan)
        bytesSearched += cursor + scan - from
        guard let newline = pending[from..<cursor + scan].firstIndex(of: 0x0A) else {
            if available >= max(limit, 0) + 2 { throw .malformed(tooLong) }
            searched = scan
            return nil
        }
        searched = 0
        var end = newline
        if end > cursor && pending[end - 1] == 0x0D { end -= 1 } // RFC 9112 §2.2: CRLF, or a bare LF
        guard end - cursor <= limit else { throw .malformed(tooLong) }
        let line = pending[cursor..<end]
        cursor = newline + 1
        return line
    }

    private mutating func headComplete() throws(ExchangeFailure) {
        let (version, code) = try Self.statusLine(lines[lines.startIndex])
        var parsed: [HTTPField] = []
        for line in lines.dropFirst() {
            if line.first == 0x20 || line.first == 0x09 {
                // RFC 9112 §5.2: a user agent replaces an obs-fold with SP.
                guard !parsed.isEmpty else { throw .malformed("a header section starts with whitespace") }
                parsed[parsed.count - 1].value += " " + (try Self.fieldValue(line))
                continue
            }
            parsed.append(try Self.field(line))
            guard parsed.count <= Self.maxFields else { throw .malformed("more than \(Self.maxFields) header fields") }
        }
        lines.removeAll()
        if (100..<200).contains(code) {
            // RFC 9110 §15.2: interim answers precede the final one. 101 would
            // switch protocols, which this client never asks for.
            guard code != 101 else { throw .malformed("an unrequested protocol switch (101)") }
            interim += 1
            guard interim <= Self.maxInterim else { throw .malformed("more than \(Self.maxInterim) interim answers") }
            headBytes = 0
            return
        }
        status = code
        fields = parsed
        phase = try framing(version: version)
    }

    /// RFC 9112 §6.3, in its order, for the answer to a request that is not HEAD.
    private func framing(version: Int) throws(ExchangeFailure) -> Phase {
        if status == 204 || status == 304 { return .done }
        let codings = fields.filter { $0.isNamed("transfer-encoding") }
        if !codings.isEmpty {
            guard version >= 1 else { throw .malformed("Transfer-Encoding in an HTTP/1.0 answer") } // §6.1
            let list = codings.flatMap { $0.value.split(separator: ",") }
                .map { $0.trimmingSpaces.lowercased() }.filter { !$0.isEmpty }
            // This client sends no TE and no Accept-Encoding: only chunked alone is expected.
            guard list == ["chunked"] else { throw .malformed("an unsupported Transfer-Encoding") }
            return .chunkSize // and any Content-Length is ignored (§6.3 item 3)
        }
        let lengths = fields.filter { $0.isNamed("content-length") }.flatMap { $0.value.split(separator: ",", omittingEmptySubsequences: false) }
        if !lengths.isEmpty {
            // §6.3 item 5 and §8.6: one value, or a list of the same value; anything else is unrecoverable.
            var length: Int?
            for text in lengths {
                let digits = text.trimmingSpaces
                guard !digits.isEmpty, digits.utf8.count <= 18, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
                      let value = Int(digits), length == nil || length == value
                else { throw .malformed("an invalid Content-Length") }
                length = value
            }
            guard let length else { throw .malformed("an invalid Content-Length") }
            guard length <= bodyLimit else { throw .tooLarge(limit: bodyLimit) }
            return length == 0 ? .done : .fixed(remaining: length)
        }
        return .untilClose
    }

    /// `HTTP/1.x SP 3DIGIT [SP reason]` (RFC 9112 §4); the reason is ignored.
    private static func statusLine(_ line: ArraySlice<UInt8>) throws(ExchangeFailure) -> (minor: Int, status: Int) {
        let bytes = Array(line)
        guard bytes.count >= 12, bytes.starts(with: Array("HTTP/1.".utf8)),
              (0x30...0x39).contains(bytes[7]), bytes[8] == 0x20,
              bytes[9...11].allSatisfy({ (0x30...0x39).contains($0) }),
              bytes.count == 12 || bytes[12] == 0x20
        else { throw .malformed("not an HTTP/1.x status line") }
        let code = Int(bytes[9] - 0x30) * 100 + Int(bytes[10] - 0x30) * 10 + Int(bytes[11] - 0x30)
        guard code >= 100 else { throw .malformed("not an HTTP/1.x status line") }
        return (Int(bytes[7] - 0x30), code)
    }

    /// `token ":" OWS value OWS` (RFC 9112 §5.1; RFC 9110 §5.5).
    private static func field(_ line: ArraySlice<UInt8>) throws(ExchangeFailure) -> HTTPField {
        guard let colon = line.firstIndex(of: 0x3A), colon > line.startIndex,
              line[..<colon].allSatisfy(isTokenByte)
        else { throw .malformed("an invalid header field") } // includes whitespace before the colon
        return HTTPField(name: String(decoding: line[..<colon], as: UTF8.self),
                         value: try fieldValue(line[(colon + 1)...]))
    }

    private static func fieldValue(_ raw: ArraySlice<UInt8>) throws(ExchangeFailure) -> String {
        // VCHAR, obs-text, SP and HTAB; a NUL, a bare CR or another control is invalid (RFC 9110 §5.5).
        guard raw.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else {
            throw .malformed("a header field value holds a control character")
        }
        return String(decoding: raw, as: UTF8.self).trimmingSpaces
    }

    /// RFC 9112 §7.1: `1*HEXDIG [ chunk-ext ]`, the extensions ignored.
    private static func chunkSize(_ line: ArraySlice<UInt8>) throws(ExchangeFailure) -> Int {
        var size = 0
        var digits = 0
        var index = line.startIndex
        while index < line.endIndex, let digit = hexValue(line[index]) {
            digits += 1
            guard digits <= 15 else { throw .malformed("a chunk size is too large") }
            size = size * 16 + digit
            index += 1
        }
        guard digits > 0 else { throw .malformed("an invalid chunk size") }
        let rest = line[index...].drop { $0 == 0x20 || $0 == 0x09 }
        guard rest.isEmpty || rest.first == 0x3B, rest.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) })
        else { throw .malformed("an invalid chunk size") }
        return size
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 0x30...0x39: Int(byte - 0x30)
        case 0x41...0x46: Int(byte - 0x41 + 10)
        case 0x61...0x66: Int(byte - 0x61 + 10)
        default: nil
        }
    }

    /// tchar (RFC 9110 §5.6.2).
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"): true
        default: false
        }
    }
}

extension StringProtocol {
    /// Without leading and trailing SP and HTAB (OWS, RFC 9110 §5.6.3).
    var trimmingSpaces: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
