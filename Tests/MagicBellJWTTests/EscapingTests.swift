import Foundation
import Testing
@testable import MagicBellJWT
import TestSupport

/// The claims JSON must be valid JSON for every identity, keep its value, and
/// encode to a payload that `atob()` accepts (no base64url `-` or `_`).
@Suite struct EscapingTests {
    static func escaped(_ string: String) throws -> String {
        var out: [UInt8] = []
        try ClaimsJSON.appendString(string, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    @Test func specialCharactersAreEscapedExactly() throws {
        #expect(try Self.escaped(#"a"b\c"#) == #""a\"b\\c""#)
        #expect(try Self.escaped("\n\r\t\u{08}\u{0C}") == #""\n\r\t\b\f""#)
        #expect(try Self.escaped("\u{00}\u{1F}") == #""\u0000\u001f""#)
        #expect(try Self.escaped(">?~\u{7F}") == #""\u003e\u003f\u007e\u007f""#)
        #expect(try Self.escaped("é") == #""\u00e9""#)
        #expect(try Self.escaped("€") == #""\u20ac""#)
        #expect(try Self.escaped("😀") == #""\ud83d\ude00""#)
        #expect(try Self.escaped("plain-id_01@example.com") == #""plain-id_01@example.com""#)
    }

    /// Checks one identity end to end: the payload is atob-safe, pure ASCII,
    /// and parses back to the same strings.
    static func checkRoundTrip(_ minter: UserTokenMinter, email: String, externalID: String,
                               sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (token, _) = try minter.mint(email: email, externalID: externalID, issuedAt: 1_700_000_000)
        let payloadSegment = token.split(separator: ".")[1]
        #expect(!payloadSegment.contains("-") && !payloadSegment.contains("_"),
                "payload not atob-safe for \(email.debugDescription) / \(externalID.debugDescription)",
                sourceLocation: sourceLocation)
        let json = try #require(Fixture.payloadBytes(token), sourceLocation: sourceLocation)
        #expect(json.allSatisfy { $0 < 0x80 }, sourceLocation: sourceLocation)
        // atob() is standard base64 with padding: the payload must decode as such too.
        let padded = String(payloadSegment) + String(repeating: "=", count: (4 - payloadSegment.count % 4) % 4)
        #expect(Data(base64Encoded: padded) == Data(json), sourceLocation: sourceLocation)
        let claims = try #require(Fixture.claims(token), sourceLocation: sourceLocation)
        #expect(claims["user_email"] as? String == email, sourceLocation: sourceLocation)
        #expect(claims["user_external_id"] as? String == externalID, sourceLocation: sourceLocation)
    }

    @Test func everyASCIICharacterAtEveryOffset() throws {
        let minter = try Fixture.minter()
        for byte in UInt8(0)...0x7F {
            for pad in 0..<3 {
                let s = String(repeating: "a", count: pad) + String(UnicodeScalar(byte))
                try Self.checkRoundTrip(minter, email: s, externalID: s + "x")
            }
        }
    }

    @Test(arguments: [1, 2, 3, 4])
    func randomIdentitiesRoundTripAndStayAtobSafe(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let minter = try Fixture.minter()
        let punctuation = Array("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ ".unicodeScalars)
        func randomScalar() -> UnicodeScalar {
            switch Int.random(in: 0..<6, using: &rng) {
            case 0: return punctuation.randomElement(using: &rng)!
            case 1: return UnicodeScalar(UInt8.random(in: 0...0x7F, using: &rng))
            case 2: return UnicodeScalar(UInt32.random(in: 0x80...0x7FF, using: &rng))!
            case 3: // the rest of the BMP, skipping surrogates
                let v = UInt32.random(in: 0x800...0xFFFD, using: &rng)
                return UnicodeScalar((0xD800...0xDFFF).contains(v) ? 0x4E2D : v)!
            case 4: return UnicodeScalar(UInt32.random(in: 0x1F300...0x1FAFF, using: &rng))! // emoji
            default: return UnicodeScalar(UInt32.random(in: 0x10000...0x10FFFF, using: &rng)) ?? "x"
            }
        }
        func randomString() -> String {
            var s = String.UnicodeScalarView()
            for _ in 0..<Int.random(in: 1...40, using: &rng) { s.append(randomScalar()) }
            return String(s)
        }
        for _ in 0..<500 {
            try Self.checkRoundTrip(minter, email: randomString(), externalID: randomString())
        }
    }
}
