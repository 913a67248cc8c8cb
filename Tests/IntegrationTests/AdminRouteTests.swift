import Glibc
import Foundation
import Testing
import TestSupport

/// The admin route through real nginx (the project's admin snippet), the
/// real binary, and the fake MagicBell.
@Suite(.serialized) struct AdminRouteTests {
    /// The shared stack with the fake MagicBell and the admin snippet.
    static func stack(environment: [String: String] = [:], workers: Int = 4, serverExtra: String = "",
                      arguments: [String] = []) throws -> Stack {
        try Stack(fake: true, workers: workers, environment: environment, arguments: arguments,
                  serverExtra: "include snippets/magicbell-admin.conf;\n" + serverExtra)
    }

    static func json(_ response: HTTPResponse) -> [String: Any] { response.json ?? [:] }

    @Test func everyOperationIsForwardedExactly() throws {
        let stack = try Self.stack()
        let createdProject = try stack.nginx.admin("POST", "jwt/project", json: #"{"name":"ci","expiry":3600}"#)
        #expect(createdProject.status == 201)
        let projectID = try #require(Self.json(createdProject)["token_id"] as? String)
        #expect(Self.json(createdProject)["token"] as? String != nil)

        let listed = try stack.nginx.admin("GET", "jwt/project?limit=5&starting_after=\(projectID)")
        #expect(listed.status == 200)
        #expect(Self.json(listed)["data"] is [Any])

        let createdUser = try stack.nginx.admin("POST", "jwt/user", json: #"{"external_id":"u 1+ü","email":null,"name":"web","expiry":60}"#)
        #expect(createdUser.status == 201)
        let userTokenID = try #require(Self.json(createdUser)["token_id"] as? String)

        let userList = try stack.nginx.admin("GET", "jwt/user/u%201+%C3%BC?page%5Bsize%5D=10&page[after]=abc")
        #expect(userList.status == 200, "\(userList.text)")
        #expect((Self.json(userList)["data"] as? [[String: Any]])?.first?["id"] as? String == userTokenID)

        #expect(try stack.nginx.admin("DELETE", "jwt/user/\(userTokenID)").status == 200)
        let discarded = try stack.nginx.admin("DELETE", "jwt/project/\(projectID)")
        #expect(discarded.status == 200)
        #expect(Self.json(discarded)["token_id"] as? String == projectID)
        #expect(discarded.header("Content-Type") == "application/json")
        #expect(discarded.header("Cache-Control") == "no-store")

        let seen = try stack.magicBell.requests()
        #expect(seen.map { "\($0["method"]!) \($0["path"]!)" } == [
            "POST /v2/jwt/project", "GET /v2/jwt/project", "POST /v2/jwt/user",
            "GET /v2/jwt/user/u%201%2B%C3%BC", "DELETE /v2/jwt/user/\(userTokenID)", "DELETE /v2/jwt/project/\(projectID)",
        ])
        #expect(seen.map { $0["query"] as? String ?? "" } == [
            "", "limit=5&starting_after=\(projectID)", "", "page%5Bsize%5D=10&page%5Bafter%5D=abc", "", "",
        ])
        #expect(seen.allSatisfy { $0["authorization"] as? String == "Bearer \(stack.magicBell.token)" })
        #expect(seen[0]["body"] as? String == #"{"expiry":3600,"name":"ci"}"#)
        #expect(seen[2]["body"] as? String == #"{"expiry":60,"external_id":"u 1+ü","name":"web"}"#) // null left out
        #expect(seen[0]["content_type"] as? String == "application/json")
    }

    /// Issue 21: libcurl is loaded with dlopen at the first MagicBell call;
    /// tokens minted here never map it.
    @Test func serveLoadsLibcurlAtItsFirstMagicBellCallOnly() throws {
        let stack = try Self.stack()
        let child = stack.responder.child
        #expect(child.maps.contains("libfcgi"), "the maps name the libraries loaded at start")
        for _ in 0..<3 { #expect(try stack.nginx.get("/magicbell-token", headers: [RecipeChecks.demo]).status == 200) }
        #expect(!child.maps.contains("libcurl"), "minting loaded libcurl")
        #expect(try stack.nginx.admin("GET", "jwt/project").status == 200)
        #expect(child.maps.contains("libcurl.so.4"))
    }

    /// Issue 21: serve takes the service's own HTTPS_PROXY (and NO_PROXY),
    /// as a sysadmin sets it for every service of a host behind an egress proxy.
    @Test func serveCallsMagicBellThroughTheServicesProxy() throws {
        let certificate = try TestCertificates.make("IP:127.0.0.1")
        let secure = try FakeMagicBell(tls: certificate)
        let proxy = try ConnectProxy()
        let https = ["MAGICBELL_API_URL": secure.baseURL.absoluteString, "MAGICBELL_PROJECT_TOKEN": secure.token,
                     "SSL_CERT_FILE": certificate.certificate]
        let stack = try Self.stack(environment: https.merging(["HTTPS_PROXY": proxy.url]) { $1 })
        #expect(try stack.nginx.admin("GET", "jwt/project").status == 200)
        #expect(proxy.tunnels == ["127.0.0.1:\(secure.port)"], "\(proxy.requests)")
        let excepted = try Self.stack(environment: https.merging(["HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1"]) { $1 })
        #expect(try excepted.nginx.admin("GET", "jwt/project").status == 200)
        let dead = try Self.stack(environment: https.merging(["https_proxy": "http://127.0.0.1:9"]) { $1 })
        #expect(try dead.nginx.admin("GET", "jwt/project").status == 502, "the proxy was used")
    }

    @Test func onlyNginxCanGrantTheAdminRole() throws {
        // (A location without MAGICBELL_ROUTE: TrustBoundaryTests.)
        let stack = try Self.stack()
        #expect(try stack.nginx.get("/magicbell-admin/jwt/project").status == 401) // nginx's auth_basic
        #expect(try stack.nginx.get("/magicbell-admin/jwt/project", headers: [HTTP.basic("admin", "nope")]).status == 401)
        #expect(try stack.nginx.get("/magicbell-admin/jwt/project", headers: [HTTP.basic("demo", "demo")]).status == 401)
        #expect(try stack.magicBell.requests().isEmpty)
    }

    @Test func invalidRequestsAreRefusedAndNothingIsForwarded() throws {
        let stack = try Self.stack(environment: ["MAGICBELL_ALLOWED_ORIGINS": "https://admin.example.com"])
        let nginx = stack.nginx
        let big = #"{"name":""# + String(repeating: "x", count: 70_000) + #""}"#
        let cases: [(String, HTTPResponse, Int, String)] = [
            ("unknown query", try nginx.admin("GET", "jwt/project?limit=5&debug=1"), 400, "invalid_query"),
            ("duplicate query", try nginx.admin("GET", "jwt/project?limit=5&limit=6"), 400, "invalid_query"),
            ("bad limit", try nginx.admin("GET", "jwt/project?limit=0"), 400, "invalid_query"),
            ("non-numeric page size", try nginx.admin("GET", "jwt/project?page%5Bsize%5D=ten"), 400, "invalid_query"),
            ("query on a delete", try nginx.admin("DELETE", "jwt/project/abc?limit=5"), 400, "invalid_query"),
            // nginx decodes %2F before it matches: a path separator, so no such operation.
            ("encoded slash in id", try nginx.admin("DELETE", "jwt/project/a%2Fb"), 404, "not_found"),
            // nginx resolves the decoded .. : not the path the target names.
            ("dot-dot id", try nginx.admin("DELETE", "jwt/user/%2E%2E"), 400, "invalid_path"),
            ("control byte in id", try nginx.admin("GET", "jwt/user/a%01b"), 400, "invalid_id"),
            ("id too long", try nginx.admin("DELETE", "jwt/project/" + String(repeating: "a", count: 256)), 400, "invalid_id"),
            ("unknown path", try nginx.admin("GET", "jwt/team"), 404, "not_found"),
            ("too deep", try nginx.admin("GET", "jwt/user/a/b"), 404, "not_found"),
            ("wrong method", try nginx.admin("PUT", "jwt/project", json: "{}"), 405, "method_not_allowed"),
            ("wrong content type", try nginx.admin("POST", "jwt/project", json: #"{"name":"x"}"#, contentType: "text/plain"), 415, "unsupported_media_type"),
            ("body too large", try nginx.admin("POST", "jwt/project", json: big), 413, "body_too_large"),
            ("not JSON", try nginx.admin("POST", "jwt/project", json: "{name"), 400, "invalid_json"),
            ("not an object", try nginx.admin("POST", "jwt/project", json: "[1]"), 400, "invalid_json"),
            ("missing name", try nginx.admin("POST", "jwt/project", json: #"{"expiry":60}"#), 400, "invalid_body"),
            ("empty name", try nginx.admin("POST", "jwt/project", json: #"{"name":""}"#), 400, "invalid_body"),
            ("name too long", try nginx.admin("POST", "jwt/project", json: #"{"name":"\#(String(repeating: "n", count: 256))"}"#), 400, "invalid_body"),
            ("unknown field", try nginx.admin("POST", "jwt/project", json: #"{"name":"x","admin":true}"#), 400, "invalid_body"),
            ("name not a string", try nginx.admin("POST", "jwt/project", json: #"{"name":5}"#), 400, "invalid_body"),
            ("expiry a string", try nginx.admin("POST", "jwt/project", json: #"{"name":"x","expiry":"60"}"#), 400, "invalid_body"),
            ("expiry a fraction", try nginx.admin("POST", "jwt/project", json: #"{"name":"x","expiry":1.5}"#), 400, "invalid_body"),
            ("expiry a boolean", try nginx.admin("POST", "jwt/project", json: #"{"name":"x","expiry":true}"#), 400, "invalid_body"),
            ("expiry zero", try nginx.admin("POST", "jwt/project", json: #"{"name":"x","expiry":0}"#), 400, "invalid_body"),
            ("user without identity", try nginx.admin("POST", "jwt/user", json: #"{"name":"x","email":null}"#), 400, "invalid_body"),
            ("user email a number", try nginx.admin("POST", "jwt/user", json: #"{"email":1}"#), 400, "invalid_body"),
            ("foreign origin", try nginx.admin("GET", "jwt/project", headers: [("Origin", "https://evil.example")]), 403, "cross_origin"),
            ("null origin", try nginx.admin("GET", "jwt/project", headers: [("Origin", "null")]), 403, "cross_origin"),
            ("cross-site fetch", try nginx.admin("DELETE", "jwt/project/x", headers: [("Sec-Fetch-Site", "cross-site")]), 403, "cross_origin"),
        ]
        for (name, response, status, code) in cases {
            #expect(response.status == status, "\(name): \(response.status) \(response.text)")
            #expect(response.errorCode == code, "\(name): \(response.text)")
        }
        #expect(cases.first { $0.0 == "wrong method" }?.1.header("Allow") == "GET, POST")
        // nginx itself refuses a malformed percent-escape (the responder's own check is unit-tested).
        #expect(try nginx.admin("DELETE", "jwt/project/a%zz").status == 400)
        #expect(try stack.magicBell.requests().isEmpty, "nothing invalid may reach MagicBell")

        // The site's own origin and the configured ones are fine.
        #expect(try nginx.admin("GET", "jwt/project", headers: [("Origin", "http://127.0.0.1:\(nginx.port)")]).status == 200)
        #expect(try nginx.admin("GET", "jwt/project", headers: [("Origin", "https://admin.example.com")]).status == 200)
        #expect(try nginx.admin("GET", "jwt/project", headers: [("Sec-Fetch-Site", "same-origin")]).status == 200)
        #expect(try stack.magicBell.requests().count == 3)
    }

    @Test func upstreamAnswersPassThroughAndFailuresMapTo502And504() throws {
        let stack = try Self.stack(environment: ["MAGICBELL_UPSTREAM_TIMEOUT": "2"])
        try stack.magicBell.misbehave("422")
        let invalid = try stack.nginx.admin("POST", "jwt/user", json: #"{"email":"a@example.com"}"#)
        #expect(invalid.status == 422)
        #expect(invalid.text == #"{"errors": [{"code": "invalid", "message": "expiry is invalid", "suggestion": "use seconds"}]}"#)

        try stack.magicBell.misbehave("500")
        #expect(try stack.nginx.admin("GET", "jwt/project").status == 500)

        try stack.magicBell.misbehave("garbage")
        let garbage = try stack.nginx.admin("GET", "jwt/project")
        #expect(garbage.status == 502 && garbage.errorCode == "upstream_invalid")

        try stack.magicBell.misbehave("redirect")
        #expect(try stack.nginx.admin("GET", "jwt/project").errorCode == "upstream_invalid")

        try stack.magicBell.misbehave("drop")
        let dropped = try stack.nginx.admin("POST", "jwt/project", json: #"{"name":"once"}"#)
        #expect(dropped.status == 502 && dropped.errorCode == "upstream_unreachable")
        #expect(try stack.magicBell.requests().filter { $0["body"] as? String == #"{"name":"once"}"# }.count == 1, "POSTs are never retried")

        try stack.magicBell.misbehave("hang")
        let start = Date()
        let hung = try stack.nginx.admin("GET", "jwt/project")
        let elapsed = Date().timeIntervalSince(start)
        #expect(hung.status == 504 && hung.errorCode == "upstream_timeout")
        #expect(elapsed < 3.0, "answered within the timeout (2 s) plus one second: \(elapsed)")

        // A success that is JSON but not the documented model took effect
        // upstream: it is forwarded as sent (a create's one-time token is in
        // it), and the audit line names the new token's id.
        try stack.magicBell.misbehave("unexpected")
        let unexpected = try stack.nginx.admin("POST", "jwt/project", json: #"{"name":"odd"}"#)
        #expect(unexpected.status == 201 && unexpected.text.contains("tok_unexpected"))
        #expect(stack.auditLines.last?["target"] as? String == "tok_unexpected")

        // A wrong project token: MagicBell's 401 passes through unchanged.
        let wrong = try Self.stack(environment: ["MAGICBELL_PROJECT_TOKEN": Canary.secret("pt_wrong")])
        let unauthorized = try wrong.nginx.admin("GET", "jwt/project")
        #expect(unauthorized.status == 401)
        #expect(unauthorized.text.contains("Invalid project token"))
    }

    /// MagicBell's status is kept whatever its body: an empty 401 or a
    /// proxy's HTML 503 says "unauthorized" or "unavailable", not
    /// "invalid" (issue 14). Retry-After on 429 and 503 is passed on.
    @Test func magicBellsStatusIsKeptWhateverTheBody() throws {
        let stack = try Self.stack()
        func upstreamStatus(_ answer: HTTPResponse) -> Int? {
            (answer.json?["error"] as? [String: Any])?["upstream_status"] as? Int
        }
        try stack.magicBell.misbehave("empty401")
        let unauthorized = try stack.nginx.admin("GET", "jwt/project")
        #expect(unauthorized.status == 401 && unauthorized.errorCode == "upstream_error", "\(unauthorized.text)")
        #expect(upstreamStatus(unauthorized) == 401)
        #expect(unauthorized.header("Retry-After") == nil)

        try stack.magicBell.misbehave("html503")
        let unavailable = try stack.nginx.admin("DELETE", "jwt/project/\(UUID().uuidString.lowercased())")
        #expect(unavailable.status == 503 && unavailable.errorCode == "upstream_error", "\(unavailable.text)")
        #expect(upstreamStatus(unavailable) == 503)
        #expect(unavailable.header("Retry-After") == "30")
        #expect(unavailable.header("Content-Type") == "application/json")

        // A JSON error body is MagicBell's own and passes through as it is, with its Retry-After.
        try stack.magicBell.misbehave("429")
        let limited = try stack.nginx.admin("POST", "jwt/project", json: #"{"name":"limited"}"#)
        #expect(limited.status == 429 && limited.text.contains("Too many requests"), "\(limited.text)")
        #expect(limited.header("Retry-After") == "7")
        #expect(stack.auditLines.last?["outcome"] as? String == "upstream_error")

        // 407 and 408 speak of the connection (a browser may resend on a 408): a 502 that names them.
        try stack.magicBell.misbehave("408")
        let timedOut = try stack.nginx.admin("GET", "jwt/project")
        #expect(timedOut.status == 502 && timedOut.errorCode == "upstream_error" && upstreamStatus(timedOut) == 408, "\(timedOut.text)")

        // A success that is not JSON is still ours to refuse.
        try stack.magicBell.misbehave("garbage")
        #expect(try stack.nginx.admin("GET", "jwt/project").errorCode == "upstream_invalid")
    }

    /// The console (issue 14): its page, script and style on the admin route, with the headers
    /// that keep it from running anything but its own files, being framed or cached; GET only;
    /// not a thing the metrics login can load; page loads counted, not audited.
    @Test func theConsoleIsServedOnTheAdminRouteWithItsHeaders() throws {
        let stack = try Self.stack(serverExtra: "include snippets/magicbell-metrics.conf;")
        let assets = [("", "text/html; charset=utf-8", "<h2 id=\"project-heading\">Project tokens</h2>"),
                      ("console.js", "text/javascript; charset=utf-8", "async function call("),
                      ("console.css", "text/css; charset=utf-8", ":focus-visible")]
        for (path, type, excerpt) in assets {
            let answer = try stack.nginx.admin("GET", path)
            #expect(answer.status == 200, "\(path): \(answer.status) \(answer.text.prefix(200))")
            #expect(answer.header("Content-Type") == type, "\(path)")
            #expect(answer.header("Content-Security-Policy") == "default-src 'self'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'; object-src 'none'", "\(path)")
            #expect(answer.header("Cross-Origin-Opener-Policy") == "same-origin", "\(path)")
            #expect(answer.header("Cache-Control") == "no-store" && answer.header("X-Content-Type-Options") == "nosniff", "\(path)")
            #expect(answer.text.contains(excerpt), "\(path)")
        }
        let page = try stack.nginx.admin("GET", "").text
        #expect(page.components(separatedBy: "<script").count == 2 && page.contains(#"<script type="module" src="console.js"></script>"#),
                "one script, the module, from its file")
        #expect(!page.contains(" style=") && !page.contains("<style") && !page.contains(" on"), "no inline style or handler")
        #expect(try stack.nginx.admin("POST", "", json: "{}").status == 405)
        for site in ["cross-site", "same-site"] { // a link from another site, even a sibling subdomain
            #expect(try stack.nginx.admin("GET", "", headers: [("Sec-Fetch-Site", site)]).errorCode == "cross_origin", "\(site)")
        }
        #expect(try stack.nginx.admin("GET", "", headers: [("Sec-Fetch-Site", "none")]).status == 200, "typed or bookmarked")
        // The metrics login reaches only the metrics, whatever the path it names.
        let scraper = try HTTP.request(port: stack.nginx.port, "GET", "/magicbell-admin/metrics",
                                       headers: [HTTP.basic("prometheus", "prometheus")])
        #expect(!scraper.text.contains("<html") && scraper.text.contains("magicbell_fcgi_"))
        #expect(try HTTP.request(port: stack.nginx.port, "GET", "/magicbell-admin/", headers: [HTTP.basic("prometheus", "prometheus")]).status == 401)
        // Page loads are not actions; a refused request is audited as every refused admin request is.
        #expect(stack.auditLines.filter { $0["operation"] as? String == "console" }.map { $0["status"] as? Int } == [405, 403])
        #expect(try stack.magicBell.requests().isEmpty)
    }

    @Test func withoutAProjectTokenTheAdminRouteIs503() throws {
        let stack = try Stack(auth: .file("basic.conf"),
                              serverExtra: "include snippets/magicbell-admin.conf;")
        let nginx = stack.nginx
        let response = try nginx.admin("GET", "jwt/project")
        #expect(response.status == 503)
        #expect(response.errorCode == "admin_not_configured")
    }

    @Test func hangingAdminCallsNeverStallTheTokenEndpoint() throws {
        let stack = try Self.stack(environment: ["MAGICBELL_UPSTREAM_TIMEOUT": "6", "MAGICBELL_ADMIN_MAX_CONCURRENT": "2"])
        try stack.magicBell.misbehave("hang", count: -1)
        let port = stack.nginx.port
        let (admins, done) = Results.inParallel(5) { _ in
            try HTTP.request(port: port, "GET", "/magicbell-admin/jwt/project", headers: [HTTP.basic("admin", "admin")])
        }
        #expect(Sockets.waitUntil { ((try? stack.magicBell.requests().count) ?? 0) >= 2 }, "two admin calls are hanging upstream")

        // While those hang, tokens keep flowing, well before the admin calls time out.
        let start = Date()
        for _ in 0..<50 {
            #expect(try stack.nginx.get("/magicbell-token", headers: [HTTP.basic("demo", "demo")]).status == 200)
        }
        #expect(Date().timeIntervalSince(start) < 5, "tokens answered while admin calls hang")
        #expect(try stack.magicBell.requests().count == 2, "at most MAGICBELL_ADMIN_MAX_CONCURRENT calls upstream")

        #expect(done.wait(timeout: .now() + 15) == .success)
        let statuses = (0..<5).compactMap { try? admins.get($0).get() }.map(\.status).sorted()
        #expect(statuses == [503, 503, 503, 504, 504])
    }

    @Test func everyAdminActionIsAuditedWithoutSecrets() throws {
        let stack = try Self.stack()
        let created = try stack.nginx.admin("POST", "jwt/project", json: #"{"name":"audit"}"#)
        let token = try #require(Self.json(created)["token"] as? String)
        let tokenID = try #require(Self.json(created)["token_id"] as? String)
        _ = try stack.nginx.admin("DELETE", "jwt/project/\(tokenID)")
        _ = try stack.nginx.admin("GET", "jwt/project?bogus=1")
        usleep(100_000)

        let lines = stack.auditLines
        #expect(lines.count == 3)
        #expect(lines.map { $0["operation"] as? String } == ["createProjectJwt", "discardProjectJwt", "fetchProjectTokens"])
        #expect(lines.map { $0["status"] as? Int } == [201, 200, 400])
        #expect(lines.map { $0["target"] as? String } == [tokenID, tokenID, nil])
        #expect(lines.allSatisfy { ($0["actor"] as? [String: Any])?["external_id"] as? String == "admin" })
        #expect(lines.allSatisfy { $0["time"] is String && $0["duration_ms"] is Double && $0["method"] is String })
        #expect(lines[2]["error"] as? String == "invalid_query")

        let log = stack.responder.child.stderr
        #expect(!log.contains(stack.magicBell.token), "the project token")
        #expect(!log.contains(Project.secret), "the secret key")
        #expect(!log.contains(token), "a token value")
    }

    @Test func mintModeApiGetsTokensFromMagicBellSoTheyCanBeRevoked() throws {
        let stack = try Self.stack(environment: ["MAGICBELL_MINT": "api", "MAGICBELL_MINT_TOKEN_NAME": "web session",
                                                "MAGICBELL_UPSTREAM_TIMEOUT": "2"])
        let before = Int(Date().timeIntervalSince1970)
        let answer = try stack.nginx.get("/magicbell-token", headers: [HTTP.basic("demo", "demo")])
        #expect(answer.status == 200)
        #expect(Set((answer.json ?? [:]).keys) == ["token", "expires_at", "expires_in"])
        let token = try #require(answer.json?["token"] as? String)
        let expiresAt = try #require(answer.json?["expires_at"] as? Int)
        #expect(abs(expiresAt - (before + 600)) <= 5, "MagicBell's expires_at")
        #expect(abs((answer.json?["expires_in"] as? Int ?? 0) - 600) <= 5)

        let created = try #require(try stack.magicBell.requests().last)
        #expect(created["method"] as? String == "POST" && created["path"] as? String == "/v2/jwt/user")
        #expect(created["body"] as? String == #"{"expiry":600,"external_id":"demo","name":"web session"}"#)

        // The issued token is listable, and revocable, through the admin route.
        let listed = try stack.nginx.admin("GET", "jwt/user/demo")
        let id = try #require(((listed.json?["data"] as? [[String: Any]])?.first)?["id"] as? String)
        #expect(try stack.nginx.admin("DELETE", "jwt/user/\(id)").status == 200)
        #expect(!token.isEmpty)

        // No silent local fallback when MagicBell fails.
        try stack.magicBell.misbehave("500")
        let failed = try stack.nginx.get("/magicbell-token", headers: [HTTP.basic("demo", "demo")])
        #expect(failed.status == 502 && failed.errorCode == "upstream_error")
        try stack.magicBell.misbehave("hang")
        let timedOut = try stack.nginx.get("/magicbell-token", headers: [HTTP.basic("demo", "demo")])
        #expect(timedOut.status == 504 && timedOut.errorCode == "upstream_timeout")
        try stack.magicBell.misbehave("garbage")
        #expect(try stack.nginx.get("/magicbell-token", headers: [HTTP.basic("demo", "demo")]).errorCode == "upstream_invalid")

        // MagicBell's refusals keep their meaning for the browser: not a 401 (that is the
        // user's login, which the server checked), but upstream_error with MagicBell's
        // status; a 429 or 503 is a 503 with its Retry-After, which the browser helper honours.
        try stack.magicBell.misbehave("empty401")
        let refused = try stack.nginx.get("/magicbell-token", headers: [HTTP.basic("demo", "demo")])
        #expect(refused.status == 502 && refused.errorCode == "upstream_error")
        #expect((refused.json?["error"] as? [String: Any])?["upstream_status"] as? Int == 401)
        for mode in ["429", "html503"] {
            try stack.magicBell.misbehave(mode)
            let busy = try stack.nginx.get("/magicbell-token", headers: [HTTP.basic("demo", "demo")])
            #expect(busy.status == 503 && busy.errorCode == "upstream_error", "\(mode): \(busy.text)")
            #expect(busy.header("Retry-After") == (mode == "429" ? "7" : "30"), "\(mode)")
        }
    }

    /// MagicBell's realtime client reads `api_key` from the token's payload.
    /// The fake issues tokens as MagicBell's own examples show them (RS256,
    /// no top-level api_key): api mode says so once, not per request.
    @Test func mintModeApiWarnsOnceWhenMagicBellsTokenLacksApiKey() throws {
        let stack = try Self.stack(environment: ["MAGICBELL_MINT": "api"])
        for _ in 0..<2 {
            #expect(try stack.nginx.get("/magicbell-token", headers: [HTTP.basic("demo", "demo")]).status == 200)
        }
        let warnings = stack.logLines.filter { ($0["message"] as? String ?? "").contains("api_key") }
        #expect(warnings.count == 1, "\(warnings)")
        #expect(warnings.first?["level"] as? String == "warning")
        #expect((warnings.first?["message"] as? String ?? "").contains("realtime"))

        let withKey = try Self.stack(environment: ["MAGICBELL_MINT": "api"])
        try withKey.magicBell.misbehave("api_key_claim")
        #expect(try withKey.nginx.get("/magicbell-token", headers: [HTTP.basic("demo", "demo")]).status == 200)
        #expect(!withKey.logLines.contains { ($0["message"] as? String ?? "").contains("api_key") })
    }

    @Test func mintModeApiCallsHaveAGateOfTheirOwn() throws {
        // One user reloading in a loop against a slow MagicBell must not hold every worker.
        let stack = try Self.stack(environment: ["MAGICBELL_MINT": "api", "MAGICBELL_UPSTREAM_TIMEOUT": "6",
                                                "MAGICBELL_MINT_MAX_CONCURRENT": "1"])
        try stack.magicBell.misbehave("hang", count: -1)
        let port = stack.nginx.port
        let (users, done) = Results.inParallel(4) { _ in
            try HTTP.request(port: port, "GET", "/magicbell-token", headers: [HTTP.basic("demo", "demo")])
        }
        #expect(Sockets.waitUntil { ((try? stack.magicBell.requests().count) ?? 0) >= 1 }, "one call is hanging upstream")
        // The others were refused at once, and the workers are free: metrics answer.
        #expect(Sockets.waitUntil(timeout: 3) { (0..<4).filter { (try? users.get($0).get().status) == 503 }.count == 3 })
        let refused = try #require((0..<4).compactMap { try? users.get($0).get() }.first { $0.status == 503 })
        #expect(refused.errorCode == "mint_busy")
        #expect(refused.header("Retry-After") == "1")
        #expect(try stack.nginx.admin("GET", "metrics").status == 200)
        #expect(try stack.magicBell.requests().count == 1, "at most MAGICBELL_MINT_MAX_CONCURRENT calls upstream")
        #expect(done.wait(timeout: .now() + 15) == .success)
        let statuses = (0..<4).compactMap { try? users.get($0).get() }.map(\.status).sorted()
        #expect(statuses == [503, 503, 503, 504])
    }
}

extension Stack {
    /// Every JSON log line the responder wrote so far.
    var logLines: [[String: Any]] {
        responder.child.stderr.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
    }

    /// The audit lines the responder wrote so far.
    var auditLines: [[String: Any]] { logLines.filter { $0["event"] as? String == "admin" } }
}
