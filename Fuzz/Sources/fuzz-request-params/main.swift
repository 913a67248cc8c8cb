import FastCGIServer
import Foundation
import FuzzDriver
import Logging
import MagicBellFCGIApp
import MagicBellJWT

let secret = SecretKey(Array("fuzz-secret".utf8))
let configuration = Configuration(apiKey: "pk_fuzz", secret: secret, tokenTTL: 900)
nonisolated(unsafe) let responder = try! MagicBellResponder(configuration: configuration, logger: Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() },
                                        clock: { 1_700_000_000 })
nonisolated(unsafe) let verifier = try! TokenVerifier(secret: secret)
let names = ["REQUEST_METHOD", "DOCUMENT_URI", "REQUEST_URI", "QUERY_STRING", "MAGICBELL_USER_EMAIL",
             "MAGICBELL_USER_EXTERNAL_ID", "MAGICBELL_ROUTE", "CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_ORIGIN",
             "HTTP_SEC_FETCH_SITE", "HTTP_HOST", "REQUEST_ID"]

/// The whole request → response mapping on FastCGI params built from the
/// input (no project token, so the admin route never reaches the network).
/// The input is a route byte (0: none, 1: token, 2: admin, 3: metrics,
/// else as the params say), then a list of `name-index byte, value \0`.
/// Properties: no crash; the status is one the API documents; the body is
/// JSON, or the metrics text for a metrics answer; a token only ever comes
/// from a location that declares `MAGICBELL_ROUTE token`, verifies, and is
/// for exactly the identity nginx set.
func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0 else { return 0 }
    var params: [String: [UInt8]] = [:]
    let routeByte = data[0]
    var rest = UnsafeBufferPointer(start: data + 1, count: size - 1)[...]
    while let index = rest.first {
        rest = rest.dropFirst()
        let end = rest.firstIndex(of: 0) ?? rest.endIndex
        params[names[Int(index) % names.count]] = Array(rest[..<end])
        rest = rest[(end == rest.endIndex ? end : end + 1)...]
    }
    switch routeByte {
    case 0: params["MAGICBELL_ROUTE"] = nil
    case 1: params["MAGICBELL_ROUTE"] = Array("token".utf8)
    case 2: params["MAGICBELL_ROUTE"] = Array("admin".utf8)
    case 3: params["MAGICBELL_ROUTE"] = Array("metrics".utf8)
    default: break
    }
    let request = ParameterList(bytes: params)
    var response = HTTPResponse()
    responder.handle(request, &response)

    precondition([200, 400, 401, 403, 404, 405, 413, 415, 503].contains(response.status), "status \(response.status)")
    let route = params["MAGICBELL_ROUTE"].map { String(decoding: $0, as: UTF8.self) }
    let json = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
    if response.status == 200 && route != "token" {
        precondition(route == "metrics" || route == "admin", "a 200 from no route")
        let body = String(decoding: response.body, as: UTF8.self)
        // The admin route also serves the console's three files (no project token here, so no call).
        let console = route == "admin" && (body.hasPrefix("<!doctype html>") || body.contains("async function call(")
                                            || body.contains(":focus-visible"))
        precondition(body.contains("magicbell_fcgi_tokens_minted_total") || console, "neither metrics nor the console")
        return 0
    }
    precondition(json != nil, "the body is not a JSON object")
    if response.status == 200 {
        let claims = try! verifier.verify(json!["token"] as! String, now: 1_700_000_001).claims
        for (claim, param) in [("user_email", "MAGICBELL_USER_EMAIL"), ("user_external_id", "MAGICBELL_USER_EXTERNAL_ID")] {
            let sent = params[param] ?? []
            if sent.isEmpty {
                precondition(claims[claim] == .null, "\(claim) without a param")
            } else {
                precondition(claims[claim]?.string.map { Array($0.utf8) } == sent, "\(claim) is not the identity nginx set")
            }
        }
    }
    return 0
}

runFuzzer(fuzz)
