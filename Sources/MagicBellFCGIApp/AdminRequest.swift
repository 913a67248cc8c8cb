import Glibc
import FastCGIServer
import Foundation
import MagicBellAPI

/// Turns an admin request into the one MagicBell call it stands for, or
/// refuses it. Everything forwarded is rebuilt from validated values: the
/// path value re-encoded as one segment, the query re-encoded, the body
/// re-serialized. Nothing here touches the network.
enum AdminRequest {
    /// Larger bodies are refused with 413.
    static let maxBodyBytes = 64 * 1024
    /// Ids (path and cursor values) and names are counted in characters
    /// (Unicode scalars), as JSON Schema's maxLength counts them.
    static let maxIDLength = 255
    static let maxStringLength = 255
    static let maxPageSize = 1000

    /// Which operation the method and path name, with the decoded path value.
    /// `segments` are the matched path's, decoded once by the server (see `Route`).
    static func resolve(method: String, segments: [String]) throws(EndpointError) -> (JwtOperation, String?) {
        guard !segments.contains(where: \.isEmpty) else { throw .notFound } // "//" or a trailing "/"
        switch JwtOperation.match(method: method, segments: segments) {
        case .operation(let operation, let pathValue): return (operation, pathValue)
        case .methodNotAllowed(let allowed): throw .methodNotAllowed(allowed)
        case .notFound: throw .notFound
        }
    }

    /// The validated call for a resolved operation.
    static func build(_ operation: JwtOperation, pathValue: String?, request: some RequestParameters & RequestBodyReader)
        throws(EndpointError) -> APIRequest {
        if let pathValue, let name = operation.pathParameter { try validateID(pathValue, name: name) }
        let query = try parseQuery(request.param("QUERY_STRING").map(Array.init) ?? [], paginated: operation.isPaginated)
        var body: [UInt8]?
        if let kind = operation.body {
            body = try validatedBody(kind, request: request)
        }
        return APIRequest(operation: operation, pathValue: pathValue, query: query, body: body)
    }

    static func validateID(_ value: String, name: String) throws(EndpointError) {
        let bytes = Array(value.utf8)
        guard (1...maxIDLength).contains(value.unicodeScalars.count) else {
            throw .invalid(.invalidID, "\(name) must be 1 to \(maxIDLength) characters.")
        }
        guard value != ".", value != "..", !bytes.contains(UInt8(ascii: "/")),
              !bytes.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw .invalid(.invalidID, "\(name) must not be . or .. and must not contain / or control characters.")
        }
    }

    static func parseQuery(_ raw: [UInt8], paginated: Bool) throws(EndpointError) -> [(name: String, value: String)] {
        var items: [(name: String, value: String)] = []
        for piece in raw.split(separator: UInt8(ascii: "&")) {
            let equals = piece.firstIndex(of: UInt8(ascii: "=")) ?? piece.endIndex
            guard let nameBytes = PercentEncoding.decode(piece[..<equals]),
                  let valueBytes = PercentEncoding.decode(equals < piece.endIndex ? piece[(equals + 1)...] : []),
                  let name = String(validating: nameBytes, as: UTF8.self),
                  let value = String(validating: valueBytes, as: UTF8.self) else {
                throw .invalid(.invalidQuery, "The query has a malformed percent-escape or is not UTF-8.")
            }
            let shown = name.count > 40 ? String(name.prefix(40)) + "…" : name
            guard paginated else {
                throw .invalid(.invalidQuery, "This operation takes no query parameters (got \"\(shown)\").")
            }
            guard Pagination.parameterNames.contains(name) else {
                throw .invalid(.invalidQuery,
                    "Unsupported query parameter \"\(shown)\"; allowed: \(Pagination.parameterNames.joined(separator: ", ")).")
            }
            guard !items.contains(where: { $0.name == name }) else {
                throw .invalid(.invalidQuery, "The query parameter \(name) is given twice.")
            }
            if Pagination.integerParameters.contains(name) {
                guard let number = Int(value), (1...maxPageSize).contains(number) else {
                    throw .invalid(.invalidQuery, "\(name) must be a whole number from 1 to \(maxPageSize).")
                }
            } else {
                guard (1...maxIDLength).contains(value.unicodeScalars.count),
                      !value.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
                    throw .invalid(.invalidQuery, "\(name) must be 1 to \(maxIDLength) characters without control characters.")
                }
            }
            items.append((name, value))
        }
        return items
    }

    // MARK: Bodies

    static func validatedBody(_ kind: JwtOperation.Body, request: some RequestParameters & RequestBodyReader) throws(EndpointError) -> [UInt8] {
        guard let contentType = request.string("CONTENT_TYPE"),
              contentType.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() == "application/json" else {
            throw .unsupportedMediaType
        }
        if let length = request.string("CONTENT_LENGTH").flatMap(Int.init), length > maxBodyBytes {
            throw .bodyTooLarge(maxBodyBytes)
        }
        switch request.readBody(limit: maxBodyBytes) {
        case .complete(let bytes): return try validate(kind, json: bytes)
        case .tooLarge: throw .bodyTooLarge(maxBodyBytes)
        case .incomplete: throw .invalid(.incompleteBody, "The request body ended before its end.")
        }
    }

    /// Validates a create body and returns it re-serialized: exactly the
    /// validated fields, nulls left out (the older API revision has no nulls).
    static func validate(_ kind: JwtOperation.Body, json: [UInt8]) throws(EndpointError) -> [UInt8] {
        guard let parsed = try? JSONSerialization.jsonObject(with: Data(json)),
              let object = parsed as? [String: Any] else {
            throw .invalid(.invalidJSON, "The body must be a JSON object.")
        }
        var out: [String: Any] = [:]
        switch kind {
        case .createProjectToken:
            try rejectUnknown(object, allowed: ["name", "expiry"])
            guard let name = object["name"], !(name is NSNull) else {
                throw .invalid(.invalidBody, "name is required.")
            }
            out["name"] = try string(name, field: "name", minimum: 1)
            if let expiry = try optionalInteger(object["expiry"], field: "expiry") { out["expiry"] = expiry }
        case .createUserToken:
            try rejectUnknown(object, allowed: ["email", "external_id", "name", "expiry"])
            for field in ["email", "external_id", "name"] {
                if let value = object[field], !(value is NSNull) { out[field] = try string(value, field: field, minimum: 0) }
            }
            if let expiry = try optionalInteger(object["expiry"], field: "expiry") { out["expiry"] = expiry }
            let hasIdentity = ["email", "external_id"].contains { !((out[$0] as? String) ?? "").isEmpty }
            guard hasIdentity else {
                throw .invalid(.invalidBody, "email or external_id is required (a non-empty string).")
            }
        }
        let data = (try? JSONSerialization.data(withJSONObject: out, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return Array(data)
    }

    private static func rejectUnknown(_ object: [String: Any], allowed: Set<String>) throws(EndpointError) {
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            let shown = unknown.count > 40 ? String(unknown.prefix(40)) + "…" : unknown
            throw .invalid(.invalidBody, "Unknown field \"\(shown)\"; allowed: \(allowed.sorted().joined(separator: ", ")).")
        }
    }

    private static func string(_ value: Any, field: String, minimum: Int) throws(EndpointError) -> String {
        guard let text = value as? String, !(value is NSNumber) else {
            throw .invalid(.invalidBody, "\(field) must be a string.")
        }
        guard (minimum...maxStringLength).contains(text.unicodeScalars.count) else {
            throw .invalid(.invalidBody, "\(field) must be \(minimum) to \(maxStringLength) characters.")
        }
        // Ids and names end up in dashboards and logs: no control characters (NUL, newlines, ESC).
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw .invalid(.invalidBody, "\(field) must not contain control characters.")
        }
        return text
    }

    /// An integer of at least 1, or null/absent. As in JSON Schema, `1.0`
    /// and `1e3` are integers (forwarded as 1 and 1000); `1.5`, `true` and
    /// `"1"` are not (NSNumber's objCType tells them apart on Linux, where
    /// `is Bool` is true for 0 and 1).
    private static func optionalInteger(_ value: Any?, field: String) throws(EndpointError) -> Int? {
        guard let value, !(value is NSNull) else { return nil }
        let refusal = EndpointError.invalid(.invalidBody, "\(field) must be a whole number of seconds, at least 1, or null.")
        guard let number = value as? NSNumber, !(value is String) else { throw refusal }
        let integer: Int64
        switch String(cString: number.objCType) {
        case "i", "l", "q", "s":
            integer = number.int64Value
        case "d", "f":
            let double = number.doubleValue
            guard double.rounded() == double, abs(double) < 0x1p63 else { throw refusal }
            integer = Int64(double)
        default:
            throw refusal
        }
        guard integer >= 1 else { throw refusal }
        return Int(integer)
    }
}
