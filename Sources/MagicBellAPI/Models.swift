/// Request and response bodies of the JwtService, for both published
/// revisions: the older one (OpenAPI `AccessToken`,
/// `ArrayOfFetchTokensResponseTokens`, `page[…]` pagination) and the newer
/// one (`CreateTokenResponse`, `AccessTokenCollection`, `limit` /
/// `starting_after` / `ending_before`, nullable fields). The field names are
/// the same in both; the newer one makes more of them nullable, so optional
/// fields here accept both absent and null.

public struct CreateProjectTokenRequest: RequestModel, Equatable {
    /// 1 to 255 characters.
    public var name: String
    /// Lifetime in seconds, at least 1.
    public var expiry: Int?

    public init(name: String, expiry: Int? = nil) {
        self.name = name
        self.expiry = expiry
    }

    public static let schema = ModelSchema("CreateProjectTokenRequest", [
        .init("name", .string(minLength: 1, maxLength: RequestFields.maxStringLength), required: true),
        .init("expiry", .integer(minimum: 1), nullable: true),
    ], closed: true)

    /// Decodes and validates by `schema`. Throws `InvalidRequestBody`.
    public init(from decoder: any Decoder) throws {
        var fields = try RequestFields(decoder, Self.schema)
        guard let name = try fields.string("name") else {
            throw InvalidRequestBody(message: "name is required.")
        }
        self.name = name
        expiry = try fields.expiry()
    }
}

public struct CreateUserTokenRequest: RequestModel, Equatable {
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

    public static let schema = ModelSchema("CreateUserTokenRequest", [
        .init("email", .string(maxLength: RequestFields.maxStringLength), nullable: true),
        .init("external_id", .string(maxLength: RequestFields.maxStringLength), nullable: true),
        .init("name", .string(maxLength: RequestFields.maxStringLength), nullable: true),
        .init("expiry", .integer(minimum: 1), nullable: true),
    ], requiresOneOf: ["email", "external_id"], closed: true)

    /// Decodes and validates by `schema`. Throws `InvalidRequestBody`.
    public init(from decoder: any Decoder) throws {
        var fields = try RequestFields(decoder, Self.schema)
        email = try fields.string("email")
        externalID = try fields.string("external_id")
        name = try fields.string("name")
        expiry = try fields.expiry()
        try fields.checkRequiresOneOf()
    }
}

/// A create body that decodes as JSON but breaks the schema; the message
/// names the field. (A body that is not a JSON object throws Foundation's
/// `DecodingError` instead.)
public struct InvalidRequestBody: Error, Equatable, Sendable {
    public let message: String
}

/// A request body's fields, checked by its model's schema. Strings are
/// counted in characters (Unicode scalars), as JSON Schema's maxLength counts them.
struct RequestFields {
    static let maxStringLength = 255

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    private let container: KeyedDecodingContainer<Key>
    private let schema: ModelSchema
    /// The string fields read so far that hold at least one character.
    private var nonEmpty: Set<String> = []

    init(_ decoder: any Decoder, _ schema: ModelSchema) throws {
        container = try decoder.container(keyedBy: Key.self)
        self.schema = schema
        let allowed = schema.fields.map(\.name).sorted()
        if let unknown = container.allKeys.map(\.stringValue).sorted().first(where: { !allowed.contains($0) }) {
            let shown = unknown.count > 40 ? String(unknown.prefix(40)) + "…" : unknown
            throw InvalidRequestBody(message: "Unknown field \"\(shown)\"; allowed: \(allowed.joined(separator: ", ")).")
        }
    }

    /// A string of the schema's length without control characters, or nil
    /// when absent or null.
    mutating func string(_ field: String) throws -> String? {
        guard case .string(let minimum, let maximum)? = schema[field]?.kind else {
            preconditionFailure("\(field) is not a string of \(schema.name)")
        }
        let key = Key(stringValue: field)
        guard container.contains(key), try !container.decodeNil(forKey: key) else { return nil }
        let text: String
        do {
            text = try container.decode(String.self, forKey: key)
        } catch DecodingError.typeMismatch {
            throw InvalidRequestBody(message: "\(field) must be a string.")
        } // Other errors are bytes that are not JSON (strings are checked as they are read): rethrown.
        let maximumLength = maximum ?? Int.max
        guard (minimum...maximumLength).contains(text.unicodeScalars.count) else {
            throw InvalidRequestBody(message: "\(field) must be \(minimum) to \(maximumLength) characters.")
        }
        // Ids and names end up in dashboards and logs: no NUL, newlines or ESC.
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw InvalidRequestBody(message: "\(field) must not contain control characters.")
        }
        if !text.isEmpty { nonEmpty.insert(field) }
        return text
    }

    /// The schema's `requiresOneOf`: at least one of those fields, read
    /// with `string`, holds a non-empty string.
    func checkRequiresOneOf() throws {
        let names = schema.requiresOneOf
        guard !names.isEmpty, nonEmpty.isDisjoint(with: names) else { return }
        throw InvalidRequestBody(message: "\(names.joined(separator: " or ")) is required (a non-empty string).")
    }

    /// `expiry`: an integer of at least 1, or nil when absent or null. As in
    /// JSON Schema, `1.0` and `1e3` are integers (1 and 1000); `1.5`, `true`
    /// and `"1"` are not.
    func expiry() throws -> Int? {
        let key = Key(stringValue: "expiry")
        guard container.contains(key), try !container.decodeNil(forKey: key) else { return nil }
        guard case .integer(let minimum)? = schema["expiry"]?.kind else { preconditionFailure("no expiry in \(schema.name)") }
        let refusal = InvalidRequestBody(message: "expiry must be a whole number of seconds, at least \(minimum ?? 1), or null.")
        let value: Int
        if let integer = try? container.decode(Int.self, forKey: key) {
            value = integer
        } else if let double = try? container.decode(Double.self, forKey: key),
                  double.rounded() == double, abs(double) < 0x1p63 {
            value = Int(double)
        } else {
            throw refusal
        }
        guard value >= minimum ?? Int.min else { throw refusal }
        return value
    }
}

/// The answer to a create (201): `AccessToken` (older) / `CreateTokenResponse` (newer).
public struct CreatedToken: APIModel, Codable, Equatable {
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

    public static let schema = ModelSchema("AccessToken", [
        .init("token", .string(), required: true), .init("token_id", .string(), required: true),
        .init("created_at", .string(), required: true), .init("expires_at", .string(), nullable: true),
    ])

    public var createdID: String? { tokenID }
}

/// The answer to a list (200): `ArrayOfFetchTokensResponseTokens` / `AccessTokenCollection`.
public struct TokenList: APIModel, Codable, Equatable {
    public var data: [TokenListItem]
    public var links: Links?

    public static var isPage: Bool { true }

    public static let schema = ModelSchema("TokenList", [
        .init("data", .list(of: TokenListItem.self), required: true),
        .init("links", .model(Links.self), nullable: true),
    ])
}

/// One listed token; note `id`, not `token_id`, and no token value.
public struct TokenListItem: APIModel, Codable, Equatable {
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

    public static let schema = ModelSchema("TokenListItem", [
        .init("id", .string(), nullable: true), .init("name", .string(), nullable: true),
        .init("created_at", .string(), required: true), .init("expires_at", .string(), nullable: true),
        .init("discarded_at", .string(), nullable: true),
    ])
}

public struct Links: APIModel, Codable, Equatable {
    public var first: String?
    public var next: String?
    public var prev: String?

    public static let schema = ModelSchema("Links", [
        .init("first", .string(), nullable: true), .init("next", .string(), nullable: true),
        .init("prev", .string(), nullable: true),
    ])
}

/// The answer to a discard (200): `DiscardTokenResponse`.
public struct DiscardedToken: APIModel, Codable, Equatable {
    public var discardedAt: String
    public var tokenID: String

    enum CodingKeys: String, CodingKey {
        case discardedAt = "discarded_at"
        case tokenID = "token_id"
    }

    public static let schema = ModelSchema("DiscardTokenResponse", [
        .init("discarded_at", .string(), required: true), .init("token_id", .string(), required: true),
    ])
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
