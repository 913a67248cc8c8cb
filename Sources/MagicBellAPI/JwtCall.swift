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

/// One of the six operations with its arguments, typed by its answer.
/// Built only by the constructors below, so that each operation's path,
/// query and body are encoded here and nowhere else.
public struct JwtCall<Answer: Decodable & Sendable>: Sendable {
    public let request: APIRequest

    private init(_ operation: JwtOperation, pathValue: String? = nil, page: Pagination? = nil, body: [UInt8]? = nil) {
        request = APIRequest(operation: operation, pathValue: pathValue, query: page?.queryItems ?? [], body: body)
    }

    /// Sorted keys, nulls left out (the older revision has no nulls), `/` as is.
    fileprivate static func encode(_ body: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // The two request models hold strings and integers only: encoding cannot fail.
        return (try? encoder.encode(body)).map(Array.init) ?? Array("{}".utf8)
    }
}

// MARK: The six operations, named as in MagicBell's SDKs.

extension JwtCall where Answer == TokenList {
    public static func fetchProjectTokens(_ page: Pagination = Pagination()) -> JwtCall {
        JwtCall(.fetchProjectTokens, page: page)
    }

    public static func fetchUserTokens(userID: String, _ page: Pagination = Pagination()) -> JwtCall {
        JwtCall(.fetchUserTokens, pathValue: userID, page: page)
    }
}

extension JwtCall where Answer == CreatedToken {
    public static func createProjectJwt(_ body: CreateProjectTokenRequest) -> JwtCall {
        JwtCall(.createProjectJwt, body: encode(body))
    }

    public static func createUserJwt(_ body: CreateUserTokenRequest) -> JwtCall {
        JwtCall(.createUserJwt, body: encode(body))
    }
}

extension JwtCall where Answer == DiscardedToken {
    public static func discardProjectJwt(tokenID: String) -> JwtCall {
        JwtCall(.discardProjectJwt, pathValue: tokenID)
    }

    public static func discardUserJwt(tokenID: String) -> JwtCall {
        JwtCall(.discardUserJwt, pathValue: tokenID)
    }
}
