import Foundation
@testable import MagicBellJWT
import TestSupport

enum Fixture {
    static let secret = SecretKey(Array("test-secret-key-do-not-use".utf8))
    static let apiKey = "pk_test_1234567890"

    static func minter(ttl: Int = 3600) throws -> UserTokenMinter {
        try UserTokenMinter(apiKey: apiKey, secret: secret, ttl: ttl)
    }

    /// The decoded payload JSON bytes of a token.
    static func payloadBytes(_ token: String) -> [UInt8]? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        return Base64URL.decode(Array(parts[1].utf8))
    }

    static func claims(_ token: String) -> [String: Any]? {
        payloadBytes(token).flatMap { try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any] }
    }

    /// Runs a program and returns its standard output (trimmed); nil if it failed.
    static func run(_ arguments: [String], stdin: String? = nil) throws -> String? {
        let result = try runProcess(arguments[0], Array(arguments.dropFirst()), stdin: stdin)
        return result.status == 0 ? result.output : nil
    }
}
