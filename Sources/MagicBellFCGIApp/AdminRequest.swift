import Glibc
import FastCGIServer
import FoundationEssentials
import MagicBellAPI

/// The rules an admin request is checked by before its call is built
/// (`JwtEndpoint.forward`): everything forwarded is rebuilt from validated
/// values: the path value re-encoded as one segment, the query re-encoded,
/// the body re-serialized from its model. Nothing here touches the network.
enum AdminRequest {
    /// Larger bodies are refused with 413.
    static let maxBodyBytes = 64 * 1024
    /// Ids (path and cursor values) and names are counted in characters
    /// (Unicode scalars), as JSON Schema's maxLength counts them.
    static let maxIDLength = 255
    static let maxPageSize = 1000

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

    /// The pagination the query asks for: known names only, each once,
    /// values checked. The client re-encodes it.
    static func parseQuery(_ raw: [UInt8], paginated: Bool) throws(EndpointError) -> Pagination {
        var page = Pagination()
        var seen: Set<String> = []
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
            guard seen.insert(name).inserted else {
                throw .invalid(.invalidQuery, "The query parameter \(name) is given twice.")
            }
            if Pagination.integerParameters.contains(name) {
                guard let number = Int(value), (1...maxPageSize).contains(number) else {
                    throw .invalid(.invalidQuery, "\(name) must be a whole number from 1 to \(maxPageSize).")
                }
                if name == "limit" { page.limit = number } else { page.pageSize = number }
            } else {
                guard (1...maxIDLength).contains(value.unicodeScalars.count),
                      !value.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
                    throw .invalid(.invalidQuery, "\(name) must be 1 to \(maxIDLength) characters without control characters.")
                }
                switch name {
                case "starting_after": page.startingAfter = value
                case "ending_before": page.endingBefore = value
                case "page[after]": page.pageAfter = value
                default: page.pageBefore = value
                }
            }
        }
        return page
    }

    // MARK: Bodies

    /// The body of a create, read within the limit.
    static func body(_ request: some RequestParameters & RequestBodyReader) throws(EndpointError) -> [UInt8] {
        guard let contentType = request.string("CONTENT_TYPE"),
              contentType.split(separator: ";").first?.trimmingWhitespace.lowercased() == "application/json" else {
            throw .unsupportedMediaType
        }
        if let length = request.string("CONTENT_LENGTH").flatMap(Int.init), length > maxBodyBytes {
            throw .bodyTooLarge(maxBodyBytes)
        }
        switch request.readBody(limit: maxBodyBytes) {
        case .complete(let bytes): return bytes
        case .tooLarge: throw .bodyTooLarge(maxBodyBytes)
        case .incomplete: throw .invalid(.incompleteBody, "The request body ended before its end.")
        }
    }

    /// A create body as its model, which validates itself (MagicBellAPI's
    /// `init(from:)`): one schema for this route and the library.
    static func decode<Body: Decodable>(_ type: Body.Type, json: [UInt8]) throws(EndpointError) -> Body {
        do {
            return try JSONDecoder().decode(Body.self, from: Data(json))
        } catch let invalid as InvalidRequestBody {
            throw .invalid(.invalidBody, invalid.message)
        } catch {
            throw .invalid(.invalidJSON, "The body must be a JSON object.")
        }
    }
}
