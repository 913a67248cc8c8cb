import Foundation
import Testing
@testable import MagicBellJWT

@Suite struct MintingTests {
    @Test func claimsAreExactlyTheFiveMagicBellClaims() throws {
        let (token, exp) = try Fixture.minter(ttl: 600).mint(email: "ann@example.com", externalID: "u_1", issuedAt: 1_700_000_000)
        let payload = try #require(Fixture.payloadBytes(token))
        #expect(String(decoding: payload, as: UTF8.self) ==
            #"{"user_email":"ann@example.com","user_external_id":"u_1","api_key":"pk_test_1234567890","iat":1700000000,"exp":1700000600}"#)
        #expect(exp == 1_700_000_600)
        #expect(token.hasPrefix("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."))
    }

    @Test func anAbsentOrEmptyIdentityIsNull() throws {
        let minter = try Fixture.minter()
        for email in [nil, ""] as [String?] {
            let claims = try #require(Fixture.claims(try minter.mint(email: email, externalID: "x", issuedAt: 1).token))
            #expect(claims["user_email"] is NSNull)
            #expect(claims["user_external_id"] as? String == "x")
        }
        let claims = try #require(Fixture.claims(try minter.mint(email: "e@x.io", externalID: nil, issuedAt: 1).token))
        #expect(claims["user_external_id"] is NSNull)
    }

    @Test func noIdentityIsRefused() throws {
        #expect(throws: UserTokenMinter.Error.noIdentity) {
            try Fixture.minter().mint(email: nil, externalID: "", issuedAt: 1)
        }
    }

    @Test func theIdentityCheckRefusesInvalidUTF8AndCountsEmptyAsAbsent() throws {
        let invalid: [[UInt8]] = [
            [0xFF], [0xC0, 0xAF], [0xE0, 0x80, 0xAF], // bare byte, overlong '/' forms
            [0xED, 0xA0, 0x80], // a UTF-16 surrogate
            [0xF4, 0x90, 0x80, 0x80], // above U+10FFFF
            [0x61, 0xE2, 0x82], // truncated
            [0x80], // lone continuation
        ]
        for bytes in invalid {
            bytes.withUnsafeBufferPointer {
                guard case .invalidUTF8 = UserIdentity.check($0) else { Issue.record("accepted \(bytes)"); return }
            }
        }
        for valid in ["a", "é", "😀", "\u{10FFFF}", "ü>?~"] {
            Array(valid.utf8).withUnsafeBufferPointer {
                guard case .present(let value) = UserIdentity.check($0) else { Issue.record("refused \(valid)"); return }
                #expect(Array(value.bytes) == Array(valid.utf8))
            }
        }
        [UInt8]().withUnsafeBufferPointer {
            guard case .absent = UserIdentity.check($0) else { Issue.record("empty is not absent"); return }
        }
        guard case .absent = UserIdentity.check(nil) else { Issue.record("nil is not absent"); return }
        #expect(UserIdentity(email: nil, externalID: nil) == nil)
    }

    @Test func hmacMatchesAnIndependentImplementation() throws {
        // Python's standard library hmac/hashlib, an implementation that shares no code with OpenSSL's EVP_MAC path.
        let (token, _) = try Fixture.minter().mint(email: "ann@example.com", externalID: "ü>?~", issuedAt: 1_700_000_000)
        let script = """
        import base64, hashlib, hmac, sys
        token = sys.stdin.read().strip()
        head, payload, sig = token.split(".")
        mac = hmac.new(b"test-secret-key-do-not-use", (head + "." + payload).encode(), hashlib.sha256).digest()
        print(base64.urlsafe_b64encode(mac).rstrip(b"=").decode())
        """
        let independent = try #require(try Fixture.run(["python3", "-c", script], stdin: token))
        #expect(token.split(separator: ".")[2] == independent)
    }

    @Test func hmacMatchesTheOpenSSLCommandLine() throws {
        let message = "header.payload"
        let expected = try HMACSHA256(key: Fixture.secret).authenticate(Array(message.utf8))
        let hex = expected.map { String(format: "%02x", $0) }.joined()
        let cli = try #require(try Fixture.run(["openssl", "dgst", "-sha256", "-hmac", "test-secret-key-do-not-use", "-r"], stdin: message))
        #expect(cli.hasPrefix(hex))
    }

    @Test func integersAreWrittenExactly() {
        for value in [0, 7, 10, 59, 1_700_000_000, Int.max, -1, Int.min + 1] {
            var out: [UInt8] = []
            ClaimsJSON.appendInteger(value, to: &out)
            #expect(String(decoding: out, as: UTF8.self) == String(value))
        }
    }
}
