// token-bench: mints User JWTs in process on one thread and prints tokens/s,
// next to a reference measured in the same run: the product's HMAC-SHA256
// alone (the CLibCrypto shim), in a C loop, over a signing input of the same
// length, with the same reused keyed context (the floor no token can go under).
//
//   swift run -c release --package-path Benchmarks token-bench [seconds-per-round]
//   token-bench --count N     mint N tokens untimed (for valgrind's allocation count)
import Foundation // String(format:)
import Glibc
import HMACReference
import MagicBellJWT

let arguments = Array(CommandLine.arguments.dropFirst())
let fixedCount: Int? = arguments.first == "--count" ? arguments.dropFirst().first.flatMap(Int.init) : nil
let secondsPerRound = fixedCount == nil ? (arguments.first.flatMap(Double.init) ?? 1.0) : 0
let rounds = 5

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Runs `body` in batches for about `seconds`; returns operations per second.
@inline(never)
func measure(seconds: Double, _ body: () -> Void) -> Double {
    measure(seconds: seconds, batch: 10_000) { count in
        for _ in 0..<count { body() }
    }
}

/// The same, for a body that runs `count` operations itself.
@inline(never)
func measure(seconds: Double, batch: Int, _ body: (Int) -> Void) -> Double {
    var operations = 0
    let start = now()
    var elapsed = 0.0
    repeat {
        body(batch)
        operations += batch
        elapsed = now() - start
    } while elapsed < seconds
    return Double(operations) / elapsed
}

let secret = SecretKey(Array("bench-secret-key-0123456789abcdef".utf8))
let minter = try UserTokenMinter(apiKey: "pk_JJUxO8amaaK21G08w9q0_218239574", secret: secret, ttl: 3600)
let email = Array("person@example.com".utf8)
let externalID = Array("usr_l70vln".utf8)
var token: [UInt8] = []
token.reserveCapacity(512)
let issuedAt = Int(time(nil))

/// Runs `body` with the bench identity, checked as the responder checks it.
func withIdentity<R>(_ body: (UserIdentity) -> R) -> R {
    email.withUnsafeBufferPointer { e in
        externalID.withUnsafeBufferPointer { x in
            guard case .present(let email) = UserIdentity.check(e), case .present(let externalID) = UserIdentity.check(x),
                  let identity = UserIdentity(email: email, externalID: externalID) else { fatalError("bench identity") }
            return body(identity)
        }
    }
}

// The token under test, checked once.
_ = withIdentity { minter.mint($0, issuedAt: issuedAt, into: &token) }
let tokenString = String(decoding: token, as: UTF8.self)
_ = try TokenVerifier(secret: secret).verify(tokenString, now: issuedAt)
let signingInputLength = token.lastIndex(of: UInt8(ascii: "."))!

if let fixedCount {
    withIdentity { identity in
        for _ in 0..<fixedCount {
            token.removeAll(keepingCapacity: true)
            _ = minter.mint(identity, issuedAt: issuedAt, into: &token)
        }
    }
    print("minted \(fixedCount) tokens")
    exit(0)
}

let key = Array("bench-secret-key-0123456789abcdef".utf8)
var mac = [UInt8](repeating: 0, count: 32)
let signingInput = Array(token[..<signingInputLength])

var mintRates: [Double] = [], hmacRates: [Double] = []
withIdentity { identity in
    for _ in 0..<rounds { // interleaved, so drift affects both alike
        mintRates.append(measure(seconds: secondsPerRound) {
            token.removeAll(keepingCapacity: true)
            _ = minter.mint(identity, issuedAt: issuedAt, into: &token)
        })
        hmacRates.append(measure(seconds: secondsPerRound, batch: 10_000) { count in
            precondition(hmac_reference_loop(key, key.count, signingInput, signingInput.count, count, &mac) == 1)
        })
    }
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
func format(_ rate: Double) -> String {
    let rounded = Int(rate.rounded())
    var digits = String(rounded)
    var i = digits.count - 3
    while i > 0 { digits.insert(",", at: digits.index(digits.startIndex, offsetBy: i)); i -= 3 }
    return digits
}

let mint = median(mintRates), reference = median(hmacRates)
print("token-bench: one thread, \(rounds) interleaved rounds of \(secondsPerRound) s, medians")
print("  token: \(token.count) bytes, signing input \(signingInputLength) bytes")
print("  mint User JWT          \(format(mint)) tokens/s   \(String(format: "%.3f", 1e6 / mint)) µs/token")
print("  reference: HMAC in C  \(format(reference)) MACs/s     \(String(format: "%.3f", 1e6 / reference)) µs/MAC")
print("  mint / HMAC-only       \(String(format: "%.2f", mint / reference))")
