import Foundation
import Testing
import TestSupport

/// What every server's recipe must guarantee (issue 13), run against each
/// recipe with Debian's package: the shared `RecipeChecks`. What is particular
/// to one server is in that server's own suite (ApacheTests, CaddyTests…).
@Suite(.serialized) struct ServerRecipeTests {
    /// The FastCGI recipes, each in front of `serve`.
    enum FastCGI: String, CaseIterable, CustomTestStringConvertible {
        case apache = "apache mod_proxy_fcgi", lighttpd = "lighttpd mod_fastcgi", caddy = "caddy fastcgi transport",
             h2o = "h2o fastcgi", haproxy = "haproxy fcgi-app"

        var testDescription: String { rawValue }

        /// The server with its recipe; the backend lives as long as the server.
        func start() throws -> RecipeChecks.Served<ServerProcess> {
            try RecipeChecks.Served { backend in
                switch self {
                case .apache:
                    try Apache(scratch: backend.scratch, recipe: "magicbell-fcgi.conf", defines: ["MAGICBELL_SOCKET": backend.socket])
                case .lighttpd:
                    try Lighttpd(scratch: backend.scratch, recipe: "magicbell-fcgi.conf", variables: ["magicbell_socket": backend.socket])
                case .caddy: try Caddy(scratch: backend.scratch, socket: backend.socket)
                case .h2o: try H2O(scratch: backend.scratch, socket: backend.socket)
                case .haproxy: try HAProxy(scratch: backend.scratch, socket: backend.socket)
                }
            }
        }
    }

    /// The CGI recipes, each running the binary as a CGI program.
    enum CGI: String, CaseIterable, CustomTestStringConvertible {
        case apache = "apache mod_cgid", lighttpd = "lighttpd mod_cgi"

        var testDescription: String { rawValue }

        /// - Parameter secretKeyFile: where the recipe's secret file is (default: a scratch file holding it).
        func start(secretKeyFile: String? = nil) throws -> ServerProcess {
            let scratch = try Scratch()
            let edits = ["pk_your_project_api_key": Project.apiKey,
                         "/etc/magicbell-fcgi/secret-key": try secretKeyFile ?? scratch.secretKeyFile()]
            switch self {
            case .apache:
                return try Apache(scratch: scratch, recipe: "magicbell-cgi.conf", defines: ["MAGICBELL_PROGRAM": Project.binary],
                                  replacing: edits)
            case .lighttpd:
                return try Lighttpd(scratch: scratch, recipe: "magicbell-cgi.conf", variables: ["magicbell_program": Project.binary],
                                    replacing: edits)
            }
        }
    }

    @Test(arguments: FastCGI.allCases) func aTokenForTheAuthenticatedUserOnly(_ recipe: FastCGI) throws {
        let stack = try recipe.start()
        try RecipeChecks.tokenForTheAuthenticatedUserOnly(stack.server, log: stack.server.errorLog)
    }

    @Test(arguments: FastCGI.allCases) func adminCreateListRevokeAndAScraperThatSeesOnlyMetrics(_ recipe: FastCGI) throws {
        let stack = try recipe.start()
        try RecipeChecks.adminCreateListRevokeAndAScraperThatSeesOnlyMetrics(stack.server, stack.backend)
    }

    @Test(arguments: FastCGI.allCases) func anAbsoluteFormTargetIsServedByItsPathAndHEADHasNoBody(_ recipe: FastCGI) throws {
        let stack = try recipe.start()
        try RecipeChecks.absoluteFormTargetsAndHEAD(stack.server, absoluteFormRouted: recipe != .h2o)
    }

    @Test(arguments: FastCGI.allCases) func aHealthCheckWithoutALogin(_ recipe: FastCGI) throws {
        let stack = try recipe.start()
        try RecipeChecks.healthWithoutALogin(stack.server, log: stack.server.errorLog)
    }

    /// bench/servers runs these (and nginx's) with the release binary.
    @Test(arguments: FastCGI.allCases) func aShortLoadHasNoErrors(_ recipe: FastCGI) throws {
        let stack = try recipe.start()
        _ = try RecipeChecks.shortLoadWithoutErrors(stack.server, recipe.rawValue)
    }

    @Test(arguments: CGI.allCases) func cgi_aTokenForTheAuthenticatedUserOnly(_ recipe: CGI) throws {
        let server = try recipe.start()
        try RecipeChecks.cgiTokenForTheAuthenticatedUserOnly(server, log: server.errorLog)
    }

    @Test(arguments: CGI.allCases) func cgi_aHealthCheckWithoutALogin(_ recipe: CGI) throws {
        let server = try recipe.start()
        try RecipeChecks.healthWithoutALogin(server, log: server.errorLog)
    }

    /// CGI mode loads the configuration for each request: with the
    /// recipe's secret file missing, the health check is 503 not_ready.
    @Test(arguments: CGI.allCases) func cgi_theHealthCheckIsNotReadyWhileTheConfigurationCannotLoad(_ recipe: CGI) throws {
        let server = try recipe.start(secretKeyFile: "/nonexistent/secret-key")
        let health = try server.get("/magicbell-health")
        #expect(health.status == 503 && health.errorCode == "not_ready", "\(health.status) \(health.text) \(server.errorLog)")
        #expect(health.header("Cache-Control") == "no-store")
        #expect(try server.get("/magicbell-token", headers: [RecipeChecks.demo]).status == 500)
    }

    @Test(arguments: CGI.allCases) func cgi_aShortLoadHasNoErrors(_ recipe: CGI) throws {
        let server = try recipe.start()
        _ = try RecipeChecks.shortLoadWithoutErrors(server, recipe.rawValue, connections: 2)
    }
}
