import Glibc
import Foundation
import Testing
import TestSupport

/// The health route (issue 20 §3) through real nginx with
/// nginx/magicbell-health.conf, in a server block that asks every other
/// location for a login and caches everything; and its readiness in each
/// mode: `serve` (ready whenever it answers, a refused reload included),
/// CGI (503 `not_ready` while the configuration cannot load).
@Suite(.serialized) struct HealthRouteTests {
    /// A site that logs in every location, twice (auth_basic, and an
    /// auth_request that refuses a request without credentials), and caches
    /// every answer.
    static let crowdedServer = """
        include snippets/magicbell-health.conf;
        auth_basic "the whole site";
        auth_basic_user_file htpasswd;
        auth_request /site-auth;
        location = /site-auth {
            internal;
            if ($http_authorization = "") { return 401; }
            return 204;
        }
        expires 1h;
        add_header Cache-Control "public, max-age=600";
        fastcgi_hide_header Cache-Control;
        """

    @Test func nginxAnswersTheHealthCheckWithoutALoginNeverCached() throws {
        let stack = try Stack(serverExtra: Self.crowdedServer)
        try RecipeChecks.healthWithoutALogin(stack.nginx, log: readText("\(stack.nginx.prefix)/logs/error.log"))
        // The rest of the site still asks for its login; the token route its own.
        #expect(try stack.nginx.get("/elsewhere").status == 401)
        #expect(try stack.nginx.get("/magicbell-token", headers: RecipeChecks.spoofed).status == 401)
        #expect(try stack.nginx.get("/magicbell-token", headers: [RecipeChecks.demo]).status == 200)
        // The responder saw no identity and no client header (the snippet sends none).
        #expect(!stack.responder.child.stderr.contains("mallory"))
    }

    /// `serve` exists only with a configuration that loaded; a refused
    /// reload keeps the one in force, which still mints: still ready.
    @Test func serveStaysReadyAcrossARefusedReload() throws {
        let scratch = try Scratch()
        let secretFile = scratch.file("secret")
        let secret = Canary.secret("health-secret")
        try ReloadTests.rotate(secretFile, to: secret + "\n")
        let socket = scratch.file("fcgi.sock")
        let responder = try Responder(scratch: scratch, arguments: ["serve", "--socket", socket, "--workers", "4"],
                                      environment: ReloadTests.environment(secretFile: secretFile))
        let nginx = try Nginx(scratch: scratch, authVariant: .file("basic.conf"), upstream: "unix:\(socket)",
                              serverExtra: "include snippets/magicbell-health.conf;")
        #expect(try nginx.get("/magicbell-health").status == 200)
        unlink(secretFile)
        responder.child.signal(SIGHUP)
        #expect(Sockets.waitUntil { responder.child.stderr.contains("configuration reload refused") })
        let health = try nginx.get("/magicbell-health")
        #expect(health.status == 200 && health.text == #"{"status":"ok"}"#)
        let token = try #require(ReloadTests.token(try nginx.get("/magicbell-token", headers: [RecipeChecks.demo])))
        #expect(ReloadTests.verifies(token, with: secret), "the configuration in force mints")

        // Not running is nginx's own 502: a load balancer counts it as down too.
        responder.child.stop()
        #expect(try nginx.get("/magicbell-health").status == 502)
    }
}
