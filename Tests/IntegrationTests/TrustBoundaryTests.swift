import Glibc
import Foundation
import Testing
import TestSupport

/// The responder acts only on what nginx authorized: the route the location
/// declares, the path nginx matched, the identity its auth checked. Each
/// case is an attack that worked with the earlier snippets and responder,
/// through real nginx with the project's own snippets.
@Suite(.serialized) struct TrustBoundaryTests {

    /// A request with the target exactly as given (`#`, `%2F`, `..` kept).
    static func raw(_ nginx: Nginx, _ method: String, _ target: String, user: (String, String)) throws -> HTTPResponse {
        let (name, password) = user
        let head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(nginx.port)\r\nConnection: close\r\n"
            + "\(HTTP.basic(name, password).0): \(HTTP.basic(name, password).1)\r\n\r\n"
        return try HTTP.exchange(port: nginx.port, Array(head.utf8))
    }

    // MARK: §1 the route comes from the location

    @Test func aMetricsLoginCanNeitherListNorRevokeTokens() throws {
        let stack = try AdminRouteTests.stack(serverExtra: "include snippets/magicbell-metrics.conf;")
        let created = try stack.nginx.admin("POST", "jwt/project", json: #"{"name":"victim"}"#)
        let victim = try #require(created.json?["token_id"] as? String)
        let before = try stack.magicBell.requests().count

        let scraper = ("prometheus", "prometheus")
        let attempts = [
            ("GET", "/magicbell-admin%2Fmetrics#/magicbell-admin/jwt/project"),
            ("DELETE", "/magicbell-admin%2Fmetrics#/magicbell-admin/jwt/project/\(victim)"),
            ("GET", "/magicbell-admin/metrics#/magicbell-admin/jwt/project"),
            ("GET", "/magicbell-admin/jwt/../metrics"),
            ("GET", "/magicbell-admin/jwt/project/..%2F..%2Fmetrics"),
            ("GET", "//magicbell-admin/metrics"),
        ]
        for (method, target) in attempts {
            let answer = try Self.raw(stack.nginx, method, target, user: scraper)
            #expect(answer.json?["data"] == nil, "\(method) \(target) listed tokens: \(answer.text)")
            #expect(answer.status != 200 || answer.text.contains("magicbell_fcgi_"), "\(method) \(target): \(answer.status) \(answer.text)")
        }
        #expect(try stack.magicBell.requests().count == before, "nothing reached MagicBell")
        // The scrape itself still works.
        let scrape = try Self.raw(stack.nginx, "GET", "/magicbell-admin/metrics", user: scraper)
        #expect(scrape.status == 200)
        #expect(scrape.text.contains("magicbell_fcgi_tokens_minted_total"))
        #expect(try Self.raw(stack.nginx, "GET", "/magicbell-admin/metrics#x", user: scraper).errorCode == "invalid_path")
    }

    @Test func anNginxRuleUnderTheAdminRouteCannotBeBypassed() throws {
        // A site that forbids one operation to every admin.
        let stack = try AdminRouteTests.stack(serverExtra: "location = /magicbell-admin/jwt/project { return 403; }")
        let admin = ("admin", "admin")
        #expect(try Self.raw(stack.nginx, "GET", "/magicbell-admin/jwt/project", user: admin).status == 403)
        for target in ["/magicbell-admin%2Fx#/magicbell-admin/jwt/project", "/magicbell-admin/x#/../jwt/project",
                       "/magicbell-admin/jwt/projec%74", "/magicbell-admin/jwt//project", "/magicbell-admin/x/../jwt/project"] {
            let answer = try Self.raw(stack.nginx, "GET", target, user: admin)
            #expect(answer.status != 200, "\(target): \(answer.text)")
        }
        #expect(try stack.magicBell.requests().isEmpty)
    }

    @Test func theAdminLocationNeverMintsAUserToken() throws {
        let stack = try AdminRouteTests.stack()
        for target in ["/magicbell-admin%2Fmagicbell-token", "/magicbell-admin/magicbell-token", "/magicbell-admin/jwt/user/magicbell-token#"] {
            let answer = try Self.raw(stack.nginx, "GET", target, user: ("admin", "admin"))
            #expect(answer.json?["token"] == nil, "\(target): \(answer.text)")
        }
    }

    @Test func aLocationWithoutMagicBellRouteIs404WithAWarningNamingTheParam() throws {
        let stack = try AdminRouteTests.stack(serverExtra: """
            underscores_in_headers on;
            location /other/ { include snippets/magicbell-fastcgi.conf; fastcgi_param MAGICBELL_USER_EXTERNAL_ID "someone"; }
            """)
        let answer = try stack.nginx.get("/other/magicbell-admin/jwt/project", headers: [
            ("MAGICBELL_ROUTE", "admin"), ("Magicbell-Route", "admin"), ("MAGICBELL_ADMIN", "1"),
        ])
        #expect(answer.status == 404)
        #expect(answer.errorCode == "not_found")
        #expect(try stack.nginx.get("/other/magicbell-token").status == 404)
        let warnings = stack.responder.child.stderr.split(separator: "\n").filter { $0.contains("MAGICBELL_ROUTE") }
        #expect(warnings.count == 2, "one line per request: \(warnings)")
        #expect(warnings.allSatisfy { $0.contains(#""level":"warning""#) })
        #expect(try stack.magicBell.requests().isEmpty)
    }

    /// The check every other server's recipe passes too (ServerRecipeTests).
    @Test func anAbsoluteFormTargetIsServedByItsPathAndHEADHasNoBody() throws {
        let stack = try AdminRouteTests.stack(serverExtra: "include snippets/magicbell-metrics.conf;")
        try RecipeChecks.absoluteFormTargetsAndHEAD(stack.nginx)
    }

    // MARK: §3 snippets that hold inside any server block

    @Test func aSiteWideFastCGIMicroCacheNeverServesOneUsersTokenToAnother() throws {
        let scratch = try Scratch()
        let cache = scratch.file("nginx/cache")
        // A PHP micro-cache as sites write it: Cache-Control ignored.
        let stack = try Stack(scratch: scratch, auth: .file("basic.conf"),
                              serverExtra: """
                                fastcgi_cache micro;
                                fastcgi_cache_key $scheme$request_method$host$request_uri;
                                fastcgi_cache_valid 200 301 302 1m;
                                fastcgi_ignore_headers Cache-Control Expires Set-Cookie;
                                """,
                              httpExtra: "fastcgi_cache_path \(cache) levels=1:2 keys_zone=micro:1m max_size=10m inactive=1m;")
        let nginx = stack.nginx
        for user in ["alice", "bob", "alice", "bob"] {
            let answer = try nginx.get("/magicbell-token", headers: [HTTP.basic(user, user)])
            #expect(answer.status == 200)
            let claims = try PyJWT.decode(try #require(answer.json?["token"] as? String))
            #expect(claims["user_external_id"] as? String == user)
        }
    }

    /// Settings a site makes for its own pages that nginx's header filters
    /// apply to every location inheriting them: (server block, http block).
    static let siteWideCacheHeaders: [(server: String, http: String)] = [
        ("expires 1h;", ""),
        ("", "expires max;"),
        (#"add_header Cache-Control "public, max-age=3600";"#, ""),
        (#"add_header Expires "Thu, 01 Jan 2099 00:00:00 GMT" always;"#, ""),
        ("", #"add_header Cache-Control "public" always;"#),
        ("fastcgi_hide_header Cache-Control;", ""),
    ]

    @Test(arguments: siteWideCacheHeaders.indices)
    func aSiteWideCacheHeaderNeverMakesAnAnswerCacheable(_ index: Int) throws {
        let (server, http) = Self.siteWideCacheHeaders[index]
        let stack = try Stack(fake: true, serverExtra: """
            include snippets/magicbell-admin.conf;
            include snippets/magicbell-metrics.conf;
            include snippets/magicbell-health.conf;
            location = /site-page { return 200 "page"; }
            location = /site-app { fastcgi_pass magicbell_fcgi; }
            \(server)
            """, httpExtra: http)
        let nginx = stack.nginx
        let answers = [
            ("token", try nginx.get("/magicbell-token", headers: [HTTP.basic("alice", "alice")])),
            ("admin list", try nginx.admin("GET", "jwt/project")),
            ("admin console", try nginx.admin("GET", "")),
            ("admin error", try nginx.admin("GET", "jwt/nothing-here")),
            ("metrics", try nginx.get("/magicbell-admin/metrics", headers: [HTTP.basic("prometheus", "prometheus")])),
            ("health check", try nginx.get("/magicbell-health")),
        ]
        for (name, answer) in answers {
            let cacheControl = answer.headers.filter { $0.name.lowercased() == "cache-control" }.map(\.value)
            #expect(cacheControl == ["no-store"], "\(server)\(http): the \(name) (\(answer.status)) says Cache-Control \(cacheControl)")
            #expect(answer.header("Expires") == nil, "\(server)\(http): the \(name) says Expires \(answer.header("Expires") ?? "")")
        }
        #expect(answers[0].1.status == 200 && answers[1].1.status == 200 && answers[4].1.status == 200 && answers[5].1.status == 200)
        // The setting is live: the site's own page, or its own FastCGI
        // location (an answer of the responder's), shows it.
        func cacheHeaders(_ answer: HTTPResponse) -> [String] {
            answer.headers.filter { ["cache-control", "expires"].contains($0.name.lowercased()) }.map { "\($0.name): \($0.value)" }
        }
        let page = cacheHeaders(try nginx.get("/site-page")), app = cacheHeaders(try nginx.get("/site-app"))
        #expect(!page.isEmpty || app != ["Cache-Control: no-store"], "\(server)\(http) changed nothing: \(page) \(app)")
    }

    @Test func aSiteWideProxyCacheNeverCachesTheSessionCheck() throws {
        let scratch = try Scratch()
        let authPort = try Sockets.freePort()
        let cache = scratch.file("nginx/proxy-cache")
        let stack = try Stack(scratch: scratch, auth: .file("app-session.conf"),
                              serverExtra: """
                                proxy_cache site;
                                proxy_cache_valid 200 1m;
                                \(try AuthBackend.appLocation(port: authPort))
                                """,
                              httpExtra: "proxy_cache_path \(cache) levels=1:2 keys_zone=site:1m max_size=10m inactive=1m;\n"
                                + AuthBackend.server(port: authPort))
        let nginx = stack.nginx
        let first = try nginx.get("/magicbell-token", headers: [("Cookie", "session=user-1")])
        #expect(try PyJWT.decode(try #require(first.json?["token"] as? String))["user_external_id"] as? String == "user-1")
        let anonymous = try nginx.get("/magicbell-token")
        #expect(anonymous.status == 401, "no session, yet: \(anonymous.text)")
        let second = try nginx.get("/magicbell-token", headers: [("Cookie", "session=user-2")])
        #expect(try PyJWT.decode(try #require(second.json?["token"] as? String))["user_external_id"] as? String == "user-2")
    }

    @Test func theSessionCheckNeverSeesTheClientsOwnIdentityHeaders() throws {
        // The app under test answers with whatever X-User-Id it is sent, as
        // an app behind a header-trusting proxy would.
        let scratch = try Scratch()
        let authPort = try Sockets.freePort()
        let echo = """
            server {
                listen 127.0.0.1:\(authPort);
                location = /auth/whoami {
                    if ($http_x_user_id) { add_header X-User-Id $http_x_user_id always; return 200; }
                    return 401;
                }
            }
            """
        let stack = try Stack(scratch: scratch, auth: .file("app-session.conf"),
                              serverExtra: try AuthBackend.appLocation(port: authPort), httpExtra: echo)
        let nginx = stack.nginx
        let answer = try nginx.get("/magicbell-token", headers: [("X-User-Id", "mallory"), ("X-User-Email", "m@example.com")])
        #expect(answer.status == 401, "\(answer.text)")
    }

    @Test func satisfyAnyInTheServerBlockGrantsNoMadeUpUserOrAdmin() throws {
        let stack = try AdminRouteTests.stack(serverExtra: "include snippets/magicbell-metrics.conf;\nsatisfy any;\nallow 127.0.0.1;\ndeny all;")
        let madeUp = try stack.nginx.get("/magicbell-token", headers: [HTTP.basic("mallory", "anything")])
        #expect(madeUp.status == 401, "a token for mallory: \(madeUp.text)")
        #expect(try stack.nginx.get("/magicbell-token", headers: [HTTP.basic("alice", "alice")]).status == 200)
        let admin = try Self.raw(stack.nginx, "GET", "/magicbell-admin/jwt/project", user: ("mallory", "anything"))
        #expect(admin.status == 401, "admin for mallory: \(admin.text)")
        let metrics = try stack.nginx.get("/magicbell-admin/metrics", headers: [HTTP.basic("mallory", "anything")])
        #expect(metrics.status == 401)
        #expect(try stack.magicBell.requests().isEmpty)
    }

    @Test func satisfyAnyInTheServerBlockDoesNotSkipTheSessionCheck() throws {
        let scratch = try Scratch()
        let authPort = try Sockets.freePort()
        let stack = try Stack(scratch: scratch, auth: .file("app-session.conf"),
                              serverExtra: "satisfy any;\nallow 127.0.0.1;\ndeny all;\n" + (try AuthBackend.appLocation(port: authPort)),
                              httpExtra: AuthBackend.server(port: authPort))
        let nginx = stack.nginx
        let answer = try nginx.get("/magicbell-token", headers: [("Cookie", "session=user-7")])
        #expect(answer.status == 200, "\(answer.text)")
        #expect(try PyJWT.decode(try #require(answer.json?["token"] as? String))["user_external_id"] as? String == "user-7")
        #expect(try nginx.get("/magicbell-token").status == 401)
    }

    @Test func aSameOriginAdminPostOnANonDefaultPortPassesBehindDebiansFastCGIParams() throws {
        // The admin location as a site would write it around the snippets,
        // with Debian's fastcgi_params (HTTP_HOST $host: no port) included.
        let adminLocation = try String(contentsOfFile: Project.root.appendingPathComponent("nginx/magicbell-admin.conf").path, encoding: .utf8)
            .replacingOccurrences(of: "location /magicbell-admin/ {", with: "location /magicbell-admin/ {\n    include fastcgi_params;")
        let scratch = try Scratch()
        let fake = try FakeMagicBell()
        let responder = try Responder(scratch: scratch, environment: Responder.environment([
            "MAGICBELL_PROJECT_TOKEN": fake.token, "MAGICBELL_API_URL": fake.baseURL.absoluteString]))
        let nginx = try Nginx(scratch: scratch, authVariant: .file("basic.conf"), upstream: "unix:\(responder.socketPath!)",
                              serverExtra: adminLocation)
        let origin = "http://127.0.0.1:\(nginx.port)"
        let created = try nginx.admin("POST", "jwt/project", json: #"{"name":"console"}"#,
                                      headers: [("Origin", origin), ("Sec-Fetch-Site", "same-origin")])
        #expect(created.status == 201, "\(created.text)")
        let foreign = try nginx.admin("POST", "jwt/project", json: #"{"name":"x"}"#, headers: [("Origin", "http://127.0.0.1")])
        #expect(foreign.errorCode == "cross_origin")
    }
}
