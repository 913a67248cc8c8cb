/// Request and response bodies of the JwtService, for both published
/// revisions: the older one (OpenAPI `AccessToken`,
/// `ArrayOfFetchTokensResponseTokens`, `page[…]` pagination) and the newer
/// one (`CreateTokenResponse`, `AccessTokenCollection`, `limit` /
/// `starting_after` / `ending_before`, nullable fields). The field names are
/// the same in both; the newer one makes more of them nullable, so optional
/// fields here accept both absent and null.

public struct CreateProjectTokenRequest: Codable, Equatable, Sendable {
    /// 1 to 255 characters.
    public var name: String
    /// Lifetime in seconds, at least 1.
    public var expiry: Int?

    public init(name: String, expiry: Int? = nil) {
        self.name = name
        self.expiry = expiry
    }
}

public struct CreateUserTokenRequest: Codable, Equatable, Sendable {
    public var email: String?
    public var externalID: String?
    public var name: String?
    public var expiry: Int?

    public init(email: String? = nil, externalID: String? = nil, name: String? = nil, expiry: Int? = nil) {
        self.email = email
        self.externalID = externalID
        self.name = name
        self.expiry = expiry
    }

    enum CodingKeys: String, CodingKey {
        case email, name, expiry
        case externalID = "external_id"
    }
}

/// The answer to a create (201): `AccessToken` (older) / `CreateTokenResponse` (newer).
public struct CreatedToken: Codable, Equatable, Sendable {
    /// The JWT. MagicBell returns it only once.
    public var token: String
    public var tokenID: String
    public var createdAt: String
    /// Absent or null when no expiry was asked for.
    public var expiresAt: String?

    enum CodingKeys: String, CodingKey {
        case token
        case tokenID = "token_id"
        case createdAt = "created_at"
        case expiresAt = "expires_at"
    }
}

/// The answer to a list (200): `ArrayOfFetchTokensResponseTokens` / `AccessTokenCollection`.
public struct TokenList: Codable, Equatable, Sendable {
    public var data: [TokenListItem]
    public var links: Links?
}

/// One listed token; note `id`, not `token_id`, and no token value.
public struct TokenListItem: Codable, Equatable, Sendable {
    public var id: String?
    public var createdAt: String
    public var expiresAt: String?
    public var discardedAt: String?
    public var name: String?

    enum CodingKeys: String, CodingKey {
        case id, name
        case createdAt = "created_at"
        case expiresAt = "expires_at"
        case discardedAt = "discarded_at"
    }
}

public struct Links: Codable, Equatable, Sendable {
    public var first: String?
    public var next: String?
    public var prev: String?
}

/// The answer to a discard (200): `DiscardTokenResponse`.
public struct DiscardedToken: Codable, Equatable, Sendable {
    public var discardedAt: String
    public var tokenID: String

    enum CodingKeys: String, CodingKey {
        case discardedAt = "discarded_at"
        case tokenID = "token_id"
    }
}

/// List pagination, in either style. Set one style's fields only.
public struct Pagination: Equatable, Sendable {
    /// Newer style.
    public var limit: Int?
    public var startingAfter: String?
    public var endingBefore: String?
    /// Older style (`page[size]`, `page[after]`, `page[before]`).
    public var pageSize: Int?
    public var pageAfter: String?
    public var pageBefore: String?

    public init(limit: Int? = nil, startingAfter: String? = nil, endingBefore: String? = nil,
                pageSize: Int? = nil, pageAfter: String? = nil, pageBefore: String? = nil) {
        self.limit = limit
        self.startingAfter = startingAfter
        self.endingBefore = endingBefore
        self.pageSize = pageSize
        self.pageAfter = pageAfter
        self.pageBefore = pageBefore
    }

    /// The query parameter names MagicBell's list endpoints accept.
    public static let parameterNames = ["limit", "starting_after", "ending_before", "page[size]", "page[after]", "page[before]"]
    /// The ones whose values are integers.
    public static let integerParameters: Set<String> = ["limit", "page[size]"]

    public var queryItems: [(name: String, value: String)] {
        var items: [(String, String)] = []
        if let limit { items.append(("limit", String(limit))) }
        if let startingAfter { items.append(("starting_after", startingAfter)) }
        if let endingBefore { items.append(("ending_before", endingBefore)) }
        if let pageSize { items.append(("page[size]", String(pageSize))) }
        if let pageAfter { items.append(("page[after]", pageAfter)) }
        if let pageBefore { items.append(("page[before]", pageBefore)) }
        return items
    }
}
