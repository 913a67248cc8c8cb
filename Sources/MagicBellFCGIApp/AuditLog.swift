import Logging

/// One log line per admin action, at info: who, what, on which id, with
/// what outcome. Never the project token, the secret or a token value.
struct AuditLog: Sendable {
    let logger: Logger

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
        var actor: Logger.Metadata = [:]
        if let id = entry.actorExternalID { actor["external_id"] = .string(id) }
        if let email = entry.actorEmail { actor["email"] = .string(email) }
        var fields: Logger.Metadata = [
            "event": "admin",
            "method": .string(entry.method),
            "status": .stringConvertible(entry.status),
            "outcome": .string(entry.outcome),
            "duration_ms": .stringConvertible(entry.durationMS),
            "actor": .dictionary(actor),
        ]
        if let requestID = entry.requestID { fields["request_id"] = .string(requestID) }
        if let operation = entry.operation { fields["operation"] = .string(operation) }
        if let target = entry.target { fields["target"] = .string(target) }
        if let error = entry.error { fields["error"] = .string(error) }
        logger.info("admin action", metadata: fields)
    }
}
