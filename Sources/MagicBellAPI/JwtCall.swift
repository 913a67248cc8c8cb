import FoundationEssentials
import CurlHTTP

/// One call to the JwtService, before it is sent.
public struct APIRequest: Sendable {
    public var operation: JwtOperation
    /// The decoded value of the path parameter; sent as exactly one segment.
    public var pathValue: String?
    public var query: [(name: String, value: String)]
    /// JSON, for the two creates.
    public var body: [UInt8]?

    public init(operation: JwtOperation, pathValue: String? = nil,
                query: [(name: String, value: String)] = [], body: [UInt8]? = nil) {
        self.operation = operation
        self.pathValue = pathValue
        self.query = query
        self.body = body
    }
}

/// A successful answer: the model it decoded to, and the bytes as
/// MagicBell sent them (the admin route forwards those). The library's one
/// response type: a raw `send` gives the transport's `HTTPResponseMessage`
/// as it came.
public struct Answered<Answer: Sendable>: Sendable {
    public let status: Int
    public let body: [UInt8]
    public let value: Answer
}

/// One operation with its arguments, typed by its answer. Made by
/// `JwtEndpoint.call`, so that each operation's path, query and body are
/// encoded there and nowhere else.
public struct JwtCall<Answer: APIModel>: Sendable {
    public let request: APIRequest

    init(_ request: APIRequest) { self.request = request }
}
