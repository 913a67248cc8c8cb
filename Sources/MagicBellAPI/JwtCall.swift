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

/// What MagicBell answered: any status, the raw body, the header fields.
public struct APIResponse: Sendable, Equatable {
    public let status: Int
    public let body: [UInt8]
    public let fields: [HTTPField]

    public init(status: Int, body: [UInt8], fields: [HTTPField] = []) {
        self.status = status
        self.body = body
        self.fields = fields
    }

    /// The first header field of that name (any case), if any.
    public func field(_ name: String) -> String? {
        fields.value(named: name)
    }
}

/// A successful answer: the model it decoded to, and the bytes as
/// MagicBell sent them (the admin route forwards those).
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
