import FoundationEssentials

/// A model of MagicBell's API, with the description of its JSON that
/// `api-description` writes out (openapi.yaml and the fake MagicBell are
/// checked against it). A request model validates by its own description,
/// so the two cannot differ.
public protocol APIModel: Decodable, Sendable {
    static var schema: ModelSchema { get }
    /// The id of what the call created (a create's new token), for the
    /// audit line; nil for other answers.
    var createdID: String? { get }
    /// A page of a list: an operation that answers one takes the list's
    /// pagination query (`Pagination`); the others take no query.
    static var isPage: Bool { get }
}

extension APIModel {
    public var createdID: String? { nil }
    public static var isPage: Bool { false }
}

/// A request body's model.
public protocol RequestModel: APIModel, Encodable {
    /// The body of an operation that takes none: `NoBody()`, and nil for
    /// every model that is a body.
    static var none: Self? { get }
    /// What is sent: sorted keys, nulls left out (the older API revision
    /// has no nulls), `/` as is; nil for no body.
    func encoded() -> [UInt8]?
}

extension RequestModel {
    public static var none: Self? { nil }

    public func encoded() -> [UInt8]? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // The request models hold strings and integers only: encoding cannot fail.
        return (try? encoder.encode(self)).map(Array.init) ?? Array("{}".utf8)
    }
}

/// The body of an operation that takes none.
public struct NoBody: RequestModel {
    public init() {}
    public static var none: NoBody? { NoBody() }
    public func encoded() -> [UInt8]? { nil }
    public static let schema = ModelSchema("NoBody", [])
}

/// A model's JSON, as JSON Schema would say it: its fields, each with a
/// type, whether it must be present and whether it may be null.
public struct ModelSchema: Sendable {
    public enum Kind: Sendable {
        /// Characters counted as JSON Schema counts them (Unicode scalars).
        case string(minLength: Int = 0, maxLength: Int? = nil)
        case integer(minimum: Int? = nil)
        case model(any APIModel.Type)
        case list(of: any APIModel.Type)
    }

    public struct Field: Sendable {
        public let name: String
        public let kind: Kind
        public let required: Bool
        public let nullable: Bool

        public init(_ name: String, _ kind: Kind, required: Bool = false, nullable: Bool = false) {
            self.name = name
            self.kind = kind
            self.required = required
            self.nullable = nullable
        }
    }

    /// The model's name in MagicBell's OpenAPI (and in openapi.yaml).
    public let name: String
    public let fields: [Field]
    /// At least one of these fields must be a non-empty string.
    public let requiresOneOf: [String]
    /// Whether fields not listed are refused (request bodies) or ignored (answers).
    public let closed: Bool

    public init(_ name: String, _ fields: [Field], requiresOneOf: [String] = [], closed: Bool = false) {
        self.name = name
        self.fields = fields
        self.requiresOneOf = requiresOneOf
        self.closed = closed
    }

    public subscript(name: String) -> Field? { fields.first { $0.name == name } }
}
