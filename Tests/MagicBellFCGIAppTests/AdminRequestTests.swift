import Foundation
import MagicBellAPI
import Testing
@testable import MagicBellFCGIApp

/// The admin route's validation, without nginx or a network.
@Suite struct AdminRequestTests {
    func body(_ kind: JwtOperation.Body, _ json: String) throws(EndpointError) -> String {
        String(decoding: try AdminRequest.validate(kind, json: Array(json.utf8)), as: UTF8.self)
    }

    func code(_ body: () throws(EndpointError) -> Any) -> String? {
        do { _ = try body(); return nil } catch { return error.code.rawValue }
    }

    @Test func validBodiesAreReserializedWithExactlyTheirFields() throws {
        #expect(try body(.createProjectToken, #"{"name":"ci"}"#) == #"{"name":"ci"}"#)
        // A repeated key: the first counts (Foundation's JSONDecoder), and only it is forwarded.
        #expect(try body(.createProjectToken, #"{"expiry":60,"name":"ci","expiry":3600}"#) == #"{"expiry":60,"name":"ci"}"#)
        #expect(try body(.createProjectToken, #"{"name":"ci","expiry":null}"#) == #"{"name":"ci"}"#)
        // JSON Schema's integers: 1.0 and 1e3 are integers, forwarded as such.
        #expect(try body(.createProjectToken, #"{"name":"ci","expiry":1e3}"#) == #"{"expiry":1000,"name":"ci"}"#)
        #expect(try body(.createProjectToken, #"{"name":"ci","expiry":1.0}"#) == #"{"expiry":1,"name":"ci"}"#)
        #expect(try body(.createUserToken, #"{"email":"a@b.c","external_id":null,"name":null}"#) == #"{"email":"a@b.c"}"#)
        #expect(try body(.createUserToken, #"{"external_id":"x","email":""}"#) == #"{"email":"","external_id":"x"}"#)
        #expect(try body(.createProjectToken, #"{"name":"\#(String(repeating: "é", count: 255))"}"#).count > 255)
    }

    @Test func invalidBodiesNameTheField() {
        func message(_ kind: JwtOperation.Body, _ json: String) -> String {
            do { _ = try body(kind, json); return "" } catch { return error.message }
        }
        #expect(message(.createProjectToken, #"{"name":"x","nme":1}"#).contains("\"nme\""))
        #expect(message(.createProjectToken, #"{"name":1}"#).hasPrefix("name"))
        #expect(message(.createProjectToken, #"{"name":"x","expiry":1.5}"#).hasPrefix("expiry"))
        #expect(message(.createProjectToken, #"{"name":"x","expiry":1e300}"#).hasPrefix("expiry"))
        #expect(message(.createProjectToken, #"{"name":"x","expiry":"60"}"#).hasPrefix("expiry"))
        #expect(message(.createProjectToken, #"{"name":"x","expiry":-5}"#).hasPrefix("expiry"))
        #expect(message(.createProjectToken, #"{"name":"x","expiry":false}"#).hasPrefix("expiry"))
        #expect(message(.createProjectToken, #"{"name":"x","expiry":1}"#) == "")
        #expect(message(.createUserToken, #"{"email":"","external_id":null}"#).contains("email or external_id"))
        #expect(message(.createUserToken, #"{"email":["a"]}"#).hasPrefix("email"))
        #expect(message(.createUserToken, #"{"external_id":"\#(String(repeating: "x", count: 256))"}"#).hasPrefix("external_id"))
        #expect(code { () throws(EndpointError) in try body(.createUserToken, "null") } == "invalid_json")
        #expect(code { () throws(EndpointError) in try body(.createUserToken, "") } == "invalid_json")
    }

    @Test func pathValuesAreCheckedAsTheyArrive() {
        // The segments arrive decoded (by the server, once): "a%2Fb" is those five characters.
        let resolved = try? AdminRequest.resolve(method: "GET", segments: ["jwt", "user", "a%2Fb"])
        #expect(resolved?.0 == .fetchUserTokens)
        #expect(resolved?.1 == "a%2Fb")
        #expect(code { () throws(EndpointError) in try AdminRequest.validateID("a/b", name: "token_id") } == "invalid_id")
        #expect(code { () throws(EndpointError) in try AdminRequest.validateID(".", name: "token_id") } == "invalid_id")
        #expect(code { () throws(EndpointError) in try AdminRequest.validateID("a\u{7F}", name: "token_id") } == "invalid_id")
        // Counted in characters, as JSON Schema's maxLength: 255 × é (510 bytes) is fine, 256 are not.
        #expect(code { () throws(EndpointError) in try AdminRequest.validateID(String(repeating: "é", count: 255), name: "token_id") } == nil)
        #expect(code { () throws(EndpointError) in try AdminRequest.validateID(String(repeating: "é", count: 256), name: "token_id") } == "invalid_id")
        #expect(code { () throws(EndpointError) in try AdminRequest.validateID("...", name: "token_id") } == nil)
    }

    @Test func queriesAreFilteredAndReencoded() throws {
        let items = try AdminRequest.parseQuery(Array("page%5Bafter%5D=c+d&limit=5&starting_after=a%26b&".utf8), paginated: true).queryItems
        #expect(items.map { "\($0.name)=\($0.value)" } == ["limit=5", "starting_after=a&b", "page[after]=c+d"])
        #expect(code { () throws(EndpointError) in try AdminRequest.parseQuery(Array("limit".utf8), paginated: true) } == "invalid_query")
        #expect(code { () throws(EndpointError) in try AdminRequest.parseQuery(Array("starting_after=".utf8), paginated: true) } == "invalid_query")
        #expect(code { () throws(EndpointError) in try AdminRequest.parseQuery(Array("limit=1001".utf8), paginated: true) } == "invalid_query")
        #expect(code { () throws(EndpointError) in try AdminRequest.parseQuery(Array("LIMIT=5".utf8), paginated: true) } == "invalid_query")
        #expect(code { () throws(EndpointError) in try AdminRequest.parseQuery(Array("limit=5".utf8), paginated: false) } == "invalid_query")
        #expect(code { () throws(EndpointError) in try AdminRequest.parseQuery(Array("limit=5&limit=6".utf8), paginated: true) } == "invalid_query")
        #expect(try AdminRequest.parseQuery([], paginated: false) == Pagination())
    }

    /// RFC 9112 §3.2.2: an absolute-form target is compared from its path
    /// on; everything the origin-form check refuses stays refused.
    @Test func anAbsoluteFormTargetIsComparedFromItsPath() throws {
        func route(_ target: String, _ path: String = "/magicbell-token") throws(Route.Refusal) -> Route {
            try Route.of(ParameterList(["REQUEST_URI": target, "DOCUMENT_URI": path, "MAGICBELL_ROUTE": "token"]))
        }
        for target in ["http://example.com/magicbell-token", "HTTPS://example.com:8443/magicbell-token?x=1",
                       "http://[::1]:80/magicbell-%74oken", "/magicbell-token"] {
            #expect(try route(target) == .token, "\(target)")
        }
        for target in ["http://example.com//magicbell-token", "http://example.com/magicbell-token/", "http://example.com",
                       "http://example.com?/magicbell-token", "http:///magicbell-token", "http://user@example.com/magicbell-token",
                       "ftp://example.com/magicbell-token", "http:/magicbell-token", "http://example.com/x#/magicbell-token",
                       "magicbell-token", "http://example.com/magicbell-token%"] {
            #expect(throws: (any Error).self, "\(target)") { try route(target) }
        }
        let admin = ParameterList(["REQUEST_URI": "http://h/magicbell-admin/jwt/project/abc?limit=1",
                                   "DOCUMENT_URI": "/magicbell-admin/jwt/project/abc", "MAGICBELL_ROUTE": "admin"])
        #expect(try Route.of(admin) == .admin(path: ["jwt", "project", "abc"]))
    }

    @Test func theAdminPathComesFromTheMatchedPathDecodedOnce() throws {
        let params = ParameterList(["REQUEST_URI": "/magicbell-admin/jwt/user/a%2541?limit=1", "DOCUMENT_URI": "/magicbell-admin/jwt/user/a%41",
                                    "MAGICBELL_ROUTE": "admin"])
        #expect(try Route.of(params) == .admin(path: ["jwt", "user", "a%41"]))
        let mounted = ParameterList(["DOCUMENT_URI": "/api/magicbell-admin/jwt/project", "MAGICBELL_ROUTE": "admin"])
        #expect(try Route.of(mounted) == .admin(path: ["jwt", "project"]))
        let elsewhere = ParameterList(["DOCUMENT_URI": "/admin/jwt/project", "MAGICBELL_ROUTE": "admin"])
        #expect(throws: Route.Refusal.notFound) { try Route.of(elsewhere) }
        let invalid = ParameterList(bytes: ["DOCUMENT_URI": Array("/magicbell-admin/jwt/user/".utf8) + [0xFF], "MAGICBELL_ROUTE": Array("admin".utf8)])
        #expect(throws: Route.Refusal.invalidPath("the path is not valid UTF-8")) { try Route.of(invalid) }
    }

    @Test func emptySegmentsAreNotFound() {
        for segments in [["jwt", "project", ""], ["jwt", "", "project"], [""]] {
            #expect(code { () throws(EndpointError) in _ = try AdminRequest.resolve(method: "GET", segments: segments) } == "not_found")
        }
    }
}
