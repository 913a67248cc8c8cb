/// MagicBell's JwtService: the six operations, described once. The client
/// and the admin route both work from this table.
public enum JwtOperation: String, CaseIterable, Sendable {
    case fetchProjectTokens, createProjectJwt, discardProjectJwt
    case createUserJwt, discardUserJwt, fetchUserTokens

    public enum Body: Sendable { case createProjectToken, createUserToken }

    public var method: String {
        switch self {
        case .fetchProjectTokens, .fetchUserTokens: return "GET"
        case .createProjectJwt, .createUserJwt: return "POST"
        case .discardProjectJwt, .discardUserJwt: return "DELETE"
        }
    }

    /// Relative to the API base URL. `{…}` is the one path parameter.
    /// Note: DELETE jwt/user/{token_id} and GET jwt/user/{user_id} share a
    /// template; only the method tells them apart.
    public var pathTemplate: String {
        switch self {
        case .fetchProjectTokens, .createProjectJwt: return "jwt/project"
        case .discardProjectJwt: return "jwt/project/{token_id}"
        case .createUserJwt: return "jwt/user"
        case .discardUserJwt: return "jwt/user/{token_id}"
        case .fetchUserTokens: return "jwt/user/{user_id}"
        }
    }

    /// The path parameter's name, if the path has one.
    public var pathParameter: String? {
        switch self {
        case .discardProjectJwt, .discardUserJwt: return "token_id"
        case .fetchUserTokens: return "user_id"
        default: return nil
        }
    }

    public var body: Body? {
        switch self {
        case .createProjectJwt: return .createProjectToken
        case .createUserJwt: return .createUserToken
        default: return nil
        }
    }

    public var isPaginated: Bool { method == "GET" }

    var templateSegments: [Substring] { pathTemplate.split(separator: "/") }

    /// What a relative path (already split into decoded segments) and a
    /// method resolve to.
    public enum Match: Equatable, Sendable {
        case operation(JwtOperation, pathValue: String?)
        /// The path exists, but not with this method.
        case methodNotAllowed(allowed: [String])
        case notFound
    }

    public static func match(method: String, segments: [String]) -> Match {
        var allowed: [String] = []
        for operation in allCases {
            let template = operation.templateSegments
            guard template.count == segments.count else { continue }
            var pathValue: String?
            var matches = true
            for (pattern, segment) in zip(template, segments) {
                if pattern.hasPrefix("{") {
                    pathValue = segment
                } else if pattern != segment {
                    matches = false
                    break
                }
            }
            guard matches else { continue }
            if operation.method == method { return .operation(operation, pathValue: pathValue) }
            allowed.append(operation.method)
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed: allowed)
    }
}
