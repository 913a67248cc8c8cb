import Foundation
import Testing
@testable import MagicBellJWT
import TestSupport

@Suite struct VerifierTests {
    let now = 1_700_000_100

    func token(ttl: Int = 3600) throws -> String {
        try Fixture.minter(ttl: ttl).mint(email: "ann@example.com", externalID: "u_1", issuedAt: 1_700_000_000).token
    }

    func verifier(_ secret: SecretKey = Fixture.secret) throws -> TokenVerifier {
        try TokenVerifier(secret: secret)
    }

    @Test func acceptsAFreshToken() throws {
        let verified = try verifier().verify(try token(), now: now)
        #expect(verified.claims["user_external_id"]?.string == "u_1")
        #expect(verified.claims["api_key"]?.string == Fixture.apiKey)
        #expect(verified.expiresAt == 1_700_003_600)
    }

    @Test func rejectsATamperedPayload() throws {
        var parts = try token().split(separator: ".").map(String.init)
        let claims = #"{"user_email":"eve@example.com","user_external_id":"u_1","api_key":"pk_test_1234567890","iat":1700000000,"exp":1700003600}"#
        parts[1] = Base64URL.encode(Array(claims.utf8))
        #expect(throws: TokenVerifier.Error.badSignature) { try verifier().verify(parts.joined(separator: "."), now: now) }
    }

    @Test func rejectsAFlippedSignatureCharacter() throws {
        var token = try token()
        let last = token.removeLast()
        token.append(last == "A" ? "B" : "A")
        #expect(throws: (any Error).self) { try verifier().verify(token, now: now) }
    }

    @Test func rejectsAForeignKey() throws {
        #expect(throws: TokenVerifier.Error.badSignature) {
            try verifier(SecretKey(Array("another-projects-secret".utf8))).verify(try token(), now: now)
        }
    }

    @Test func rejectsAlgNone() throws {
        let payload = try token().split(separator: ".")[1]
        for header in [#"{"alg":"none","typ":"JWT"}"#, #"{"alg":"None"}"#, #"{"typ":"JWT"}"#] {
            let forged = Base64URL.encode(Array(header.utf8)) + "." + payload + "."
            #expect(throws: TokenVerifier.Error.self) { try verifier().verify(forged, now: now) }
        }
        let none = Base64URL.encode(Array(#"{"alg":"none"}"#.utf8)) + "." + payload + "."
        #expect(throws: TokenVerifier.Error.unsupportedAlgorithm("none")) { try verifier().verify(none, now: now) }
    }

    @Test func rejectsOtherAlgorithmsEvenWithAValidHS256MAC() throws {
        // alg confusion: a token whose header claims HS512 (or RS256) is refused outright.
        let payload = try token().split(separator: ".")[1]
        for alg in ["HS512", "RS256", "hs256"] {
            let head = Base64URL.encode(Array(#"{"alg":"\#(alg)","typ":"JWT"}"#.utf8))
            let mac = try HMACSHA256(key: Fixture.secret).authenticate(Array("\(head).\(payload)".utf8))
            let forged = "\(head).\(payload).\(Base64URL.encode(mac))"
            #expect(throws: TokenVerifier.Error.unsupportedAlgorithm(alg)) { try verifier().verify(forged, now: now) }
        }
    }

    @Test func rejectsAnExpiredToken() throws {
        #expect(throws: TokenVerifier.Error.expired(at: 1_700_000_060)) {
            try verifier().verify(try token(ttl: 60), now: 1_700_000_060)
        }
    }

    @Test func rejectsATokenWithoutExp() throws {
        let head = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
        let payload = Base64URL.encode(Array(#"{"user_external_id":"u_1"}"#.utf8))
        let mac = try HMACSHA256(key: Fixture.secret).authenticate(Array("\(head).\(payload)".utf8))
        #expect(throws: TokenVerifier.Error.missingExpiry) {
            try verifier().verify("\(head).\(payload).\(Base64URL.encode(mac))", now: now)
        }
    }

    @Test(arguments: ["", "a.b", "a.b.c.d", "!!!.e30.x", "eyJhbGciOiJIUzI1NiJ9.e30=.AAAA"])
    func rejectsMalformedTokens(_ token: String) throws {
        #expect(throws: TokenVerifier.Error.self) { try verifier().verify(token, now: now) }
    }

    @Test func base64URLDecodingIsStrict() {
        #expect(Base64URL.decode(Array("TWFu".utf8)) == Array("Man".utf8))
        #expect(Base64URL.decode(Array("TWE".utf8)) == Array("Ma".utf8))
        #expect(Base64URL.decode(Array("TWE=".utf8)) == nil) // padding
        #expect(Base64URL.decode(Array("TW+u".utf8)) == nil) // standard alphabet
        #expect(Base64URL.decode(Array("TWF".utf8)) == nil) // non-zero trailing bits
        #expect(Base64URL.decode(Array("T".utf8)) == nil)
    }

    @Test func base64URLRoundTripsRandomBytes() {
        var rng = SplitMix64(seed: 42)
        for length in 0..<100 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(Base64URL.decode(Array(Base64URL.encode(bytes).utf8)) == bytes)
        }
    }
}
