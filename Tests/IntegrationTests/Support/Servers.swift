import Glibc
import Foundation
import TestSupport

extension Sockets {
    /// Waits until a server the test started accepts on `port`; throws with
    /// its stderr (and `log`) if it never does.
    static func waitForListener(port: UInt16, _ name: String, _ child: Child, log: () -> String = { "" }) throws {
        guard waitUntil({ (try? connectTCP(port: port)).map { close($0); return true } ?? false }) else {
            throw Failure(description: "\(name) did not start: \(child.stderr) \(log())")
        }
    }
}

/// A web server the tests started on 127.0.0.1, with the project's recipe.
protocol WebServer {
    var port: UInt16 { get }
}

extension WebServer {
    func get(_ path: String, _ method: String = "GET", headers: [(String, String)] = []) throws -> HTTPResponse {
        try HTTP.request(port: port, method, path, headers: headers)
    }

    /// An admin call with the admin's credentials.
    func admin(_ method: String, _ path: String, json: String? = nil, contentType: String = "application/json",
               headers: [(String, String)] = []) throws -> HTTPResponse {
        var all = [HTTP.basic("admin", "admin")] + headers
        if json != nil { all.append(("Content-Type", contentType)) }
        return try HTTP.request(port: port, method, "/magicbell-admin/" + path, headers: all, body: Array((json ?? "").utf8))
    }
}

/// One server process the test started, under a directory of its own in
/// the scratch directory, listening on a free port of 127.0.0.1.
class ServerProcess: WebServer, @unchecked Sendable {
    // @unchecked: `port`, `root` and `scratch` are set in init; `child` once,
    // by `start`, during the subclass's init; all are only read afterwards.
    let port: UInt16
    let root: String
    /// Kept until the server has stopped.
    let scratch: Scratch
    private(set) var child: Child!

    init(scratch: Scratch, name: String) throws {
        self.scratch = scratch
        root = scratch.file(name)
        port = try Sockets.freePort()
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    /// Starts the server (with no signal blocked: see `Child`) and waits until it listens.
    func start(_ executable: String, _ arguments: [String], environment: [String: String] = [:], log: () -> String = { "" }) throws {
        let name = URL(fileURLWithPath: root).lastPathComponent
        child = try Child(executable, arguments, environment: environment, stderrPath: scratch.file("\(name).stderr"),
                          cleanSignals: true)
        try Sockets.waitForListener(port: port, name, child, log: log)
    }

    /// What the server logged, for a failing expectation's message.
    var errorLog: String { child?.stderr ?? "" }

    /// Copies a recipe from the repository into `root`, edited as a user
    /// edits it: each `replacing` key must be in the file. With `socket`,
    /// the recipe must name the shipped socket (`Docs.socketPath`), which
    /// becomes `socket`; with or without, it may name no other path beside it.
    func install(recipe: String, socket: String? = nil, replacing: [String: String]) throws {
        var text = try String(contentsOfFile: Project.root.appendingPathComponent(recipe).path, encoding: .utf8)
        var edits = replacing
        if let socket { edits[Docs.socketPath] = socket }
        for (old, new) in edits {
            guard text.contains(old) else { throw Sockets.Failure(description: "\(recipe) has no \(old)") }
            text = text.replacingOccurrences(of: old, with: new)
        }
        if let other = Docs.runPaths(in: text).first {
            throw Sockets.Failure(description: "\(recipe) names \(other), not the socket unit's \(Docs.socketPath)")
        }
        try text.write(toFile: "\(root)/\(URL(fileURLWithPath: recipe).lastPathComponent)", atomically: true, encoding: .utf8)
    }

    deinit { child?.stop() }
}

/// The password files every server's recipe uses, hashed by the openssl CLI
/// (apr1, which nginx, Apache and lighttpd read): `htpasswd` with demo/demo,
/// alice/alice and bob/bob; `magicbell-admin.htpasswd` with admin/admin;
/// `magicbell-metrics.htpasswd` with prometheus/prometheus.
enum Passwords {
    static func write(into directory: String) throws {
        func line(_ user: String) throws -> String {
            "\(user):\(try runProcess("/usr/bin/openssl", ["passwd", "-apr1", user]).output)\n"
        }
        try (try ["demo", "alice", "bob"].map(line)).joined().write(toFile: "\(directory)/htpasswd", atomically: true, encoding: .utf8)
        try line("admin").write(toFile: "\(directory)/magicbell-admin.htpasswd", atomically: true, encoding: .utf8)
        try line("prometheus").write(toFile: "\(directory)/magicbell-metrics.htpasswd", atomically: true, encoding: .utf8)
    }
}

/// Real Apache httpd (Debian's apache2) under a ServerRoot of its own, with
/// one virtual host on 127.0.0.1 that includes a recipe from examples/apache/.
final class Apache: ServerProcess, @unchecked Sendable {
    /// Where a sanitized CGI program run by Apache writes its reports.
    private let cgiReports: String

    /// - Parameters:
    ///   - recipe: the file in examples/apache/ to include.
    ///   - defines: the recipe's `Define`s; `MAGICBELL_USERS`, `MAGICBELL_ADMINS` and
    ///     `MAGICBELL_SCRAPERS` are set to the test's password files.
    ///   - replacing: text of the recipe to replace, as a user edits it.
    ///   - site: the site's own directives, before the recipe's Include.
    ///   - modules: more modules the site loads (e.g. `expires`, `cache`).
    init(scratch: Scratch, recipe: String, defines: [String: String], replacing: [String: String] = [:],
         site: String = "", modules extraModules: [String] = []) throws {
        cgiReports = scratch.file("apache/cgi-reports")
        try super.init(scratch: scratch, name: "apache")
        let fm = FileManager.default
        for dir in ["logs", "run"] { try fm.createDirectory(atPath: "\(root)/\(dir)", withIntermediateDirectories: true) }
        try fm.createDirectory(atPath: cgiReports, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        try Passwords.write(into: root)
        try install(recipe: "examples/apache/\(recipe)", socket: defines["MAGICBELL_SOCKET"], replacing: replacing)
        let allDefines = defines.merging([
            "MAGICBELL_USERS": "\(root)/htpasswd", "MAGICBELL_ADMINS": "\(root)/magicbell-admin.htpasswd",
            "MAGICBELL_SCRAPERS": "\(root)/magicbell-metrics.htpasswd",
        ]) { old, _ in old }
        // As root, Apache's children run as www-data (it refuses root): they
        // must read the scratch files and reach the responder's socket.
        let asRoot = geteuid() == 0
        if asRoot { chmod(scratch.path, 0o755) }
        // As Debian enables them by default: access_compat (Order, Allow, Satisfy) included.
        let modules = ["mpm_event", "authn_core", "authn_file", "authz_core", "authz_user", "auth_basic", "access_compat",
                       "proxy", "proxy_fcgi", "cgid", "alias", "rewrite", "env"] + extraModules
        let conf = """
        ServerRoot \(root)
        PidFile \(root)/run/httpd.pid
        Listen 127.0.0.1:\(port)
        ServerName 127.0.0.1
        \(asRoot ? "User www-data\nGroup www-data" : "")
        ErrorLog \(root)/logs/error.log
        LogLevel info
        LogFormat "%h %u \\"%r\\" %>s" common
        CustomLog \(root)/logs/access.log common
        ScriptSock \(root)/run/cgisock
        \(modules.map { "LoadModule \($0)_module /usr/lib/apache2/modules/mod_\($0).so" }.joined(separator: "\n"))
        <VirtualHost 127.0.0.1:\(port)>
            \(allDefines.sorted { $0.key < $1.key }.map { "Define \($0.key) \($0.value)" }.joined(separator: "\n    "))
            \(Self.sanitizerEnvironment(reports: cgiReports))
            \(site)
            Include \(root)/\(recipe)
        </VirtualHost>
        """
        try conf.write(toFile: "\(root)/httpd.conf", atomically: true, encoding: .utf8)
        try start("/usr/sbin/apache2", ["-f", "\(root)/httpd.conf", "-DFOREGROUND"], log: { self.errorLog })
    }

    /// A sanitized binary run by Apache as a CGI program gets only the
    /// environment the configuration sets: the run's sanitizer settings,
    /// with reports written where www-data can write (moved, at the end, to
    /// where scripts/sanitize looks). Not part of any recipe.
    private static func sanitizerEnvironment(reports: String) -> String {
        withSanitizerOptions([:]).map { name, value in
            let local = value.split(separator: ":").map { option in
                option.hasPrefix("log_path=") ? "log_path=\(reports)/\(name.prefix(4).lowercased())" : String(option)
            }.joined(separator: ":")
            return "SetEnv \(name) \"\(local)\""
        }.joined(separator: "\n    ")
    }

    override var errorLog: String { readText("\(root)/logs/error.log") }

    deinit {
        child?.stop()
        // The CGI programs' sanitizer reports join the run's own.
        for (name, value) in withSanitizerOptions([:]) {
            guard let path = value.split(separator: ":").first(where: { $0.hasPrefix("log_path=") })?.dropFirst(9) else { continue }
            let target = URL(fileURLWithPath: String(path)).deletingLastPathComponent().path
            for file in (try? FileManager.default.contentsOfDirectory(atPath: cgiReports)) ?? []
            where file.hasPrefix(name.prefix(4).lowercased()) {
                try? FileManager.default.moveItem(atPath: "\(cgiReports)/\(file)", toPath: "\(target)/cgi-\(file)")
            }
        }
    }
}

/// A short load with wrk (Debian's package): requests per second, and how
/// many requests failed (socket errors, timeouts, non-2xx answers).
enum Wrk {
    static func run(port: UInt16, path: String, headers: [(String, String)], seconds: Int = 2,
                    connections: Int = 8) throws -> (requestsPerSecond: Double, failed: Int) {
        let arguments = ["-t1", "-c\(connections)", "-d\(seconds)s"] + headers.flatMap { ["-H", "\($0.0): \($0.1)"] }
            + ["http://127.0.0.1:\(port)\(path)"]
        let result = try runProcess("/usr/bin/wrk", arguments)
        guard result.status == 0, let rate = result.stdout.split(separator: "\n").first(where: { $0.hasPrefix("Requests/sec:") })
            .flatMap({ Double($0.split(separator: " ").last ?? "") }) else {
            throw Sockets.Failure(description: "wrk failed: \(result.stdout) \(result.stderr)")
        }
        var failed = 0
        for line in result.stdout.split(separator: "\n") {
            if line.contains("Non-2xx or 3xx responses:") { failed += Int(line.split(separator: " ").last ?? "") ?? 0 }
            if line.contains("Socket errors:") {
                // "Socket errors: connect 0, read 0, write 0, timeout 0"
                failed += line.split(separator: ",").compactMap { Int($0.split(separator: " ").last ?? "") }.reduce(0, +)
            }
        }
        return (rate, failed)
    }
}

/// Real lighttpd (Debian's lighttpd, with lighttpd-modules-lua for
/// mod_magnet) in the foreground on 127.0.0.1, including a recipe from
/// examples/lighttpd/ with the identity script beside it.
final class Lighttpd: ServerProcess, @unchecked Sendable {

    /// - Parameters:
    ///   - variables: the recipe's `var.` settings; the password files and the
    ///     identity script are set to the test's.
    ///   - replacing: text of the recipe to replace, as a user edits it.
    ///   - site: the site's own settings, before the recipe's include.
    init(scratch: Scratch, recipe: String, variables: [String: String], replacing: [String: String] = [:],
         site: String = "") throws {
        try super.init(scratch: scratch, name: "lighttpd")
        let fm = FileManager.default
        for dir in ["htdocs", "tmp"] { try fm.createDirectory(atPath: "\(root)/\(dir)", withIntermediateDirectories: true) }
        try Passwords.write(into: root)
        let examples = Project.root.appendingPathComponent("examples/lighttpd").path
        try fm.copyItem(atPath: "\(examples)/magicbell-identity.lua", toPath: "\(root)/magicbell-identity.lua")
        try install(recipe: "examples/lighttpd/\(recipe)", socket: variables["magicbell_socket"], replacing: replacing)
        let all = variables.merging([
            "magicbell_users": "\(root)/htpasswd", "magicbell_admins": "\(root)/magicbell-admin.htpasswd",
            "magicbell_scrapers": "\(root)/magicbell-metrics.htpasswd", "magicbell_identity": "\(root)/magicbell-identity.lua",
        ]) { old, _ in old }
        // A CGI program gets the environment lighttpd builds: the run's
        // sanitizer settings travel the same way (not part of any recipe).
        let sanitizer = withSanitizerOptions([:]).map { "\"\($0.key)\" => \"\($0.value)\"" }.joined(separator: ", ")
        let conf = """
        server.document-root = "\(root)/htdocs"
        server.bind = "127.0.0.1"
        server.port = \(port)
        server.errorlog = "\(root)/error.log"
        server.upload-dirs = ( "\(root)/tmp" )
        \(all.sorted { $0.key < $1.key }.map { "var.\($0.key) = \"\($0.value)\"" }.joined(separator: "\n"))
        \(sanitizer.isEmpty ? "" : "setenv.add-environment = ( \(sanitizer) )")
        \(site)
        include "\(root)/\(recipe)"
        """
        try conf.write(toFile: "\(root)/lighttpd.conf", atomically: true, encoding: .utf8)
        try start("/usr/sbin/lighttpd", ["-D", "-f", "\(root)/lighttpd.conf"], log: { self.errorLog })
    }

    override var errorLog: String { readText("\(root)/error.log") }
}

/// Real HAProxy (Debian's haproxy) in the foreground on 127.0.0.1: a
/// frontend that sends the project's paths to the backend of
/// examples/haproxy/magicbell-fcgi.cfg, loaded as a second file.
final class HAProxy: ServerProcess, @unchecked Sendable {

    init(scratch: Scratch, socket: String) throws {
        try super.init(scratch: scratch, name: "haproxy")
        // userlist lines with SHA-512 crypt hashes (HAProxy checks them with crypt(3)).
        func users(_ names: [String]) throws -> String {
            try names.map { "    user \($0) password \(try runProcess("/usr/bin/openssl", ["passwd", "-6", $0]).output)" }
                .joined(separator: "\n")
        }
        try install(recipe: "examples/haproxy/magicbell-fcgi.cfg", socket: socket, replacing: [
            "    user alice password $6$REPLACE-ME": try users(["demo", "alice", "bob"]),
            "    user ops password $6$REPLACE-ME": try users(["admin"]),
            "    user prometheus password $6$REPLACE-ME": try users(["prometheus"]),
        ])
        let site = """
        global
            log stderr format raw local0 info
        defaults
            mode http
            log global
            timeout connect 5s
            timeout client 10s
            timeout server 10s
        frontend site
            bind 127.0.0.1:\(port)
            use_backend magicbell if { path /magicbell-token } || { path_beg /magicbell-admin/ } || { path /magicbell-health }
            default_backend site
        backend site
            http-request deny deny_status 404
        """
        try (site + "\n").write(toFile: "\(root)/haproxy.cfg", atomically: true, encoding: .utf8) // haproxy wants a final newline
        try start("/usr/sbin/haproxy", ["-db", "-f", "\(root)/haproxy.cfg", "-f", "\(root)/magicbell-fcgi.cfg"])
    }

}

/// Real Caddy (Debian's caddy) on 127.0.0.1 over plain HTTP, with the
/// admin recipe, the health recipe and one token recipe from examples/caddy/
/// imported into its one site block.
final class Caddy: ServerProcess, @unchecked Sendable {
    enum TokenAuth {
        case basicauth
        /// forward_auth to the site's app (a `SessionApp`) on this port.
        case forwardAuth(port: UInt16)
    }

    init(scratch: Scratch, socket: String, token: TokenAuth = .basicauth) throws {
        try super.init(scratch: scratch, name: "caddy")
        // bcrypt at cost 4 (htpasswd -B -C 4): the test checks the recipe, not bcrypt's cost.
        func user(_ name: String) throws -> String {
            let line = try runProcess("/usr/bin/htpasswd", ["-nbB", "-C", "4", name, name]).output
            return "\(name) \(line.split(separator: ":", maxSplits: 1)[1])"
        }
        try install(recipe: "examples/caddy/magicbell-health.caddy", socket: socket, replacing: [:])
        try install(recipe: "examples/caddy/magicbell-admin.caddy", socket: socket, replacing: [
            "ops $2a$14$REPLACE-ME": try user("admin"),
            "prometheus $2a$14$REPLACE-ME": try user("prometheus"),
        ])
        let tokenRecipe: String
        switch token {
        case .basicauth:
            tokenRecipe = "magicbell-token-basicauth.caddy"
            try install(recipe: "examples/caddy/\(tokenRecipe)", socket: socket, replacing: [
                "alice $2a$14$REPLACE-ME": try ["demo", "alice", "bob"].map(user).joined(separator: "\n\t\t"),
            ])
        case .forwardAuth(let port):
            tokenRecipe = "magicbell-token-forward-auth.caddy"
            try install(recipe: "examples/caddy/\(tokenRecipe)", socket: socket, replacing: ["127.0.0.1:3000": "127.0.0.1:\(port)"])
        }
        let site = """
        {
        \tadmin off
        \tauto_https off
        \tstorage file_system \(root)/storage
        }
        http://127.0.0.1:\(port) {
        \timport \(root)/\(tokenRecipe)
        \timport \(root)/magicbell-admin.caddy
        \timport \(root)/magicbell-health.caddy
        \trespond 404
        }
        """
        try site.write(toFile: "\(root)/Caddyfile", atomically: true, encoding: .utf8)
        try start("/usr/bin/caddy", ["run", "--config", "\(root)/Caddyfile", "--adapter", "caddyfile"],
                  environment: ["HOME": root, "XDG_DATA_HOME": root, "XDG_CONFIG_HOME": root])
    }

}

/// A site's own session check, as the app-session recipes expect it:
/// `GET /auth/whoami` answers 200 with X-User-Id and X-User-Email for the
/// cookie `session=user-N`, 200 with no identity for `session=anonymous` (a
/// signed-out visitor the app still lets through), 401 otherwise.
final class SessionApp: ServerProcess, @unchecked Sendable {
    init(scratch: Scratch) throws {
        try super.init(scratch: scratch, name: "session-app")
        let script = """
        import http.server, re, sys
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                cookie = self.headers.get("Cookie", "")
                user = re.search(r"(?:^|; )session=(user-[0-9]+)(?:;|$)", cookie)
                self.send_response(200 if self.path == "/auth/whoami" and (user or "session=anonymous" in cookie) else 401)
                if self.path == "/auth/whoami" and user:
                    self.send_header("X-User-Id", user.group(1))
                    self.send_header("X-User-Email", user.group(1) + "@example.com")
                self.send_header("Content-Length", "0")
                self.end_headers()
            def log_message(self, *args):
                pass
        http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
        """
        try start("/usr/bin/python3", ["-c", script, String(port)])
    }
}

/// Real h2o (Debian's h2o, with its mruby) on 127.0.0.1, with
/// examples/h2o/magicbell-paths.conf merged into its one host's paths.
final class H2O: ServerProcess, @unchecked Sendable {
    init(scratch: Scratch, socket: String) throws {
        try super.init(scratch: scratch, name: "h2o")
        // {SHA} entries (htpasswd -s): the only kind h2o 2.2.5's Htpasswd matches (see the recipe).
        func users(_ names: [String], _ file: String) throws {
            try (try names.map { try runProcess("/usr/bin/htpasswd", ["-nbs", $0, $0]).output + "\n" }).joined()
                .write(toFile: "\(root)/\(file)", atomically: true, encoding: .utf8)
        }
        try users(["demo", "alice", "bob"], "users.htpasswd")
        try users(["admin"], "admin.htpasswd")
        try users(["prometheus"], "metrics.htpasswd")
        try FileManager.default.copyItem(atPath: Project.root.appendingPathComponent("examples/h2o/magicbell-auth.rb").path,
                                         toPath: "\(root)/magicbell-auth.rb")
        try install(recipe: "examples/h2o/magicbell-paths.conf", socket: socket, replacing: [
            "/etc/h2o/magicbell-auth.rb": "\(root)/magicbell-auth.rb",
            "/etc/h2o/magicbell-users.htpasswd": "\(root)/users.htpasswd",
            "/etc/h2o/magicbell-admin.htpasswd": "\(root)/admin.htpasswd",
            "/etc/h2o/magicbell-metrics.htpasswd": "\(root)/metrics.htpasswd",
        ])
        let conf = """
        \(geteuid() == 0 ? "user: root" : "")
        error-log: \(root)/error.log
        hosts:
          default:
            listen:
              host: 127.0.0.1
              port: \(port)
            paths:
              <<: !file \(root)/magicbell-paths.conf
              /:
                mruby.handler: |
                  lambda { |env| [404, {}, ["not found"]] }
        """
        try conf.write(toFile: "\(root)/h2o.conf", atomically: true, encoding: .utf8)
        try start("/usr/bin/h2o", ["-c", "\(root)/h2o.conf"], log: { self.errorLog })
    }

    override var errorLog: String { readText("\(root)/error.log") }
}
