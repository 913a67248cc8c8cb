#if !os(Linux)
#error("magicbell-fcgi runs on Linux: its server waits with epoll, signalfd and eventfd")
#endif

/// The FastCGI wire format (spec §3.3 records, §8 constants;
/// FastCGI-Archives/fcgi2, doc/fcgi-spec.html).
enum FCGI {
    static let version1: UInt8 = 1
    static let headerLength = 8

    // Record types (§8).
    static let beginRequest: UInt8 = 1
    static let abortRequest: UInt8 = 2
    static let endRequest: UInt8 = 3
    static let params: UInt8 = 4
    static let stdin: UInt8 = 5
    static let getValues: UInt8 = 9
    static let getValuesResult: UInt8 = 10
    static let unknownType: UInt8 = 11

    /// §5.1: the only role this responder plays.
    static let responderRole: UInt16 = 1
    static let keepConnFlag: UInt8 = 1

    // END_REQUEST protocol statuses (§5.5).
    static let requestComplete: UInt8 = 0
    static let cantMultiplex: UInt8 = 1
    static let unknownRole: UInt8 = 3

    /// The longest a record can be: header, 65535 content bytes, 255 padding.
    static let maxRecordLength = headerLength + 0xFFFF + 0xFF
}

/// The fixed 8-byte header of a record (§3.3).
struct RecordHeader: Equatable {
    let version: UInt8
    let type: UInt8
    let requestID: UInt16
    let contentLength: Int
    let paddingLength: Int

    /// The header at the start of `bytes` (at least 8 of them).
    init(_ bytes: UnsafeRawBufferPointer) {
        version = bytes[0]
        type = bytes[1]
        requestID = UInt16(bytes[2]) << 8 | UInt16(bytes[3])
        contentLength = Int(bytes[4]) << 8 | Int(bytes[5])
        paddingLength = Int(bytes[6])
    }

    /// Header, content and padding.
    var recordLength: Int { FCGI.headerLength + contentLength + paddingLength }

    /// A record's 8 header bytes.
    static func bytes(type: UInt8, requestID: UInt16, contentLength: Int, paddingLength: Int = 0) -> [UInt8] {
        [FCGI.version1, type, UInt8(requestID >> 8), UInt8(requestID & 0xFF),
         UInt8(contentLength >> 8), UInt8(contentLength & 0xFF), UInt8(paddingLength), 0]
    }
}
