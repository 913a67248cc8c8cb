/// Mints MagicBell User JWTs: HS256 over
/// `{"user_email", "user_external_id", "api_key", "iat", "exp"}`.
///
/// Everything that does not change per token is prepared in `init`: the keyed
/// HMAC context, the encoded header segment and the escaped `api_key` claim.
/// Per token, the claims are written into a reused buffer and the token is
/// appended to the caller's buffer. Not thread-safe: one minter per worker.
public final class UserTokenMinter {
    public enum Error: Swift.Error, Equatable, CustomStringConvertible {
        /// Neither an email nor an external id: MagicBell requires at least one.
        case noIdentity
        /// An identity that is not valid UTF-8 cannot be a JSON string.
        case invalidUTF8(claim: String)

        public var description: String {
            switch self {
            case .noIdentity: return "a token needs user_email or user_external_id"
            case .invalidUTF8(let claim): return "\(claim) is not valid UTF-8"
            }
        }
    }

    /// `{"alg":"HS256","typ":"JWT"}`, the only header this project signs.
    public static let headerJSON = #"{"alg":"HS256","typ":"JWT"}"#

    public let ttl: Int
    private let hmac: HMACSHA256
    /// `<base64url(header)>.`
    private let headerSegment: [UInt8]
    /// `,"api_key":"…","iat":`
    private let apiKeyAndIatPrefix: [UInt8]
    private var claims: [UInt8] = []
    private var mac = [UInt8](repeating: 0, count: HMACSHA256.outputSize)

    public init(apiKey: String, secret: SecretKey, ttl: Int) throws {
        self.ttl = ttl
        hmac = try HMACSHA256(key: secret)
        var header: [UInt8] = []
        Array(Self.headerJSON.utf8).withUnsafeBytes { Base64URL.encode($0, appendingTo: &header) }
        header.append(UInt8(ascii: "."))
        headerSegment = header
        var prefix = Array(#","api_key":"#.utf8)
        try ClaimsJSON.appendString(apiKey, to: &prefix)
        prefix.append(contentsOf: #","iat":"#.utf8)
        apiKeyAndIatPrefix = prefix
        claims.reserveCapacity(512)
    }

    /// Appends a token for the given identity to `out` and returns its `exp`.
    /// An empty identity counts as absent.
    public func mint(email: UnsafeBufferPointer<UInt8>?, externalID: UnsafeBufferPointer<UInt8>?,
                     issuedAt: Int, into out: inout [UInt8]) throws(Error) -> Int {
        let email = email.flatMap { $0.isEmpty ? nil : $0 }
        let externalID = externalID.flatMap { $0.isEmpty ? nil : $0 }
        if email == nil && externalID == nil { throw .noIdentity }
        let expiresAt = issuedAt + ttl

        claims.removeAll(keepingCapacity: true)
        claims.append(contentsOf: #"{"user_email":"#.utf8)
        try Self.appendOptional(email, claim: "user_email", to: &claims)
        claims.append(contentsOf: #","user_external_id":"#.utf8)
        try Self.appendOptional(externalID, claim: "user_external_id", to: &claims)
        claims.append(contentsOf: apiKeyAndIatPrefix)
        ClaimsJSON.appendInteger(issuedAt, to: &claims)
        claims.append(contentsOf: #","exp":"#.utf8)
        ClaimsJSON.appendInteger(expiresAt, to: &claims)
        claims.append(UInt8(ascii: "}"))

        let start = out.count
        out.append(contentsOf: headerSegment)
        claims.withUnsafeBytes { Base64URL.encode($0, appendingTo: &out) }
        let signedEnd = out.count
        out.withUnsafeBytes { all in
            mac.withUnsafeMutableBufferPointer { macOut in
                hmac.authenticate(UnsafeRawBufferPointer(rebasing: all[start..<signedEnd]),
                                  into: macOut.baseAddress!)
            }
        }
        out.append(UInt8(ascii: "."))
        mac.withUnsafeBytes { Base64URL.encode($0, appendingTo: &out) }
        return expiresAt
    }

    /// The same path for callers that have Strings (the CLI, tests).
    public func mint(email: String?, externalID: String?, issuedAt: Int) throws(Error) -> (token: String, expiresAt: Int) {
        var out: [UInt8] = []
        let emailBytes = email.map { Array($0.utf8) }
        let idBytes = externalID.map { Array($0.utf8) }
        let exp = try Self.withOptionalBuffer(emailBytes) { e throws(Error) in
            try Self.withOptionalBuffer(idBytes) { x throws(Error) in
                try mint(email: e, externalID: x, issuedAt: issuedAt, into: &out)
            }
        }
        return (String(decoding: out, as: UTF8.self), exp)
    }

    private static func appendOptional(_ value: UnsafeBufferPointer<UInt8>?, claim: String,
                                       to out: inout [UInt8]) throws(Error) {
        guard let value else {
            out.append(contentsOf: "null".utf8)
            return
        }
        do {
            try ClaimsJSON.appendString(value, to: &out)
        } catch {
            throw .invalidUTF8(claim: claim)
        }
    }

    private static func withOptionalBuffer<R>(_ bytes: [UInt8]?,
                                              _ body: (UnsafeBufferPointer<UInt8>?) throws(Error) -> R) throws(Error) -> R {
        guard let bytes else { return try body(nil) }
        let result: Result<R, Error> = bytes.withUnsafeBufferPointer { buffer in
            do throws(Error) { return .success(try body(buffer)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}
