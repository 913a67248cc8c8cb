/// Mints MagicBell User JWTs: HS256 over
/// `{"user_email", "user_external_id", "api_key", "iat", "exp"}`.
///
/// Everything that does not change per token is prepared in `init`: the keyed
/// HMAC context, the encoded header segment and the escaped `api_key` claim.
/// Per token, the claims are written into a reused buffer and the token is
/// appended to the caller's buffer. Not thread-safe: one minter per worker.
public final class UserTokenMinter {
    public enum Error: Swift.Error, Equatable, CustomStringConvertible {
        /// Neither an email nor an external id (the String entry point only:
        /// a `UserIdentity` always has one).
        case noIdentity

        public var description: String { "a token needs user_email or user_external_id" }
    }

    /// `{"alg":"HS256","typ":"JWT"}`, the only header this project signs.
    public static let headerJSON = #"{"alg":"HS256","typ":"JWT"}"#

    public let ttl: Int
    private let hmac: HMACSHA256
    /// `<base64url(header)>.`
    private let headerSegment: [UInt8]
    /// `,"api_key":"…","iat":`
    private let apiKeyAndIatPrefix: [UInt8]
    /// The claims JSON, then the token, are written here; both grow only
    /// when an identity is longer than any before, so the steady state
    /// allocates nothing.
    private var claims: UnsafeMutableBufferPointer<UInt8>
    private var token: UnsafeMutableBufferPointer<UInt8>

    private static let userEmailPrefix = Array(#"{"user_email":"#.utf8)
    private static let externalIDPrefix = Array(#","user_external_id":"#.utf8)
    private static let expPrefix = Array(#","exp":"#.utf8)
    private static let null = Array("null".utf8)

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
        claims = .allocate(capacity: 1024)
        token = .allocate(capacity: 2048)
    }

    deinit {
        claims.deallocate()
        token.deallocate()
    }

    /// Appends a token for `identity` to `out` and returns its `exp`.
    public func mint(_ identity: UserIdentity, issuedAt: Int, into out: inout [UInt8]) -> Int {
        let length = write(email: identity.email?.bytes, externalID: identity.externalID?.bytes, issuedAt: issuedAt)
        out.append(contentsOf: UnsafeBufferPointer(rebasing: token[..<length]))
        return issuedAt + ttl
    }

    /// Writes the token into `token` and returns its length.
    private func write(email: UnsafeBufferPointer<UInt8>?, externalID: UnsafeBufferPointer<UInt8>?,
                       issuedAt: Int) -> Int {
        // The claims JSON, sized for the worst case (every identity byte escaped).
        let claimsNeeded = 96 + apiKeyAndIatPrefix.count + 2 * ClaimsJSON.maxIntegerLength
            + ClaimsJSON.maxStringLength(email?.count ?? 0) + ClaimsJSON.maxStringLength(externalID?.count ?? 0)
        Self.ensure(&claims, claimsNeeded)
        let start = claims.baseAddress!
        var p = Self.copy(Self.userEmailPrefix, to: start)
        p = Self.writeOptional(email, to: p)
        p = Self.copy(Self.externalIDPrefix, to: p)
        p = Self.writeOptional(externalID, to: p)
        p = Self.copy(apiKeyAndIatPrefix, to: p)
        p = ClaimsJSON.writeInteger(issuedAt, to: p)
        p = Self.copy(Self.expPrefix, to: p)
        p = ClaimsJSON.writeInteger(issuedAt + ttl, to: p)
        p.pointee = UInt8(ascii: "}")
        let claimsLength = p + 1 - start

        // header.payload, its MAC, then .signature.
        let tokenNeeded = headerSegment.count + Base64URL.encodedLength(claimsLength) + 1
            + Base64URL.encodedLength(HMACSHA256.outputSize)
        Self.ensure(&token, tokenNeeded)
        let tokenStart = token.baseAddress!
        var q = Self.copy(headerSegment, to: tokenStart)
        q = Base64URL.write(start, count: claimsLength, to: q)
        let signedLength = q - tokenStart
        // The MAC goes into the claims buffer, which is no longer needed.
        hmac.authenticate(UnsafeRawBufferPointer(start: tokenStart, count: signedLength), into: start)
        q.pointee = UInt8(ascii: ".")
        q = Base64URL.write(start, count: HMACSHA256.outputSize, to: q + 1)
        return q - tokenStart
    }

    @inline(__always)
    private static func copy(_ bytes: [UInt8], to destination: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        bytes.withUnsafeBufferPointer { destination.update(from: $0.baseAddress!, count: $0.count) }
        return destination + bytes.count
    }

    private static func ensure(_ buffer: inout UnsafeMutableBufferPointer<UInt8>, _ needed: Int) {
        guard buffer.count < needed else { return }
        buffer.deallocate()
        buffer = .allocate(capacity: max(needed, buffer.count * 2))
    }

    @inline(__always)
    private static func writeOptional(_ value: UnsafeBufferPointer<UInt8>?,
                                      to destination: UnsafeMutablePointer<UInt8>) -> UnsafeMutablePointer<UInt8> {
        guard let value else { return copy(null, to: destination) }
        // A UserIdentity value is checked UTF-8, so the writer cannot refuse it.
        guard let end = ClaimsJSON.writeString(value, to: destination) else {
            preconditionFailure("UserIdentity holds unchecked bytes")
        }
        return end
    }

    /// Appends MagicBell's HMAC user key for `identity` to `out`:
    /// base64(HMAC-SHA256(secret key, external id)), over the email when
    /// there is no external id: standard base64 with padding, as the React
    /// inbox's `userKey`, the mobile SDKs' `hmac` and the v1 API's
    /// `X-MAGICBELL-USER-HMAC` take it. With this minter's keyed HMAC and
    /// buffers: nothing is allocated once `out` has room.
    public func appendUserKey(for identity: UserIdentity, to out: inout [UInt8]) {
        guard let value = identity.externalID?.bytes ?? identity.email?.bytes else {
            preconditionFailure("a UserIdentity has an email or an external id")
        }
        // The MAC into the claims buffer, its encoding into the token buffer
        // (both at least 1 KiB, and done with for this token).
        let mac = claims.baseAddress!, encoded = token.baseAddress!
        hmac.authenticate(UnsafeRawBufferPointer(value), into: mac)
        let end = Base64URL.writeStandard(mac, count: HMACSHA256.outputSize, to: encoded)
        out.append(contentsOf: UnsafeBufferPointer(start: encoded, count: end - encoded))
    }

    /// The same path for callers that have Strings (the CLI, tests), which
    /// are valid UTF-8 already. An empty String counts as absent.
    public func mint(email: String?, externalID: String?, issuedAt: Int) throws(Error) -> (token: String, expiresAt: Int) {
        var email = email ?? "", externalID = externalID ?? ""
        var out: [UInt8] = []
        let expiresAt: Int? = email.withUTF8 { emailBytes in
            externalID.withUTF8 { idBytes in
                let identity = UserIdentity(email: Self.checked(emailBytes), externalID: Self.checked(idBytes))
                return identity.map { mint($0, issuedAt: issuedAt, into: &out) }
            }
        }
        guard let expiresAt else { throw .noIdentity }
        return (String(decoding: out, as: UTF8.self), expiresAt)
    }

    private static func checked(_ bytes: UnsafeBufferPointer<UInt8>) -> UserIdentity.Value? {
        if case .present(let value) = UserIdentity.check(bytes) { return value }
        return nil
    }
}
