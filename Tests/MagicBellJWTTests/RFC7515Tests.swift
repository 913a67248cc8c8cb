import Testing
@testable import MagicBellJWT

/// RFC 7515 appendix A.1: the HS256 example, byte for byte.
@Suite struct RFC7515Tests {
    static let header = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    static let payload = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    static let key = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
    static let signature = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

    @Test func hmacMatchesTheAppendixSignature() throws {
        let key = try #require(Base64URL.decode(Array(Self.key.utf8)))
        let mac = try HMACSHA256(key: SecretKey(key)).authenticate(Array("\(Self.header).\(Self.payload)".utf8))
        #expect(Base64URL.encode(mac) == Self.signature)
    }

    @Test func verifierAcceptsTheAppendixTokenBeforeItsExpiry() throws {
        let key = try #require(Base64URL.decode(Array(Self.key.utf8)))
        let verifier = try TokenVerifier(secret: SecretKey(key))
        let verified = try verifier.verify("\(Self.header).\(Self.payload).\(Self.signature)", now: 1_300_819_379)
        #expect(verified.expiresAt == 1_300_819_380)
        #expect(verified.claims["iss"]?.string == "joe")
        #expect(throws: TokenVerifier.Error.expired(at: 1_300_819_380)) {
            try verifier.verify("\(Self.header).\(Self.payload).\(Self.signature)", now: 1_300_819_380)
        }
    }

    @Test func headerSegmentIsTheFixedHS256Header() {
        #expect(Base64URL.encode(Array(UserTokenMinter.headerJSON.utf8)) == "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9")
    }
}
