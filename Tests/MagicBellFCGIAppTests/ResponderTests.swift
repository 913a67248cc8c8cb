import FastCGIServer
import Foundation
import Logging
import MagicBellJWT
import Testing
@testable import MagicBellFCGIApp

@Suite struct ResponderTests {
    static let now = 1_700_000_000
    let responder: MagicBellResponder

    init() throws {
        let config = Configuration(apiKey: "pk_test_1", secret: SecretKey(Array("unit-secret".utf8)), tokenTTL: 900)
        responder = try MagicBellResponder(configuration: config, logger: Logger(label: "test"), clock: { Self.now })
    }

    struct Answer {
        let status: Int
        let head: String
        let json: [String: Any]
        func header(_ name: String) -> String? {
            for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix(name.lowercased() + ": ") {
                return String(line.dropFirst(name.count + 2))
            }
            return nil
        }
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    }

    func ask(_ params: [String: String]) -> Answer { ask(ParameterList(params)) }

    func ask(_ params: ParameterList) -> Answer {
        var response = HTTPResponse()
        responder.handle(params, &response)
        var wire: [UInt8] = []
        response.serialize(into: &wire)
        let text = String(decoding: wire, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        let json = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
        return Answer(status: response.status, head: parts[0], json: json)
    }

    static func request(_ extra: [String: String] = [:]) -> [String: String] {
        ["REQUEST_METHOD": "GET", "DOCUMENT_URI": "/magicbell-token", "MAGICBELL_ROUTE": "token"].merging(extra) { $1 }
    }

    /// MAGICBELL_USER_KEY=on: MagicBell's HMAC user key beside the token;
    /// the expected values were computed with Python's hmac module
    /// (`base64.b64encode(hmac.new(secret, id, sha256).digest())`).
    @Test func theUserKeyIsMagicBellsHMACOverTheExternalIDOrElseTheEmail() throws {
        var config = Configuration(apiKey: "pk_test_1", secret: SecretKey(Array("s3cr3t-key".utf8)), tokenTTL: 900)
        #expect(ask(Self.request(["MAGICBELL_USER_EXTERNAL_ID": "usr_42"])).json["user_key"] == nil, "off by default")
        config.userKey = true
        let responder = try MagicBellResponder(configuration: config, logger: Logger(label: "test"), clock: { Self.now })
        func userKey(_ params: [String: String]) -> Any? {
            var response = HTTPResponse()
            responder.handle(ParameterList(Self.request(params)), &response)
            return ((try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any])?["user_key"]
        }
        #expect(userKey(["MAGICBELL_USER_EXTERNAL_ID": "usr_42", "MAGICBELL_USER_EMAIL": "ann@example.com"]) as? String
            == "bystN/KEGakZfrgHkBDU3loF9lH2lIEwxTKSkpWwfrs=")
        #expect(userKey(["MAGICBELL_USER_EMAIL": "ann@example.com"]) as? String == "DuK+ZfVHU9ixdM+EzIUvPWeKAb8PWxljysMOTHKR2g8=")
        // An empty external id is no external id.
        #expect(userKey(["MAGICBELL_USER_EXTERNAL_ID": "", "MAGICBELL_USER_EMAIL": "ann@example.com"]) as? String
            == "DuK+ZfVHU9ixdM+EzIUvPWeKAb8PWxljysMOTHKR2g8=")
    }

    @Test func mintsATokenForTheServerSetIdentity() throws {
        let answer = ask(Self.request(["MAGICBELL_USER_EXTERNAL_ID": "u_1", "MAGICBELL_USER_EMAIL": "ann@example.com"]))
        #expect(answer.status == 200)
        #expect(answer.head.hasPrefix("Status: 200 OK\r\n"))
        #expect(answer.header("Content-Type") == "application/json")
        #expect(answer.header("Cache-Control") == "no-store")
        #expect(answer.header("Pragma") == "no-cache")
        #expect(answer.header("X-Content-Type-Options") == "nosniff")
        #expect(answer.header("Content-Length") != nil)
        #expect(answer.json["expires_at"] as? Int == Self.now + 900)
        #expect(answer.json["expires_in"] as? Int == 900)
        let token = try #require(answer.json["token"] as? String)
        let verified = try TokenVerifier(secret: SecretKey(Array("unit-secret".utf8))).verify(token, now: Self.now)
        #expect(verified.claims["user_external_id"]?.string == "u_1")
        #expect(verified.claims["user_email"]?.string == "ann@example.com")
        #expect(verified.claims["iat"]?.integer == Self.now)
    }

    @Test func postIsServedLikeGet() {
        #expect(ask(Self.request(["REQUEST_METHOD": "POST", "MAGICBELL_USER_EMAIL": "a@b.c"])).status == 200)
    }

    @Test func noIdentityIs401() {
        let answer = ask(Self.request())
        #expect(answer.status == 401)
        #expect(answer.errorCode == "unauthenticated")
        #expect(answer.header("Cache-Control") == "no-store")
    }

    @Test func emptyIdentityCountsAsAbsent() {
        #expect(ask(Self.request(["MAGICBELL_USER_EXTERNAL_ID": "", "MAGICBELL_USER_EMAIL": ""])).status == 401)
    }

    @Test func clientHeadersAndRemoteUserAreNeverIdentity() {
        // What a client can put in params: HTTP_* (its headers) and, with
        // Debian's fastcgi_params, REMOTE_USER from any Basic header.
        let answer = ask(Self.request([
            "REMOTE_USER": "mallory",
            "HTTP_MAGICBELL_USER_EXTERNAL_ID": "mallory",
            "HTTP_MAGICBELL_USER_EMAIL": "mallory@example.com",
            "HTTP_X_AUTH_REQUEST_USER": "mallory",
            "HTTP_AUTHORIZATION": "Basic bWFsbG9yeTp4",
        ]))
        #expect(answer.status == 401)
    }

    @Test func identityUpTo1024BytesIsAccepted() {
        #expect(ask(Self.request(["MAGICBELL_USER_EXTERNAL_ID": String(repeating: "x", count: 1024)])).status == 200)
    }

    @Test func identityOver1024BytesIs400() {
        for param in ["MAGICBELL_USER_EXTERNAL_ID", "MAGICBELL_USER_EMAIL"] {
            let answer = ask(Self.request([param: String(repeating: "x", count: 1025)]))
            #expect(answer.status == 400)
            #expect(answer.errorCode == "identity_too_long")
        }
    }

    @Test func invalidUTF8IdentityIs400NamingTheParam() {
        let params = ParameterList(bytes: [
            "REQUEST_METHOD": Array("GET".utf8), "DOCUMENT_URI": Array("/magicbell-token".utf8),
            "MAGICBELL_ROUTE": Array("token".utf8), "MAGICBELL_USER_EMAIL": [0x61, 0xFF, 0x62],
        ])
        let answer = ask(params)
        #expect(answer.status == 400)
        #expect(answer.errorCode == "invalid_identity")
        #expect(((answer.json["error"] as? [String: Any])?["message"] as? String)?.contains("MAGICBELL_USER_EMAIL") == true)
    }

    @Test func theAdminActorIsCheckedByTheSameRules() {
        let params = ParameterList(bytes: [
            "REQUEST_METHOD": Array("GET".utf8), "DOCUMENT_URI": Array("/magicbell-admin/jwt/project".utf8),
            "MAGICBELL_ROUTE": Array("admin".utf8), "MAGICBELL_USER_EXTERNAL_ID": [0x61, 0xFF],
        ])
        let answer = ask(params)
        #expect(answer.status == 400)
        #expect(answer.errorCode == "invalid_identity")
        let tooLong = ask(["REQUEST_METHOD": "GET", "DOCUMENT_URI": "/magicbell-admin/metrics", "MAGICBELL_ROUTE": "admin",
                           "MAGICBELL_USER_EMAIL": String(repeating: "a", count: 1025)])
        #expect(tooLong.errorCode == "identity_too_long")
        // Without a project token, an admin call with a valid actor gets as far as the 503.
        #expect(ask(["REQUEST_METHOD": "GET", "DOCUMENT_URI": "/magicbell-admin/jwt/project", "MAGICBELL_ROUTE": "admin",
                     "MAGICBELL_USER_EXTERNAL_ID": "ops"]).errorCode == "admin_not_configured")
    }

    @Test func aWrongMethodIs405EvenWithoutAnIdentity() {
        #expect(ask(Self.request(["REQUEST_METHOD": "PUT"])).status == 405)
        #expect(ask(Self.request(["REQUEST_METHOD": "GET"])).status == 401)
    }

    @Test(arguments: ["PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "get", "Post", "GETX", ""])
    func otherMethodsAre405WithAllow(_ method: String) {
        let answer = ask(Self.request(["REQUEST_METHOD": method, "MAGICBELL_USER_EXTERNAL_ID": "u"]))
        #expect(answer.status == 405)
        #expect(answer.header("Allow") == "GET, POST")
        #expect(answer.errorCode == "method_not_allowed")
    }

    @Test func withoutADeclaredRouteEveryPathIs404() {
        for route in [nil, "", "Token", "token ", "tokens", "1", "ADMIN"] as [String?] {
            var params = Self.request(["MAGICBELL_USER_EXTERNAL_ID": "u"])
            params["MAGICBELL_ROUTE"] = route
            let answer = ask(params)
            #expect(answer.status == 404, "\(route ?? "nil")")
            #expect(answer.errorCode == "not_found")
        }
    }

    @Test func theDeclaredRouteIsServedWhateverThePath() {
        // The location decides; the path has no say (the old rule was "the
        // last segment is magicbell-token").
        for path in ["/api/magicbell-token", "/a/b/c/magicbell-token", "/token", "/magicbell-admin/jwt/project"] {
            let answer = ask(Self.request(["DOCUMENT_URI": path, "MAGICBELL_USER_EXTERNAL_ID": "u"]))
            #expect(answer.status == 200, "\(path)")
            #expect(answer.json["token"] is String)
        }
    }

    @Test func aTokenLocationNeverServesTheAdminRouteOrMetrics() {
        for uri in ["/magicbell-token/../magicbell-admin/jwt/project", "/magicbell-admin/metrics"] {
            let answer = ask(Self.request(["DOCUMENT_URI": uri, "REQUEST_URI": uri, "MAGICBELL_USER_EXTERNAL_ID": "u"]))
            #expect(answer.json["token"] is String, "\(uri) is a token answer, or refused")
        }
    }

    @Test func theRawTargetMustDecodeOnceToTheMatchedPath() {
        let accepted = [("/magicbell-token", "/magicbell-token"), ("/magicbell-token?x=#y", "/magicbell-token"),
                        ("/magicbell%2Dtoken", "/magicbell-token"), ("/magicbell%2dtoken?a", "/magicbell-token"),
                        ("/a%2541", "/a%41")]
        for (raw, path) in accepted {
            let answer = ask(Self.request(["REQUEST_URI": raw, "DOCUMENT_URI": path, "MAGICBELL_USER_EXTERNAL_ID": "u"]))
            #expect(answer.status == 200, "\(raw) -> \(path)")
        }
        let refused = [("/magicbell-token#x", "/magicbell-token"), ("/magicbell-admin%2Fmetrics#/magicbell-admin/jwt/project", "/magicbell-admin/metrics"),
                       ("//magicbell-token", "/magicbell-token"), ("/x/../magicbell-token", "/magicbell-token"),
                       ("/./magicbell-token", "/magicbell-token"), ("/magicbell-token%", "/magicbell-token%"),
                       ("/magicbell-token%4", "/magicbell-token%4"), ("/magicbell-token%zz", "/magicbell-token%zz"),
                       ("/a%2541", "/aA"), ("/magicbell-token", "/magicbell-token/"), ("/magicbell-token/", "/magicbell-token"),
                       ("/magicbell-token", "")]
        for (raw, path) in refused {
            let answer = ask(Self.request(["REQUEST_URI": raw, "DOCUMENT_URI": path, "MAGICBELL_USER_EXTERNAL_ID": "u"]))
            #expect(answer.status == 400, "\(raw) -> \(path)")
            #expect(answer.errorCode == "invalid_path", "\(raw) -> \(path)")
            #expect(answer.json["token"] == nil)
        }
    }

    @Test func noDocumentURIIs400() {
        var params = Self.request(["MAGICBELL_USER_EXTERNAL_ID": "u", "REQUEST_URI": "/magicbell-token"])
        params["DOCUMENT_URI"] = nil
        #expect(ask(params).errorCode == "invalid_path")
    }

    @Test func everyErrorHasTheSameShape() {
        for params in [Self.request(), Self.request(["REQUEST_METHOD": "PUT"]), Self.request(["MAGICBELL_ROUTE": "x"]),
                       Self.request(["REQUEST_URI": "/x#"])] {
            let error = ask(params).json["error"] as? [String: Any]
            #expect(error?.keys.sorted() == ["code", "message"])
            #expect(ask(params).json.keys.sorted() == ["error"])
        }
    }

    // MARK: the health route (issue 20 §3)

    static func health(_ extra: [String: String] = [:]) -> [String: String] {
        ["REQUEST_METHOD": "GET", "DOCUMENT_URI": "/magicbell-health", "MAGICBELL_ROUTE": "health"].merging(extra) { $1 }
    }

    /// Params that remember which names were read.
    final class Recording: RequestParameters, RequestBodyReader {
        let params: ParameterList
        var read: [String] = []
        init(_ params: ParameterList) { self.params = params }
        func param(_ name: StaticString) -> UnsafeBufferPointer<UInt8>? {
            read.append("\(name)")
            return params.param(name)
        }
        func readBody(limit: Int) -> RequestBody {
            read.append("(body)")
            return params.readBody(limit: limit)
        }
    }

    @Test func healthAnswers200StatusOKNeverCachedWithoutAnyIdentity() {
        var response = HTTPResponse()
        responder.handle(ParameterList(Self.health()), &response)
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == #"{"status":"ok"}"#)
        let answer = ask(Self.health())
        #expect(answer.header("Content-Type") == "application/json")
        #expect(answer.header("Cache-Control") == "no-store")
        #expect(answer.header("X-Content-Type-Options") == "nosniff")
        #expect(answer.json["token"] == nil)
    }

    @Test func healthAnswersHEADWithTheHeadAlone() {
        var response = HTTPResponse()
        responder.handle(ParameterList(Self.health(["REQUEST_METHOD": "HEAD"])), &response)
        var wire: [UInt8] = []
        response.serialize(into: &wire)
        let text = String(decoding: wire, as: UTF8.self)
        #expect(response.status == 200)
        #expect(text.hasPrefix("Status: 200 OK\r\n") && text.hasSuffix("\r\n\r\n"), "no body: \(text)")
    }

    /// No identity param is even read: an identity that the token route
    /// refuses (too long, not UTF-8) changes nothing here, and neither is
    /// the body.
    @Test func healthReadsNoIdentityParamAndNoBody() {
        let params = Recording(ParameterList(bytes: Self.health().mapValues { Array($0.utf8) }.merging([
            "MAGICBELL_USER_EMAIL": [0x61, 0xFF], "MAGICBELL_USER_EXTERNAL_ID": Array(repeating: 0x78, count: 5000),
        ]) { $1 }, body: Array("{}".utf8)))
        var response = HTTPResponse()
        responder.handle(params, &response)
        #expect(response.status == 200)
        #expect(!params.read.contains { $0.hasPrefix("MAGICBELL_USER_") || $0 == "(body)" }, "\(params.read)")
        #expect(responder.answersBeforeBody(ParameterList(Self.health())), "nor waited for")
    }

    @Test(arguments: ["POST", "PUT", "DELETE", "OPTIONS", "get", ""])
    func healthAnswersOtherMethods405WithAllow(_ method: String) {
        let answer = ask(Self.health(["REQUEST_METHOD": method]))
        #expect(answer.status == 405)
        #expect(answer.header("Allow") == "GET, HEAD")
        #expect(answer.errorCode == "method_not_allowed")
    }

    @Test func aHealthLocationChecksItsPathLikeEveryRoute() {
        let answer = ask(Self.health(["REQUEST_URI": "/magicbell-health#x"]))
        #expect(answer.status == 400 && answer.errorCode == "invalid_path")
        #expect(ask(Self.health(["MAGICBELL_ROUTE": "Health"])).status == 404, "route names are exact")
    }

    /// CGI mode loads the configuration per request: while it cannot mint,
    /// the health route is 503 not_ready (every other route stays 500
    /// misconfigured, whose detail is in the server's log).
    @Test func whileTheConfigurationCannotMintHealthIs503NotReady() throws {
        let error = ConfigurationError("MAGICBELL_SECRET_KEY_FILE", "cannot read /x: no such file")
        var health = HTTPResponse()
        CGIProgram.refuse(ParameterList(Self.health()), because: error, &health)
        #expect(health.status == 503)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(health.body)) as? [String: [String: String]])
        let message = json["error"]?["message"] ?? ""
        #expect(json["error"]?["code"] == "not_ready" && !message.isEmpty)
        #expect(!message.contains("MAGICBELL_SECRET_KEY_FILE"), "the detail stays in the log")
        var head = HTTPResponse()
        CGIProgram.refuse(ParameterList(Self.health(["REQUEST_METHOD": "HEAD"])), because: error, &head)
        var wire: [UInt8] = []
        head.serialize(into: &wire)
        #expect(head.status == 503 && String(decoding: wire, as: UTF8.self).hasSuffix("\r\n\r\n"), "HEAD: no body")
        var token = HTTPResponse()
        CGIProgram.refuse(ParameterList(Self.request()), because: error, &token)
        #expect(token.status == 500)
    }
}
