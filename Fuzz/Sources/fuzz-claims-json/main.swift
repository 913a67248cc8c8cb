import Foundation
import FuzzDriver
import MagicBellJWT

nonisolated(unsafe) let minter = try! UserTokenMinter(apiKey: "pk_fuzz", secret: SecretKey(Array("fuzz-secret".utf8)), ttl: 900)
nonisolated(unsafe) let verifier = try! TokenVerifier(secret: SecretKey(Array("fuzz-secret".utf8)))

/// The identity check and the claims encoder on any identity bytes: the
/// input is split at its first NUL into email and external id, kept as raw
/// bytes so that invalid UTF-8 is reached. Properties: `UserIdentity.check`
/// refuses exactly what Swift's own UTF-8 validation refuses; what it accepts
/// mints a token whose payload is atob-safe base64 (no `-` or `_`),
/// pure-ASCII JSON, verifies, and decodes to the same strings.
func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let input = UnsafeBufferPointer(start: data, count: size)
    let cut = input.firstIndex(of: 0) ?? size
    let email = UnsafeBufferPointer(rebasing: input[..<cut])
    let externalID = UnsafeBufferPointer(rebasing: input[min(cut + 1, size)...])
    let valid = String(validating: email, as: UTF8.self) != nil && String(validating: externalID, as: UTF8.self) != nil
    func value(_ bytes: UnsafeBufferPointer<UInt8>) -> UserIdentity.Value?? {
        switch UserIdentity.check(bytes) {
        case .absent: return .some(nil)
        case .present(let value): return value
        case .invalidUTF8: return nil
        }
    }
    guard let checkedEmail = value(email), let checkedID = value(externalID) else {
        precondition(!valid, "valid UTF-8 refused")
        return 0
    }
    precondition(valid, "invalid UTF-8 accepted")
    guard let identity = UserIdentity(email: checkedEmail, externalID: checkedID) else {
        precondition(email.isEmpty && externalID.isEmpty, "a present value counted as absent")
        return 0
    }
    var out: [UInt8] = []
    _ = minter.mint(identity, issuedAt: 1_700_000_000, into: &out)
    let token = String(decoding: out, as: UTF8.self)
    let segments = token.split(separator: ".")
    precondition(segments.count == 3)
    let payload = segments[1]
    precondition(!payload.contains("-") && !payload.contains("_"), "payload is not atob-safe")
    let padded = String(payload) + String(repeating: "=", count: (4 - payload.count % 4) % 4)
    let json = Data(base64Encoded: padded)!
    precondition(json.allSatisfy { $0 < 0x80 }, "payload JSON is not ASCII")
    let claims = try! verifier.verify(token, now: 1_700_000_001).claims
    func same(_ claim: String, _ raw: UnsafeBufferPointer<UInt8>) -> Bool {
        raw.isEmpty ? claims[claim] == .null : claims[claim]?.string.map { Array($0.utf8) == Array(raw) } ?? false
    }
    precondition(same("user_email", email) && same("user_external_id", externalID), "claims do not round-trip")
    return 0
}

runFuzzer(fuzz)
