/// MagicBell's JwtService, described once: each operation is one entry of
/// `JwtService`, naming its method, its path, the model its request body
/// decodes to and the model its answer decodes to. The client sends from
/// these entries, the admin route forwards them (its route table has one
/// line per entry), and `api-description` writes them out for openapi.yaml
/// and the fake MagicBell to be checked against (docs/development.md).
public enum JwtService {
    public static let fetchProjectTokens = JwtEndpoint<NoBody, TokenList>("fetchProjectTokens", "GET", "jwt/project")
    public static let createProjectJwt = JwtEndpoint<CreateProjectTokenRequest, CreatedToken>("createProjectJwt", "POST", "jwt/project")
    public static let discardProjectJwt = JwtEndpoint<NoBody, DiscardedToken>("discardProjectJwt", "DELETE", "jwt/project/{token_id}")
    public static let createUserJwt = JwtEndpoint<CreateUserTokenRequest, CreatedToken>("createUserJwt", "POST", "jwt/user")
    public static let discardUserJwt = JwtEndpoint<NoBody, DiscardedToken>("discardUserJwt", "DELETE", "jwt/user/{token_id}")
    // Note: DELETE jwt/user/{token_id} and GET jwt/user/{user_id} share a
    // path; only the method tells them apart.
    public static let fetchUserTokens = JwtEndpoint<NoBody, TokenList>("fetchUserTokens", "GET", "jwt/user/{user_id}")
}

/// One operation, untyped: what a request to it is, whatever its models.
public struct JwtOperation: Sendable, Equatable, CustomStringConvertible {
    /// As MagicBell's SDKs and OpenAPI document name it (`createUserJwt`).
    public let name: String
    public let method: String
    /// Relative to the API base URL.
    public let path: PathTemplate
    /// The request body's model; nil for an operation that takes none.
    public let body: (any RequestModel.Type)?
    /// The model a success decodes to.
    public let answer: any APIModel.Type

    /// An operation that answers a page of a list takes pagination; the
    /// others no query (a GET of one item would not).
    public var isPaginated: Bool { answer.isPage }

    public var description: String { name }

    public static func == (a: JwtOperation, b: JwtOperation) -> Bool { a.name == b.name }
}

/// One operation with its models as types: `call` builds what the client sends.
public struct JwtEndpoint<Body: RequestModel, Answer: APIModel>: Sendable {
    public let operation: JwtOperation

    init(_ name: String, _ method: String, _ path: String) {
        operation = JwtOperation(name: name, method: method, path: PathTemplate(path),
                                 body: Body.none == nil ? Body.self : nil, answer: Answer.self)
    }

    /// The call, its path value sent as exactly one segment, its query
    /// (list operations only) and body encoded by the rules of `JwtCall`.
    public func call(pathValue: String? = nil, page: Pagination = Pagination(), body: Body) -> JwtCall<Answer> {
        JwtCall(APIRequest(operation: operation, pathValue: pathValue,
                           query: operation.isPaginated ? page.queryItems : [], body: body.encoded()))
    }
}

extension JwtEndpoint where Body == NoBody {
    public func call(pathValue: String? = nil, page: Pagination = Pagination()) -> JwtCall<Answer> {
        call(pathValue: pathValue, page: page, body: NoBody())
    }
}
