import FoundationEssentials

/// Checks an HS256 token the way MagicBell would: signature first (constant
/// time), `alg` exactly `HS256` (never `none`, never another algorithm), and
/// `exp` in the future. Not thread-safe: one verifier per thread.
public final class TokenVerifier {
    public enum Error: Swift.Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case unsupportedAlgorithm(String)
        case badSignature
        case missingExpiry
        case expired(at: Int)
        case notYetValid(at: Int)

        public var description: String {
            switch self {
            case .malformed(let why): return "malformed token: \(why)"
            case .unsupportedAlgorithm(let alg): return "unsupported alg \(alg): only HS256 is accepted"
            case .badSignature: return "bad signature: the token was not signed with this secret key, or was altered"
            case .missingExpiry: return "the token has no integer exp claim"
            case .expired(let exp): return "the token expired at \(exp)"
            case .notYetValid(let nbf): return "the token is not valid before \(nbf)"
            }
        }
    }

    public struct Verified {
        /// The decoded claims.
        public let claims: [String: JSONValue]
        public let expiresAt: Int
        /// The claims as compact JSON with sorted keys.
        public var claimsJSON: String { JSONValue.object(claims).text }
    }

    private let hmac: HMACSHA256

    public init(secret: SecretKey) throws {
        hmac = try HMACSHA256(key: secret)
    }

    public func verify(_ token: String, now: Int) throws(Error) -> Verified {
        let bytes = Array(token.utf8)
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("a JWT has three dot-separated parts") }

        guard let headerBytes = Base64URL.decode(parts[0]) else { throw .malformed("the header is not base64url") }
        guard let header = Self.jsonObject(headerBytes) else { throw .malformed("the header is not a JSON object") }
        guard let alg = header["alg"]?.string else { throw .unsupportedAlgorithm("(missing)") }
        guard alg == "HS256" else { throw .unsupportedAlgorithm(alg) }
        // RFC 7515 §4.1.11: extensions we do not understand must be rejected.
        if header["crit"] != nil { throw .malformed("the header has crit extensions") }

        guard let signature = Base64URL.decode(parts[2]) else { throw .malformed("the signature is not base64url") }
        let signingInput = bytes[..<(parts[0].count + 1 + parts[1].count)]
        let expected = hmac.authenticate(signingInput)
        guard HMACSHA256.constantTimeEquals(expected, signature) else { throw .badSignature }

        guard let payloadBytes = Base64URL.decode(parts[1]) else { throw .malformed("the payload is not base64url") }
        guard let claims = Self.jsonObject(payloadBytes) else { throw .malformed("the payload is not a JSON object") }
        guard let exp = claims["exp"]?.integer else { throw .missingExpiry }
        guard exp > now else { throw .expired(at: exp) }
        if let nbf = claims["nbf"]?.integer, nbf > now { throw .notYetValid(at: nbf) }
        return Verified(claims: claims, expiresAt: exp)
    }

    private static func jsonObject(_ bytes: [UInt8]) -> [String: JSONValue]? {
        guard case .object(let members) = JSONValue.parse(bytes) else { return nil }
        return members
    }
}
