#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// One JSON line per admin action: who, what, on which id, with what
/// outcome. Never the project token, the secret or a token value.
struct AuditLog: Sendable {
    let sink: @Sendable (String) -> Void

    struct Entry {
        var requestID: String?
        var actorExternalID: String?
        var actorEmail: String?
        var method: String
        var operation: String?
        var target: String?
        var status: Int
        var outcome: String
        var error: String?
        var durationMS: Double
    }

    func record(_ entry: Entry) {
        var fields: [String: Any] = [
            "time": ISO8601DateFormatter().string(from: Date()),
            "event": "admin",
            "method": entry.method,
            "status": entry.status,
            "outcome": entry.outcome,
            "duration_ms": (entry.durationMS * 10).rounded() / 10,
            "actor": ["external_id": Self.orNull(entry.actorExternalID), "email": Self.orNull(entry.actorEmail)],
            "request_id": Self.orNull(entry.requestID),
            "operation": Self.orNull(entry.operation),
            "target": Self.orNull(entry.target),
        ]
        if let error = entry.error { fields["error"] = error }
        guard let data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            return
        }
        sink(String(decoding: data, as: UTF8.self))
    }

    private static func orNull(_ value: String?) -> Any { value.map { $0 as Any } ?? NSNull() }

    /// Each line in one write(2), so lines from concurrent workers never interleave.
    static let standardError: @Sendable (String) -> Void = { line in
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        bytes.withUnsafeBytes { _ = write(2, $0.baseAddress, $0.count) }
    }
}
