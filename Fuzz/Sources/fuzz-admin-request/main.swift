import FastCGIServer
import Foundation
import FuzzDriver
import MagicBellAPI
@testable import MagicBellFCGIApp

let client = JWTServiceClient(projectToken: "pt_fuzz", baseURL: URL(string: "https://api.magicbell.com/v2/")!)
let methods = ["GET", "POST", "DELETE", "PUT", "get"]

/// The admin route's parsers: path matching, query filtering, body
/// validation. The input is `method byte, path \0 query \0 body`; the path
/// is what follows `/magicbell-admin/` in the matched (decoded) path.
/// Properties: no crash; whatever is accepted is forwarded as exactly one
/// path segment that decodes back to the id, a query of pagination names
/// only, and a body that validates to itself (re-serializing is stable).
func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    guard size >= 1 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let method = methods[Int(input[0]) % methods.count]
    let parts = input.dropFirst().split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
    let path = Array(parts.first ?? [])
    let query = parts.count > 1 ? Array(parts[1]) : []
    let body = parts.count > 2 ? Array(parts[2]) : []

    guard let text = String(validating: path, as: UTF8.self) else { return 0 } // Route refuses it
    let segments = text.isEmpty ? [] : text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    let httpMethod = HTTPMethod(method)
    guard case .found(let entry, let pathValue) = RouteTable.app.match(.admin, httpMethod, path: segments),
          case .forward(let forward) = entry.handler else { return 0 }
    let operation = forward.operation
    let params = ParameterList(bytes: ["QUERY_STRING": query, "CONTENT_TYPE": Array("application/json".utf8),
                                       "REQUEST_METHOD": Array(method.utf8)], body: body)
    let request = MagicBellRequest(params: params, route: .admin, method: httpMethod, path: segments)
    let built: APIRequest
    do { built = try forward.apiRequest(request, pathValue: pathValue) } catch { return 0 }

    guard let url = client.url(for: built) else { preconditionFailure("no URL for an accepted call") }
    if let pathValue {
        precondition(url.path.hasSuffix(pathValue) || url.lastPathComponent == pathValue,
                     "the path value did not survive as one segment")
        let encoded = url.absoluteString.split(separator: "?")[0].split(separator: "/").last.map(String.init) ?? ""
        precondition(encoded.removingPercentEncoding == pathValue, "path value re-encoding is not exact")
    }
    let allowed = Set(Pagination.parameterNames)
    for item in built.query { precondition(allowed.contains(item.name), "forwarded query name \(item.name)") }
    if let model = operation.body, let forwarded = built.body {
        precondition(reencoded(model, forwarded) == forwarded, "re-validation changed the body")
    }
    return 0
}

/// The forwarded body decoded by its model and encoded again.
func reencoded<Model: RequestModel>(_ model: Model.Type, _ json: [UInt8]) -> [UInt8]? {
    (try? AdminRequest.decode(Model.self, json: json))?.encoded()
}

runFuzzer(fuzz)
