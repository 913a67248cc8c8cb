import FastCGIServer

/// Which endpoint a request is for, decided from its path alone; nginx
/// decides where the endpoints are mounted.
public enum Route: Equatable {
    /// The path ends with the segment `magicbell-token`.
    case token
    /// The path has a `/magicbell-admin/` segment.
    case admin
    case notFound

    /// As logs and metrics name it.
    public var name: String {
        switch self {
        case .token: return "token"
        case .admin: return "admin"
        case .notFound: return "not_found"
        }
    }

    static let tokenSegment = Array("magicbell-token".utf8)

    public static func of(_ request: some RequestParameters) -> Route {
        // Admin first: /magicbell-admin/jwt/user/magicbell-token is a user id.
        if AdminRequest.rawAdminPath(request) != nil { return .admin }
        return of(path: path(of: request))
    }

    /// The request path: `DOCUMENT_URI`, else `REQUEST_URI` without its query.
    public static func path(of request: some RequestParameters) -> UnsafeBufferPointer<UInt8> {
        if let documentURI = request.param("DOCUMENT_URI"), !documentURI.isEmpty {
            return documentURI
        }
        guard let requestURI = request.param("REQUEST_URI") else {
            return UnsafeBufferPointer(start: nil, count: 0)
        }
        let end = requestURI.firstIndex(of: UInt8(ascii: "?")) ?? requestURI.endIndex
        return UnsafeBufferPointer(rebasing: requestURI[..<end])
    }

    public static func of(path: UnsafeBufferPointer<UInt8>) -> Route {
        // The last segment, exactly: "/x/magicbell-token" yes,
        // "/magicbell-token/" and "/my-magicbell-token" no.
        let n = path.count, k = tokenSegment.count
        guard n > k, path[n - k - 1] == UInt8(ascii: "/") else { return .notFound }
        for i in 0..<k where path[n - k + i] != tokenSegment[i] { return .notFound }
        return .token
    }
}
