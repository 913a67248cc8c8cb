import Glibc
import Foundation
import Testing
import TestSupport

/// Hostile HTTP through real nginx and the project's snippets: long and
/// many query params, bodies at and over the limits, invalid UTF-8 and NUL
/// bytes in each field, methods in odd case. Every answer is a 4xx (or the
/// ordinary success), never a 5xx; every answer from the responder or the
/// admin snippet is the JSON error shape.
@Suite(.serialized) struct HostileHTTPTests {
    struct Case: Sendable {
        let name: String
        let raw: [UInt8]
        let status: Int
        /// The error code of the JSON body; nil for a success, or for the few
        /// requests nginx refuses itself before any location (HTML body).
        let code: String?
    }

    static let demo = "Authorization: Basic " + Data("demo:demo".utf8).base64EncodedString()
    static let admin = "Authorization: Basic " + Data("admin:admin".utf8).base64EncodedString()

    /// A request with `target` as raw bytes (anything may be in it).
    static func raw(_ method: String, _ target: [UInt8], auth: String, headers: [[UInt8]] = [], body: [UInt8]? = nil) -> [UInt8] {
        var out = Array("\(method) ".utf8) + target + Array(" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\(auth)\r\n".utf8)
        for header in headers { out += header + [13, 10] }
        if let body { out += Array("Content-Type: application/json\r\nContent-Length: \(body.count)\r\n".utf8) }
        out += [13, 10]
        return out + (body ?? [])
    }
    static func raw(_ method: String, _ target: String, auth: String, headers: [[UInt8]] = [], body: [UInt8]? = nil) -> [UInt8] {
        raw(method, Array(target.utf8), auth: auth, headers: headers, body: body)
    }

    /// A create-user body of exactly `size` bytes (valid JSON, padded with spaces).
    static func userBody(size: Int) -> [UInt8] {
        let json = Array(#"{"external_id":"u1","name":"n"}"#.utf8)
        return json.dropLast() + [UInt8](repeating: 32, count: size - json.count) + [UInt8(ascii: "}")]
    }

    static let cases: [Case] = {
        let manyParams = (0..<500).map { "p\($0)=\($0)" }.joined(separator: "&") // 4.4 kB
        let tooManyParams = (0..<1000).map { "p\($0)=\($0)" }.joined(separator: "&") // 8.9 kB: over nginx's 8 kB line
        let id255 = String(repeating: "i", count: 255), id256 = String(repeating: "i", count: 256)
        return [
            // The token endpoint: it reads no query, header or body, only nginx's params.
            Case(name: "token: a 6,000-byte query string", raw: raw("GET", "/magicbell-token?q=" + String(repeating: "a", count: 6000), auth: demo),
                 status: 200, code: nil),
            Case(name: "token: 500 query params", raw: raw("GET", "/magicbell-token?" + manyParams, auth: demo), status: 200, code: nil),
            Case(name: "token: 1,000 query params (nginx refuses the 8.9 kB line)",
                 raw: raw("GET", "/magicbell-token?" + tooManyParams, auth: demo), status: 414, code: nil),
            Case(name: "token: %FF%00 in the query", raw: raw("GET", "/magicbell-token?x=%FF%00%C0", auth: demo), status: 200, code: nil),
            Case(name: "token: invalid UTF-8 in a header value",
                 raw: raw("GET", "/magicbell-token", auth: demo, headers: [Array("User-Agent: ".utf8) + [0xFF, 0xFE, 0xC0]]),
                 status: 200, code: nil),
            Case(name: "token: method DELETE", raw: raw("DELETE", "/magicbell-token", auth: demo), status: 405, code: "method_not_allowed"),
            Case(name: "token: method PROPFIND", raw: raw("PROPFIND", "/magicbell-token", auth: demo), status: 405, code: "method_not_allowed"),
            Case(name: "token: method GeT (nginx refuses it)", raw: raw("GeT", "/magicbell-token", auth: demo), status: 400, code: nil),
            Case(name: "token: method get (nginx refuses it)", raw: raw("get", "/magicbell-token", auth: demo), status: 400, code: nil),
            Case(name: "token: a NUL byte in a header (nginx refuses it)",
                 raw: raw("GET", "/magicbell-token", auth: demo, headers: [Array("X-A: a".utf8) + [0] + Array("b".utf8)]),
                 status: 400, code: nil),

            // The admin route: everything it forwards is validated.
            Case(name: "admin: a query value of 255 characters", raw: raw("GET", "/magicbell-admin/jwt/project?starting_after=\(id255)", auth: admin),
                 status: 200, code: nil),
            Case(name: "admin: a query value of 256 characters", raw: raw("GET", "/magicbell-admin/jwt/project?starting_after=\(id256)", auth: admin),
                 status: 400, code: "invalid_query"),
            Case(name: "admin: 500 query params", raw: raw("GET", "/magicbell-admin/jwt/project?" + manyParams, auth: admin),
                 status: 400, code: "invalid_query"),
            Case(name: "admin: %FF in a query value", raw: raw("GET", "/magicbell-admin/jwt/project?starting_after=%FF", auth: admin),
                 status: 400, code: "invalid_query"),
            Case(name: "admin: %00 in a query value", raw: raw("GET", "/magicbell-admin/jwt/project?starting_after=a%00b", auth: admin),
                 status: 400, code: "invalid_query"),
            Case(name: "admin: %FF%FE as a user id", raw: raw("GET", "/magicbell-admin/jwt/user/%FF%FE", auth: admin),
                 status: 400, code: "invalid_path"),
            Case(name: "admin: %00 in a user id (nginx refuses it)", raw: raw("GET", "/magicbell-admin/jwt/user/a%00b", auth: admin),
                 status: 400, code: nil),
            Case(name: "admin: raw 0xFF bytes in the path", raw: raw("GET", Array("/magicbell-admin/jwt/user/".utf8) + [0xFF, 0xFE], auth: admin),
                 status: 400, code: "invalid_path"),
            Case(name: "admin: a 5,000-byte user id", raw: raw("GET", "/magicbell-admin/jwt/user/" + String(repeating: "u", count: 5000), auth: admin),
                 status: 400, code: "invalid_id"),
            Case(name: "admin: a body of exactly 65,536 bytes", raw: raw("POST", "/magicbell-admin/jwt/user", auth: admin, body: userBody(size: 65536)),
                 status: 201, code: nil),
            Case(name: "admin: a body of 65,537 bytes", raw: raw("POST", "/magicbell-admin/jwt/user", auth: admin, body: userBody(size: 65537)),
                 status: 413, code: "body_too_large"),
            Case(name: "admin: a body of 200 kB (nginx's limit)", raw: raw("POST", "/magicbell-admin/jwt/user", auth: admin, body: userBody(size: 200_000)),
                 status: 413, code: "body_too_large"),
            Case(name: "admin: invalid UTF-8 in the body", raw: raw("POST", "/magicbell-admin/jwt/user", auth: admin,
                                                                     body: Array(#"{"external_id":""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8)),
                 status: 400, code: "invalid_json"),
            Case(name: "admin: a raw NUL in the body", raw: raw("POST", "/magicbell-admin/jwt/user", auth: admin,
                                                                 body: Array(#"{"external_id":"a"#.utf8) + [0] + Array(#"b"}"#.utf8)),
                 status: 400, code: "invalid_json"),
            Case(name: "admin: an escaped NUL in an id", raw: raw("POST", "/magicbell-admin/jwt/user", auth: admin,
                                                                   body: Array(#"{"external_id":"a\u0000b"}"#.utf8)),
                 status: 400, code: "invalid_body"),
            Case(name: "admin: a body that is not JSON", raw: raw("POST", "/magicbell-admin/jwt/project", auth: admin, body: Array("name=x".utf8)),
                 status: 400, code: "invalid_json"),
            Case(name: "admin: method PATCH", raw: raw("PATCH", "/magicbell-admin/jwt/project", auth: admin), status: 405, code: "method_not_allowed"),
            Case(name: "admin: method Post (nginx refuses it)", raw: raw("Post", "/magicbell-admin/jwt/project", auth: admin), status: 400, code: nil),
        ]
    }()

    /// One stack for all cases (a static one would outlive the test run).
    @Test func everyHostileRequestGetsAClear4xx() throws {
        let stack = try AdminRouteTests.stack()
        for hostile in Self.cases {
            let answer = try HTTP.exchange(port: stack.nginx.port, hostile.raw)
            #expect(answer.status == hostile.status, "\(hostile.name): \(answer.text.prefix(300))")
            if let code = hostile.code {
                #expect(answer.header("Content-Type") == "application/json", "\(hostile.name)")
                let error = answer.json?["error"] as? [String: Any]
                #expect(error?["code"] as? String == code, "\(hostile.name): \(answer.text.prefix(300))")
                #expect((error?["message"] as? String)?.isEmpty == false, "\(hostile.name)")
            } else if answer.status < 300 {
                #expect(answer.json != nil, "\(hostile.name): a success is JSON too")
            }
            #expect(stack.responder.child.isRunning, "\(hostile.name)")
        }
        #expect(!stack.responder.child.stderr.contains("\"status\":5"), "no 5xx in the audit lines")
    }
}
