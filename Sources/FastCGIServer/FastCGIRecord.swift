#if !os(Linux)
#error("magicbell-fcgi runs on Linux: its server waits with epoll, signalfd and eventfd")
#endif

import CFastCGI

/// The FastCGI wire format (spec §3.3 records, §8 constants;
/// FastCGI-Archives/fcgi2, doc/fcgi-spec.html), from libfcgi's own
/// `fastcgi.h`, the spec's header: its values are not written again here.
enum FCGI {
    static let version1 = UInt8(FCGI_VERSION_1)
    static let headerLength = Int(FCGI_HEADER_LEN)

    // Record types (§8).
    static let beginRequest = UInt8(FCGI_BEGIN_REQUEST)
    static let abortRequest = UInt8(FCGI_ABORT_REQUEST)
    static let endRequest = UInt8(FCGI_END_REQUEST)
    static let params = UInt8(FCGI_PARAMS)
    static let stdin = UInt8(FCGI_STDIN)
    static let stdout = UInt8(FCGI_STDOUT)
    static let getValues = UInt8(FCGI_GET_VALUES)
    static let getValuesResult = UInt8(FCGI_GET_VALUES_RESULT)
    static let unknownType = UInt8(FCGI_UNKNOWN_TYPE)

    /// §5.1: the only role this responder plays.
    static let responderRole = UInt16(FCGI_RESPONDER)
    static let keepConnFlag = UInt8(FCGI_KEEP_CONN)

    // END_REQUEST protocol statuses (§5.5).
    static let requestComplete = UInt8(FCGI_REQUEST_COMPLETE)
    static let cantMultiplex = UInt8(FCGI_CANT_MPX_CONN)
    static let unknownRole = UInt8(FCGI_UNKNOWN_ROLE)

    /// The longest a record can be: header, 65535 content bytes, 255 padding.
    static let maxRecordLength = headerLength + Int(FCGI_MAX_LENGTH) + 0xFF
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

    /// A record's 8 header bytes, in place (the answers' hot path writes them without an array).
    typealias Encoded = (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)
    static func encoded(type: UInt8, requestID: UInt16, contentLength: Int, paddingLength: Int = 0) -> Encoded {
        (FCGI.version1, type, UInt8(requestID >> 8), UInt8(requestID & 0xFF),
         UInt8(contentLength >> 8), UInt8(contentLength & 0xFF), UInt8(paddingLength), 0)
    }

    /// A record's 8 header bytes, as an array.
    static func bytes(type: UInt8, requestID: UInt16, contentLength: Int, paddingLength: Int = 0) -> [UInt8] {
        withUnsafeBytes(of: encoded(type: type, requestID: requestID, contentLength: contentLength,
                                    paddingLength: paddingLength)) { Array($0) }
    }
}
