import CLibCrypto

/// HMAC-SHA256 with the key prepared once (OpenSSL's libcrypto; see the
/// CLibCrypto shim for which of its APIs, and why).
///
/// Not thread-safe: give each worker thread its own instance, so the token
/// path shares no lock and no mutable state across workers.
public final class HMACSHA256 {
    public static let outputSize = 32

    public struct KeyError: Error, CustomStringConvertible {
        public var description: String { "OpenSSL could not create an HMAC-SHA256 context" }
    }

    private let ctx: UnsafeMutablePointer<mbf_hmac>

    public init(key: SecretKey) throws {
        let made = key.bytes.withUnsafeBufferPointer { mbf_hmac_sha256_new($0.baseAddress, $0.count) }
        guard let made else { throw KeyError() }
        ctx = made
    }

    deinit { mbf_hmac_sha256_free(ctx) }

    /// The MAC of `message`, written to the 32 bytes at `out` (the token
    /// path writes it straight into the token; a package helper, not API).
    package func authenticate(_ message: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>) {
        let ok = mbf_hmac_sha256(ctx, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count, out)
        // Only an out-of-memory inside OpenSSL gets here; a token signed with
        // garbage must never be handed out.
        precondition(ok == 1, "HMAC-SHA256 failed inside OpenSSL")
    }

    public func authenticate<Bytes: Collection>(_ message: Bytes) -> [UInt8] where Bytes.Element == UInt8 {
        var mac = [UInt8](repeating: 0, count: Self.outputSize)
        Array(message).withUnsafeBytes { m in
            mac.withUnsafeMutableBufferPointer { authenticate(m, into: $0.baseAddress!) }
        }
        return mac
    }

    /// Constant-time equality of two byte strings of the same length
    /// (the length itself is not secret: a MAC is always 32 bytes).
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { pa in
            b.withUnsafeBytes { pb in
                mbf_memcmp_consttime(pa.baseAddress, pb.baseAddress, a.count) == 0
            }
        }
    }
}
