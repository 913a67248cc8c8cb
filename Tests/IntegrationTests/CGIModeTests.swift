import Foundation
import Testing
import TestSupport

/// `magicbell-fcgi` run as a CGI/1.1 program (RFC 3875), as a web server
/// runs it: meta-variables in the environment, the body on stdin, the
/// answer on stdout.
@Suite struct CGIModeTests {
    /// What a CGI program printed: its `Status:` and headers, and its body.
    struct Answer {
        let status: Int
        let headers: [String: String]
        let body: String
        let stderr: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
        var errorMessage: String { (json["error"] as? [String: Any])?["message"] as? String ?? "" }
    }

    static let server = [
        "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1", "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "/magicbell-token", "REQUEST_URI": "/magicbell-token",
        "MAGICBELL_ROUTE": "token", "MAGICBELL_API_KEY": Project.apiKey, "MAGICBELL_SECRET_KEY": Project.secret,
    ]

    /// `hosts`: a hosts(5) file the program resolves names with, mounted
    /// over /etc/hosts in a mount namespace of its own (unshare(1), as root;
    /// the machine's file is untouched), so that a name such as
    /// foo.example.com reaches a fake on 127.0.0.1 through the program's own
    /// resolver, whichever HTTP client it uses.
    func cgi(_ environment: [String: String], arguments: [String] = [], stdin: String? = nil, hosts: String? = nil) throws -> Answer {
        let (program, prefix) = hosts.map {
            ("/usr/bin/unshare", ["--mount", "/bin/sh", "-c", #"mount --bind "$0" /etc/hosts && exec "$@""#, $0, Project.binary])
        } ?? (Project.binary, [])
        let result = try runProcess(program, prefix + arguments, environment: environment, stdin: stdin)
        #expect(result.status == 0, "a CGI program that answered exits 0: \(result.stderr)")
        let parts = result.stdout.components(separatedBy: "\r\n\r\n")
        let head = parts[0].components(separatedBy: "\r\n")
        guard let first = head.first, first.hasPrefix("Status: "), let status = Int(first.dropFirst(8).prefix(3)) else {
            throw Sockets.Failure(description: "no Status line (RFC 3875 §6.3.3): \(result.stdout)")
        }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            let pair = line.split(separator: ":", maxSplits: 1)
            if pair.count == 2 { headers[pair[0].lowercased()] = pair[1].trimmingCharacters(in: .whitespaces) }
        }
        return Answer(status: status, headers: headers, body: parts.dropFirst().joined(separator: "\r\n\r\n"), stderr: result.stderr)
    }

    /// GET /magicbell-admin/jwt/project, which `fake` answers.
    static func listProjectTokens(_ fake: FakeMagicBell) -> [String: String] {
        server.merging([
            "MAGICBELL_ROUTE": "admin", "SCRIPT_NAME": "/magicbell-admin/jwt/project",
            "REQUEST_URI": "/magicbell-admin/jwt/project", "MAGICBELL_USER_EXTERNAL_ID": "ops",
        ].merging(Responder.upstream(fake)) { $1 }) { $1 }
    }

    @Test func aTokenForTheServerSetIdentityThatPyJWTVerifies() throws {
        let answer = try cgi(Self.server.merging(["MAGICBELL_USER_EXTERNAL_ID": "cgi-user", "MAGICBELL_USER_EMAIL": "c@example.com"]) { $1 })
        #expect(answer.status == 200)
        #expect(answer.headers["content-type"] == "application/json" && answer.headers["cache-control"] == "no-store")
        #expect(Int(answer.headers["content-length"] ?? "") == answer.body.utf8.count)
        let claims = try PyJWT.decode(try #require(answer.json["token"] as? String))
        #expect(claims["user_external_id"] as? String == "cgi-user" && claims["user_email"] as? String == "c@example.com")
    }

    /// Issue 21: a CGI token request never loads libcurl (nor its thirty
    /// libraries); an admin call loads it with dlopen. ld.so's
    /// LD_DEBUG=files names every object it maps, at start or by dlopen.
    @Test func onlyAMagicBellCallLoadsLibcurl() throws {
        let token = try cgi(Self.server.merging(["MAGICBELL_USER_EXTERNAL_ID": "u", "LD_DEBUG": "files"]) { $1 })
        #expect(token.status == 200)
        #expect(token.stderr.contains("file=libfcgi.so"), "LD_DEBUG names the libraries: \(token.stderr.prefix(300))")
        #expect(!token.stderr.contains("libcurl"), "a token request loaded libcurl")
        let fake = try FakeMagicBell()
        let admin = try cgi(Self.listProjectTokens(fake).merging(["LD_DEBUG": "files"]) { $1 })
        #expect(admin.status == 200, "\(admin.body)")
        #expect(admin.stderr.contains("file=libcurl.so.4"), "\(admin.stderr.suffix(300))")
    }

    /// Issue 21, httpoxy: a CGI program's environment is the web server's
    /// params, so no proxy variable there is ever used (libcurl would read
    /// them itself); only the server-set MAGICBELL_HTTPS_PROXY is.
    @Test func aProxyComesOnlyFromMagicBellHTTPSProxy() throws {
        let fake = try FakeMagicBell()
        let dead = "http://127.0.0.1:9"
        let planted = ["HTTPS_PROXY": dead, "https_proxy": dead, "http_proxy": dead, "HTTP_PROXY": dead, "ALL_PROXY": dead, "all_proxy": dead]
        let direct = try cgi(Self.listProjectTokens(fake).merging(planted) { $1 })
        #expect(direct.status == 200, "a proxy variable of the request was used: \(direct.body)")

        // Plain http (loopback only) never goes through a proxy, even one set.
        let plain = try cgi(Self.listProjectTokens(fake).merging(["MAGICBELL_HTTPS_PROXY": dead]) { $1 })
        #expect(plain.status == 200, "\(plain.body)")

        // MagicBell over https: through the server-set proxy, a CONNECT tunnel.
        let certificate = try TestCertificates.make("IP:127.0.0.1")
        let secure = try FakeMagicBell(tls: certificate)
        let proxy = try ConnectProxy()
        var environment = Self.listProjectTokens(secure).merging(planted) { $1 }
        environment["SSL_CERT_FILE"] = certificate.certificate
        environment["MAGICBELL_HTTPS_PROXY"] = proxy.url
        let proxied = try cgi(environment)
        #expect(proxied.status == 200, "\(proxied.body)")
        #expect(proxy.tunnels == ["127.0.0.1:\(secure.port)"], "\(proxy.requests)")
        environment["MAGICBELL_HTTPS_PROXY"] = dead
        let refused = try cgi(environment)
        #expect(refused.status == 502 && refused.errorCode == "upstream_unreachable", "\(refused.body)")
    }

    @Test func argvIsIgnoredAsAServerPassesAnIsindexQuery() throws {
        // RFC 3875 §4.4: `GET /magicbell-token?serve` runs the program with argv ["serve"].
        let environment = Self.server.merging(["MAGICBELL_USER_EXTERNAL_ID": "u", "QUERY_STRING": "serve",
                                               "REQUEST_URI": "/magicbell-token?serve"]) { $1 }
        #expect(try cgi(environment, arguments: ["serve"]).status == 200)
        #expect(try cgi(environment, arguments: ["--help"]).status == 200)
    }

    @Test func theSameRulesAsServe() throws {
        #expect(try cgi(Self.server).errorCode == "unauthenticated")
        let noRoute = try cgi(Self.server.merging(["MAGICBELL_USER_EXTERNAL_ID": "u"]) { $1 }.filter { $0.key != "MAGICBELL_ROUTE" })
        #expect(noRoute.status == 404 && noRoute.stderr.contains("MAGICBELL_ROUTE"))
        // The path the server matched is SCRIPT_NAME + PATH_INFO (RFC 3875 §4.1.13, §4.1.5), and the raw target must decode to it.
        let ambiguous = try cgi(Self.server.merging(["MAGICBELL_USER_EXTERNAL_ID": "u", "REQUEST_URI": "/magicbell-token%2F..%2Fx"]) { $1 })
        #expect(ambiguous.status == 400 && ambiguous.errorCode == "invalid_path")
        let mounted = try cgi(Self.server.merging(["MAGICBELL_USER_EXTERNAL_ID": "u", "SCRIPT_NAME": "/cgi-bin/magicbell-fcgi",
                                                   "PATH_INFO": "/token", "REQUEST_URI": "/cgi-bin/magicbell-fcgi/token"]) { $1 })
        #expect(mounted.status == 200)
        #expect(try cgi(Self.server.merging(["MAGICBELL_USER_EXTERNAL_ID": "u", "REQUEST_METHOD": "DELETE"]) { $1 }).status == 405)
    }

    @Test func aBrokenConfigurationIsA500AndOneLogLineWithoutTheSecret() throws {
        var environment = Self.server.merging(["MAGICBELL_USER_EXTERNAL_ID": "u", "MAGICBELL_TOKEN_TTL": "nonsense"]) { $1 }
        let answer = try cgi(environment)
        #expect(answer.status == 500 && answer.errorCode == "misconfigured")
        #expect(answer.stderr.contains("MAGICBELL_TOKEN_TTL") && !answer.stderr.contains(Project.secret))
        #expect(!answer.body.contains("MAGICBELL_TOKEN_TTL"), "the reason is for the error log, not the client")

        // The secret from a file, as the docs recommend for CGI.
        let scratch = try Scratch()
        try Project.secret.write(toFile: scratch.file("secret"), atomically: true, encoding: .utf8)
        environment["MAGICBELL_TOKEN_TTL"] = nil
        environment["MAGICBELL_SECRET_KEY"] = nil
        environment["MAGICBELL_SECRET_KEY_FILE"] = scratch.file("secret")
        #expect(try cgi(environment).status == 200)
    }

    /// Issue 20 §3: CGI mode loads the configuration for each request, so
    /// the health route answers for the configuration as it is now: 200
    /// while it loads, 503 `not_ready` while it does not (each broken
    /// variable, the secret file missing), to HEAD with the head alone.
    @Test func theHealthRouteIs503NotReadyWhileTheConfigurationCannotLoad() throws {
        let health = Self.server.merging(["MAGICBELL_ROUTE": "health", "SCRIPT_NAME": "/magicbell-health",
                                          "REQUEST_URI": "/magicbell-health"]) { $1 }
        let ready = try cgi(health)
        #expect(ready.status == 200 && ready.body == #"{"status":"ok"}"# && ready.headers["cache-control"] == "no-store")
        let scratch = try Scratch()
        var missingFile = health
        missingFile["MAGICBELL_SECRET_KEY"] = nil
        missingFile["MAGICBELL_SECRET_KEY_FILE"] = scratch.file("no-such-secret")
        var noSecret = health
        noSecret["MAGICBELL_SECRET_KEY"] = nil
        for broken in [missingFile, noSecret, health.merging(["MAGICBELL_TOKEN_TTL": "nonsense"]) { $1 },
                       health.merging(["MAGICBELL_MINT": "api"]) { $1 }, health.filter { $0.key != "MAGICBELL_API_KEY" }] {
            let answer = try cgi(broken)
            #expect(answer.status == 503 && answer.errorCode == "not_ready", "\(answer.status) \(answer.body)")
            #expect(answer.headers["cache-control"] == "no-store")
            #expect(answer.stderr.contains("the configuration is invalid"), "the reason is in the server's log")
            let head = try cgi(broken.merging(["REQUEST_METHOD": "HEAD"]) { $1 })
            #expect(head.status == 503 && head.body.isEmpty)
        }
        // The token route, broken the same way, is still the server's fault.
        #expect(try cgi(missingFile.merging(["MAGICBELL_ROUTE": "token", "SCRIPT_NAME": "/magicbell-token", "REQUEST_URI": "/magicbell-token",
                                             "MAGICBELL_USER_EXTERNAL_ID": "u"]) { $1 }).status == 500)
    }

    /// MagicBell over HTTPS through the real binary: the certificate is
    /// checked against the trust store OpenSSL's SSL_CERT_FILE names (as
    /// docs/configuration.md says), and a certificate it does not trust is a
    /// 502 that says why, with nothing sent.
    @Test func adminCallsOverHTTPSTrustWhatSSLCertFileNames() throws {
        let certificate = try TestCertificates.make("IP:127.0.0.1")
        let fake = try FakeMagicBell(tls: certificate)
        #expect(fake.baseURL.absoluteString.hasPrefix("https://127.0.0.1:"))
        var environment = Self.listProjectTokens(fake)
        environment["SSL_CERT_FILE"] = certificate.certificate
        let listed = try cgi(environment)
        #expect(listed.status == 200, "\(listed.body) \(listed.stderr)")
        #expect(listed.json["data"] as? [Any] != nil)

        environment["SSL_CERT_FILE"] = try TestCertificates.make("IP:127.0.0.1").certificate
        let refused = try cgi(environment)
        #expect(refused.status == 502 && refused.errorCode == "upstream_unreachable")
        #expect(refused.errorMessage.contains("certificate"), "\(refused.body)")
        #expect(!refused.stderr.contains(fake.token) && !refused.body.contains(fake.token))
    }

    @Test func theAdminRouteReadsExactlyContentLengthBytes() throws {
        let fake = try FakeMagicBell()
        let body = #"{"name":"cgi"}"#
        let environment = Self.server.merging([
            "MAGICBELL_ROUTE": "admin", "REQUEST_METHOD": "POST", "SCRIPT_NAME": "/magicbell-admin/jwt/project",
            "REQUEST_URI": "/magicbell-admin/jwt/project", "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": String(body.utf8.count), "MAGICBELL_USER_EXTERNAL_ID": "ops",
        ].merging(Responder.upstream(fake)) { $1 }) { $1 }
        // §4.2: bytes after CONTENT_LENGTH are not the body.
        let answer = try cgi(environment, stdin: body + "garbage that is not read")
        #expect(answer.status == 201, "\(answer.body)")
        #expect(try fake.requests().map { $0["body"] as? String } == [body])
        #expect(answer.stderr.contains(#""event":"admin""#), "the audit line, as serve writes it")
        #expect(!answer.stderr.contains(fake.token))

        var short = environment
        short["CONTENT_LENGTH"] = "100"
        #expect(try cgi(short, stdin: body).errorCode == "incomplete_body")
    }
}
