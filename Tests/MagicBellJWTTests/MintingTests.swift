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
        // Python's standard library hmac/hashlib, an implementation that shares no code with OpenSSL.
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

    /// RFC 4231 §4: every case with full-length output (case 5 truncates),
    /// among them keys longer than SHA-256's 64-byte block (cases 6 and 7),
    /// which RFC 2104 hashes first; and keys of exactly 64 and 65 bytes
    /// against Python's hmac, on either side of that boundary.
    @Test(arguments: [
        (String(repeating: "0b", count: 20), "4869205468657265",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        ("4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        (String(repeating: "aa", count: 20), String(repeating: "dd", count: 50),
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        ("0102030405060708090a0b0c0d0e0f10111213141516171819", String(repeating: "cd", count: 50),
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        (String(repeating: "aa", count: 131),
         "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048617368204b6579204669727374",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        (String(repeating: "aa", count: 131),
         "5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f636b2d73697a65206b657920616e642061206c6172676572207468616e20626c6f636b2d73697a6520646174612e20546865206b6579206e6565647320746f20626520686173686564206265666f7265206265696e6720757365642062792074686520484d414320616c676f726974686d2e",
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
        (String(repeating: "61", count: 64), "6d657373616765",
         "6117f44d3e99fd884a6c9dc786e91e812c2a7b1c6240231edfcfe60343ff61cb"),
        (String(repeating: "61", count: 65), "6d657373616765",
         "88d81ab6f6f7dd8671c038c63fff879a74aa747f0ce7ff496b867eb554419e73"),
    ])
    func hmacMatchesRFC4231(key: String, message: String, mac: String) throws {
        let computed = try HMACSHA256(key: SecretKey(Self.bytes(hex: key))).authenticate(Self.bytes(hex: message))
        #expect(computed.map { String(format: "%02x", $0) }.joined() == mac)
    }

    static func bytes(hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            out.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return out
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
