import Glibc
import Foundation
import Testing
import TestSupport

/// CGI mode through a real server: nginx + fcgiwrap (Debian's packages),
/// with the recipe from examples/fcgiwrap/ as users install it.
@Suite(.serialized) struct FcgiwrapTests {
    struct CGIStack {
        let scratch: Scratch
        let fcgiwrap: Child
        let nginx: Nginx

        /// - Parameter secretKeyFile: where the recipe's secret file is (default: a scratch file holding it).
        /// - Parameter site: the rest of the server block (default: the crowded one of HealthRouteTests).
        init(secretKeyFile: String? = nil, site: String = HealthRouteTests.crowdedServer) throws {
            scratch = try Scratch()
            let secretFile = try secretKeyFile ?? scratch.secretKeyFile()
            let socket = scratch.file("fcgiwrap.sock")
            fcgiwrap = try Child("/usr/sbin/fcgiwrap", ["-s", "unix:\(socket)"], environment: [:],
                                 stderrPath: scratch.file("fcgiwrap.stderr"), cleanSignals: true)
            guard Sockets.waitUntil({ (try? Sockets.connectUnix(path: socket)).map { close($0); return true } ?? false }) else {
                throw Sockets.Failure(description: "fcgiwrap did not start: \(fcgiwrap.stderr)")
            }
            var recipe = try String(contentsOfFile: Project.root.appendingPathComponent("examples/fcgiwrap/magicbell-cgi.conf").path,
                                    encoding: .utf8)
            for (placeholder, value) in [("/run/fcgiwrap.socket", socket), ("/usr/bin/magicbell-fcgi", Project.binary),
                                         ("pk_your_project_api_key", Project.apiKey), ("/etc/magicbell-fcgi/secret-key", secretFile)] {
                #expect(recipe.contains(placeholder), "the recipe has \(placeholder)")
                recipe = recipe.replacingOccurrences(of: placeholder, with: value)
            }
            // fcgiwrap hands the program the params only: the test run's
            // sanitizer settings travel the same way (not part of the recipe).
            let sanitizer = withSanitizerOptions([:]).map { "fastcgi_param \($0.key) \"\($0.value)\";" }.joined(separator: "\n")
            recipe = recipe.replacingOccurrences(of: "fastcgi_pass unix:", with: "\(sanitizer)\nfastcgi_pass unix:")
            nginx = try Nginx(scratch: scratch, authVariant: .file("basic.conf"), upstream: "unix:\(scratch.file("unused.sock"))",
                              serverExtra: "underscores_in_headers on;\n" + site.replacingOccurrences(
                                  of: "include snippets/magicbell-health.conf;", with: "") + "\n" + recipe,
                              tokenSnippet: false)
        }
    }

    @Test func theAuthenticatedUserGetsATokenThatPyJWTVerifies() throws {
        let stack = try CGIStack()
        let response = try stack.nginx.get("/magicbell-token", headers: [HTTP.basic("demo", "demo")])
        #expect(response.status == 200, "\(response.text) \(stack.fcgiwrap.stderr)")
        // In a site that caches everything: the program's own no-store, alone.
        #expect(response.headers.filter { $0.name.lowercased() == "cache-control" }.map(\.value) == ["no-store"])
        #expect(response.header("Expires") == nil)
        let claims = try PyJWT.decode(try #require(response.json?["token"] as? String))
        #expect(claims["user_external_id"] as? String == "demo")
        #expect(claims["api_key"] as? String == Project.apiKey)
    }

    @Test func aWrongPasswordIsRefusedAndClientHeadersChangeNothing() throws {
        let stack = try CGIStack()
        #expect(try stack.nginx.get("/magicbell-token").status == 401)
        #expect(try stack.nginx.get("/magicbell-token", headers: [HTTP.basic("demo", "wrong")]).status == 401)
        let spoofed = [
            HTTP.basic("demo", "demo"),
            ("MagicBell-User-External-Id", "mallory"), ("MAGICBELL_USER_EXTERNAL_ID", "mallory"),
            ("MagicBell-User-Email", "mallory@example.com"), ("X-Remote-User", "mallory"), ("Remote-User", "mallory"),
            ("MagicBell-Route", "admin"), ("MAGICBELL_ROUTE", "admin"), ("Gateway-Interface", "x"),
            ("MagicBell-Secret-Key-File", "/etc/passwd"), ("Document-Uri", "/magicbell-admin/jwt/project"),
        ]
        let response = try stack.nginx.get("/magicbell-token", headers: spoofed)
        #expect(response.status == 200, "\(response.text)")
        let claims = try PyJWT.decode(try #require(response.json?["token"] as? String))
        #expect(claims["user_external_id"] as? String == "demo")
        #expect(claims["user_email"] is NSNull)
    }

    /// Issue 20 §3: the recipe's health location, without a login; 503
    /// not_ready while the configuration cannot load (its secret file missing).
    @Test func theHealthCheckNeedsNoLoginAndIsNotReadyWhileTheConfigurationCannotLoad() throws {
        let stack = try CGIStack()
        try RecipeChecks.healthWithoutALogin(stack.nginx, log: stack.fcgiwrap.stderr)
        let broken = try CGIStack(secretKeyFile: "/nonexistent/secret-key")
        let health = try broken.nginx.get("/magicbell-health")
        #expect(health.status == 503 && health.errorCode == "not_ready", "\(health.status) \(health.text)")
        #expect(try broken.nginx.get("/magicbell-token", headers: [HTTP.basic("demo", "demo")]).status == 500)
    }

    @Test func aShortLoadHasNoErrors() throws {
        let stack = try CGIStack()
        _ = try RecipeChecks.shortLoadWithoutErrors(stack.nginx, "nginx + fcgiwrap (CGI)", connections: 2)
    }
}
