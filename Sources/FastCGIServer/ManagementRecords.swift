/// The records this responder writes itself (as it writes every record):
/// answers to management records (spec §4) and END_REQUEST for requests it
/// does not serve (§5.5).
///
/// Why not libfcgi: its `ProcessManagementRecord` builds the GET_VALUES
/// answer in a 64-byte stack buffer, one entry per name asked, so a
/// GET_VALUES naming FCGI_MAX_CONNS eight times smashes the stack and aborts
/// the process (libfcgi 2.4.2). And it answers with its own values (one
/// connection, one request), not this server's.
public struct ManagementValues: Equatable, Sendable {
    /// FCGI_MAX_CONNS: the most connections the server holds at once.
    public var maxConnections: Int
    /// FCGI_MAX_REQS: the most requests served at once (event loops and pool threads).
    public var maxRequests: Int

    public init(maxConnections: Int, maxRequests: Int) {
        self.maxConnections = maxConnections
        self.maxRequests = maxRequests
    }

    /// §4.1: an FCGI_GET_VALUES_RESULT naming each variable asked that this
    /// application knows, once, in the order first asked. Unknown names are
    /// left out, as the spec says; a malformed pair ends the list.
    func getValuesResult(for content: UnsafeRawBufferPointer) -> [UInt8] {
        var asked: [Variable] = []
        var pairs = PairReader(content)
        while let (name, _) = pairs.next() {
            if let variable = Variable(name), !asked.contains(variable) { asked.append(variable) }
        }
        var body: [UInt8] = []
        for variable in asked {
            let name = variable.name.utf8, value = Array(String(value(of: variable)).utf8)
            body.append(UInt8(name.count))
            body.append(UInt8(value.count))
            body.append(contentsOf: name)
            body.append(contentsOf: value)
        }
        return Self.record(FCGI.getValuesResult, requestID: 0, body)
    }

    private func value(of variable: Variable) -> Int {
        switch variable {
        case .maxConnections: return maxConnections
        case .maxRequests: return maxRequests
        case .multiplexes: return 0 // one request per connection at a time
        }
    }

    enum Variable: CaseIterable {
        case maxConnections, maxRequests, multiplexes

        var name: String {
            switch self {
            case .maxConnections: return "FCGI_MAX_CONNS"
            case .maxRequests: return "FCGI_MAX_REQS"
            case .multiplexes: return "FCGI_MPXS_CONNS"
            }
        }

        init?(_ name: UnsafeRawBufferPointer) {
            guard let found = Self.allCases.first(where: { $0.name.utf8.elementsEqual(name) }) else { return nil }
            self = found
        }
    }

    /// §4.2: the answer to a management record of a type this application
    /// does not know.
    static func unknownType(_ type: UInt8) -> [UInt8] {
        record(FCGI.unknownType, requestID: 0, [type, 0, 0, 0, 0, 0, 0, 0])
    }

    /// §5.5: ends a request with `protocolStatus` (appStatus 0).
    static func endRequest(_ requestID: UInt16, _ protocolStatus: UInt8) -> [UInt8] {
        record(FCGI.endRequest, requestID: requestID, [0, 0, 0, 0, protocolStatus, 0, 0, 0])
    }

    /// A record padded to a multiple of 8 bytes, as §3.3 recommends.
    private static func record(_ type: UInt8, requestID: UInt16, _ content: [UInt8]) -> [UInt8] {
        let padding = (8 - content.count % 8) % 8
        return RecordHeader.bytes(type: type, requestID: requestID, contentLength: content.count, paddingLength: padding)
            + content + [UInt8](repeating: 0, count: padding)
    }
}

/// Name-value pairs (§3.4) within one buffer, for GET_VALUES; stops at the
/// first pair that does not fit.
struct PairReader {
    private let bytes: UnsafeRawBufferPointer
    private var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func next() -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer)? {
        guard let nameLength = length(), let valueLength = length(),
              nameLength <= bytes.count - offset, valueLength <= bytes.count - offset - nameLength else { return nil }
        let name = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + nameLength)])
        let value = UnsafeRawBufferPointer(rebasing: bytes[(offset + nameLength)..<(offset + nameLength + valueLength)])
        offset += nameLength + valueLength
        return (name, value)
    }

    private mutating func length() -> Int? {
        guard offset < bytes.count else { return nil }
        if bytes[offset] & 0x80 == 0 {
            offset += 1
            return Int(bytes[offset - 1])
        }
        guard bytes.count - offset >= 4 else { return nil }
        defer { offset += 4 }
        return Int(bytes[offset] & 0x7F) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
    }
}
