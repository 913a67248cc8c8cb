import Foundation
import MagicBellAPI
import Testing
@testable import MagicBellFCGIApp

/// The admin route's validation, without nginx or a network.
@Suite struct AdminRequestTests {
    /// What a create body is forwarded as: decoded to its model, re-encoded.
    func body<Model: RequestModel>(_ model: Model.Type, _ json: String) throws(EndpointError) -> String {
        String(decoding: try AdminRequest.decode(Model.self, json: Array(json.utf8)).encoded() ?? [], as: UTF8.self)
    }

    func code(_ body: () throws(EndpointError) -> Any) -> String? {
        do { _ = try body(); return nil } catch { return error.code.rawValue }
    }

    @Test func validBodiesAreReserializedWithExactlyTheirFields() throws {
        #expect(try body(CreateProjectTokenRequest.self, #"{"name":"ci"}"#) == #"{"name":"ci"}"#)
        // A repeated key: the first counts (Foundation's JSONDecoder), and only it is forwarded.
        #expect(try body(CreateProjectTokenRequest.self, #"{"expiry":60,"name":"ci","expiry":3600}"#) == #"{"expiry":60,"name":"ci"}"#)
        #expect(try body(CreateProjectTokenRequest.self, #"{"name":"ci","expiry":null}"#) == #"{"name":"ci"}"#)
        // JSON Schema's integers: 1.0 and 1e3 are integers, forwarded as such.
        #expect(try body(CreateProjectTokenRequest.self, #"{"name":"ci","expiry":1e3}"#) == #"{"expiry":1000,"name":"ci"}"#)
        #expect(try body(CreateProjectTokenRequest.self, #"{"name":"ci","expiry":1.0}"#) == #"{"expiry":1,"name":"ci"}"#)
        #expect(try body(CreateUserTokenRequest.self, #"{"email":"a@b.c","external_id":null,"name":null}"#) == #"{"email":"a@b.c"}"#)
        #expect(try body(CreateUserTokenRequest.self, #"{"external_id":"x","email":""}"#) == #"{"email":"","external_id":"x"}"#)
        #expect(try body(CreateProjectTokenRequest.self, #"{"name":"\#(String(repeating: "é", count: 255))"}"#).count > 255)
    }

    @Test func invalidBodiesNameTheField() {
        func message<Model: RequestModel>(_ kind: Model.Type, _ json: String) -> String {
            do { _ = try body(kind, json); return "" } catch { return error.message }
        }
        #expect(message(CreateProjectTokenRequest.self, #"{"name":"x","nme":1}"#).contains("\"nme\""))
        #expect(message(CreateProjectTokenRequest.self, #"{"name":1}"#).hasPrefix("name"))
        #expect(message(CreateProjectTokenRequest.self, #"{"name":"x","expiry":1.5}"#).hasPrefix("expiry"))
        #expect(message(CreateProjectTokenRequest.self, #"{"name":"x","expiry":1e300}"#).hasPrefix("expiry"))
        #expect(message(CreateProjectTokenRequest.self, #"{"name":"x","expiry":"60"}"#).hasPrefix("expiry"))
        #expect(message(CreateProjectTokenRequest.self, #"{"name":"x","expiry":-5}"#).hasPrefix("expiry"))
        #expect(message(CreateProjectTokenRequest.self, #"{"name":"x","expiry":false}"#).hasPrefix("expiry"))
        #expect(message(CreateProjectTokenRequest.self, #"{"name":"x","expiry":1}"#) == "")
        #expect(message(CreateUserTokenRequest.self, #"{"email":"","external_id":null}"#).contains("email or external_id"))
        #expect(message(CreateUserTokenRequest.self, #"{"email":["a"]}"#).hasPrefix("email"))
        #expect(message(CreateUserTokenRequest.self, #"{"external_id":"\#(String(repeating: "x", count: 256))"}"#).hasPrefix("external_id"))
        #expect(code { () throws(EndpointError) in try body(CreateUserTokenRequest.self, "null") } == "invalid_json")
        #expect(code { () throws(EndpointError) in try body(CreateUserTokenRequest.self, "") } == "invalid_json")
    }

    @Test func pathValuesAreCheckedAsTheyArrive() {
        // The segments arrive decoded (by the server, once): "a%2Fb" is those five characters.
        guard case .found(let entry, let value) = RouteTable.app.match(.admin, .get, path: ["jwt", "user", "a%2Fb"]) else {
            Issue.record("GET jwt/user/{user_id} is not routed")
            return
        }
        #expect(entry.name == "fetchUserTokens")
        #expect(value == "a%2Fb")
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
            try Route.of(ParameterList(["REQUEST_URI": target, "DOCUMENT_URI": path, "MAGICBELL_ROUTE": "token"])).route
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
        #expect(try Route.of(admin) == (.admin, ["jwt", "project", "abc"]))
    }

    @Test func theAdminPathComesFromTheMatchedPathDecodedOnce() throws {
        let params = ParameterList(["REQUEST_URI": "/magicbell-admin/jwt/user/a%2541?limit=1", "DOCUMENT_URI": "/magicbell-admin/jwt/user/a%41",
                                    "MAGICBELL_ROUTE": "admin"])
        #expect(try Route.of(params) == (.admin, ["jwt", "user", "a%41"]))
        let mounted = ParameterList(["DOCUMENT_URI": "/api/magicbell-admin/jwt/project", "MAGICBELL_ROUTE": "admin"])
        #expect(try Route.of(mounted) == (.admin, ["jwt", "project"]))
        let console = ParameterList(["DOCUMENT_URI": "/magicbell-admin/", "MAGICBELL_ROUTE": "admin"])
        #expect(try Route.of(console) == (.admin, []))
        let elsewhere = ParameterList(["DOCUMENT_URI": "/admin/jwt/project", "MAGICBELL_ROUTE": "admin"])
        #expect(throws: Route.Refusal.notFound) { try Route.of(elsewhere) }
        let invalid = ParameterList(bytes: ["DOCUMENT_URI": Array("/magicbell-admin/jwt/user/".utf8) + [0xFF], "MAGICBELL_ROUTE": Array("admin".utf8)])
        #expect(throws: Route.Refusal.invalidPath("the path is not valid UTF-8")) { try Route.of(invalid) }
    }

    @Test func emptySegmentsAreNotFound() {
        for segments in [["jwt", "project", ""], ["jwt", "", "project"], [""], ["", "metrics"]] {
            guard case .notFound = RouteTable.app.match(.admin, .get, path: segments) else {
                Issue.record("\(segments) is routed")
                continue
            }
        }
    }
}

/// The route table: one entry per answer, matched on the checked route, method and path.
@Suite struct RouteTableTests {
    func matched(_ route: Route, _ method: HTTPMethod, _ path: [String] = []) -> String {
        switch RouteTable.app.match(route, method, path: path) {
        case .found(let entry, let value): return entry.name + (value.map { "(\($0))" } ?? "")
        case .methodNotAllowed(let allowed, let name): return "405 " + allowed.joined(separator: ", ") + (name.map { " (\($0))" } ?? "")
        case .notFound: return "404"
        }
    }

    @Test func theSharedUserPathDispatchesOnItsMethod() {
        #expect(matched(.admin, .get, ["jwt", "user", "u1"]) == "fetchUserTokens(u1)")
        #expect(matched(.admin, .delete, ["jwt", "user", "t1"]) == "discardUserJwt(t1)")
        #expect(matched(.admin, .get, ["jwt", "project"]) == "fetchProjectTokens")
        #expect(matched(.admin, .post, ["jwt", "user"]) == "createUserJwt")
        #expect(matched(.admin, .get, []) == "console")
        #expect(matched(.admin, .get, ["console.js"]) == "console")
        #expect(matched(.admin, .get, ["metrics"]) == "metrics")
    }

    @Test func wrongMethodsListWhatThePathTakesAndUnknownPathsAreNotFound() {
        #expect(matched(.admin, .other("PUT"), ["jwt", "user", "x"]) == "405 DELETE, GET")
        #expect(matched(.admin, .get, ["jwt", "user"]) == "405 POST (createUserJwt)")
        #expect(matched(.admin, .post, ["jwt", "project", "x"]) == "405 DELETE (discardProjectJwt)")
        #expect(matched(.admin, .other("PATCH"), ["jwt", "project"]) == "405 GET, POST")
        #expect(matched(.admin, .post, ["metrics"]) == "405 GET (metrics)")
        #expect(matched(.admin, .delete, []) == "405 GET (console)")
        #expect(matched(.admin, .get, ["jwt"]) == "404")
        #expect(matched(.admin, .get, ["jwt", "team"]) == "404")
        #expect(matched(.admin, .get, ["jwt", "user", "a", "b"]) == "404")
        #expect(matched(.token, .delete) == "405 GET, POST (token)")
        #expect(matched(.health, .post) == "405 GET, HEAD (health)")
        // Routes that act on no path ignore it: the location chose them.
        #expect(matched(.token, .get, ["anything"]) == "token")
        #expect(matched(.metrics, .get, ["jwt", "project"]) == "metrics")
    }

    @Test func everyOperationIsOneEntryOfItsOwn() {
        let forwards = RouteTable.app[.admin].entries.compactMap { entry -> JwtOperation? in
            guard case .forward(let forward) = entry.handler else { return nil }
            return forward.operation
        }
        // MagicBell's six, each once; an operation added later adds a line, not a failure here.
        #expect(Set(forwards.map(\.name)).isSuperset(of: ["fetchProjectTokens", "createProjectJwt", "discardProjectJwt",
                                                         "createUserJwt", "discardUserJwt", "fetchUserTokens"]))
        #expect(Set(forwards.map { "\($0.method) \($0.path)" }).count == forwards.count)
        #expect(forwards.filter(\.isPaginated).map(\.name).sorted() == ["fetchProjectTokens", "fetchUserTokens"])
        #expect(RouteTable.app[.admin].blocks && !RouteTable.app[.token].blocks)
    }
}
