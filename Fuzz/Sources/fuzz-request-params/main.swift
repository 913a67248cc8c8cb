import FastCGIServer
import Foundation
import FuzzDriver
import Logging
import MagicBellFCGIApp
import MagicBellJWT

let secret = SecretKey(Array("fuzz-secret".utf8))
let configuration = Configuration(apiKey: "pk_fuzz", secret: secret, tokenTTL: 900)
let responder = try! MagicBellResponder(configuration: configuration, logger: Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() },
                                        clock: { 1_700_000_000 })
let verifier = try! TokenVerifier(secret: secret)
let names = ["REQUEST_METHOD", "DOCUMENT_URI", "REQUEST_URI", "QUERY_STRING", "MAGICBELL_USER_EMAIL",
             "MAGICBELL_USER_EXTERNAL_ID", "MAGICBELL_ADMIN", "CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_ORIGIN",
             "HTTP_SEC_FETCH_SITE", "HTTP_HOST", "REQUEST_ID"]

/// The whole request → response mapping on FastCGI params built from the
/// input (no project token, so the admin route never reaches the network).
/// The input is a list of `name-index byte, value \0`. Properties: no
/// crash; the status is one the API documents; the body is JSON; every 200
/// carries a token that verifies and is for exactly the identity nginx set.
func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    var params: [String: [UInt8]] = [:]
    var rest = UnsafeBufferPointer(start: data, count: size)[...]
    while let index = rest.first {
        rest = rest.dropFirst()
        let end = rest.firstIndex(of: 0) ?? rest.endIndex
        params[names[Int(index) % names.count]] = Array(rest[..<end])
        rest = rest[(end == rest.endIndex ? end : end + 1)...]
    }
    let request = ParameterList(bytes: params)
    var response = HTTPResponse()
    responder.handle(request, &response)

    precondition([200, 400, 401, 403, 404, 405, 413, 415, 503].contains(response.status), "status \(response.status)")
    let json = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]
    precondition(json != nil, "the body is not a JSON object")
    if response.status == 200 {
        let claims = try! verifier.verify(json!["token"] as! String, now: 1_700_000_001).claims
        for (claim, param) in [("user_email", "MAGICBELL_USER_EMAIL"), ("user_external_id", "MAGICBELL_USER_EXTERNAL_ID")] {
            let sent = params[param] ?? []
            if sent.isEmpty {
                precondition(claims[claim] is NSNull, "\(claim) without a param")
            } else {
                precondition((claims[claim] as? String).map { Array($0.utf8) } == sent, "\(claim) is not the identity nginx set")
            }
        }
    }
    return 0
}

runFuzzer(fuzz)
