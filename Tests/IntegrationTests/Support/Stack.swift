import Glibc
import Foundation
import TestSupport

/// Paths the tests need: the repository and the binary under test.
enum Project {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The real `magicbell-fcgi`, built next to the test bundle (or MAGICBELL_FCGI_BIN).
    static var binary: String {
        if let explicit = ProcessInfo.processInfo.environment["MAGICBELL_FCGI_BIN"] { return explicit }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("magicbell-fcgi").path
    }

    static let apiKey = "pk_integration_test"
    static let secret = Canary.secret("integration-secret")
}

/// A scratch directory removed when the test ends. With MAGICBELL_TEST_LOGS
/// set (scripts/test sets it), its logs are kept there first, so that the
/// whole run's logs can be checked for leaked secrets.
final class Scratch {
    let path: String
    init() throws {
        var template = Array("/tmp/mbf-test.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw Sockets.Failure(description: "mkdtemp failed") }
        path = String(cString: made)
    }
    func file(_ name: String) -> String { "\(path)/\(name)" }

    /// The project secret in a file a CGI program can be pointed at
    /// (MAGICBELL_SECRET_KEY_FILE). Mode 0644: the tests' CGI user may be
    /// www-data; in production the file is root:www-data 0640.
    func secretKeyFile() throws -> String {
        let path = file("secret-key")
        try Project.secret.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o644)
        return path
    }

    deinit {
        if let keep = ProcessInfo.processInfo.environment["MAGICBELL_TEST_LOGS"] { keepLogs(in: keep) }
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Copies every *.log and *.stderr file (nginx's logs too) to KEEP/<scratch name>/.
    private func keepLogs(in keep: String) {
        let fm = FileManager.default
        let target = "\(keep)/\(URL(fileURLWithPath: path).lastPathComponent)"
        for relative in fm.subpaths(atPath: path) ?? [] where relative.hasSuffix(".log") || relative.hasSuffix(".stderr") {
            let destination = "\(target)/\(relative.replacingOccurrences(of: "/", with: "_"))"
            try? fm.createDirectory(atPath: target, withIntermediateDirectories: true)
            try? fm.copyItem(atPath: "\(path)/\(relative)", toPath: destination)
        }
    }
}

/// A file's text, "" if it is missing or empty (never read when empty:
/// see `Child.stderr`).
func readText(_ path: String) -> String {
    // Foundation's file reading leaks its buffer on an empty file (both
    // String(contentsOfFile:) and FileManager.contents): never read one.
    var info = stat()
    guard stat(path, &info) == 0, info.st_size > 0, let data = FileManager.default.contents(atPath: path) else { return "" }
    return String(decoding: data, as: UTF8.self)
}

/// A child process with its stderr captured to a file.
final class Child {
    let process = Process()
    let stderrPath: String

    /// - Parameter cleanSignals: start it as a shell would, with no signal
    ///   blocked. Foundation's Process leaves nearly every signal blocked in
    ///   the child (SigBlk fffffffe3bfbea27 on Swift 6.3.1): a server that
    ///   does not set its own mask, as nginx and the responder do, then never
    ///   sees SIGCHLD or SIGTERM (Apache's parent exits, fcgiwrap cannot be stopped).
    init(_ executable: String, _ arguments: [String], environment: [String: String], stderrPath: String,
         standardInput: FileHandle? = nil, cleanSignals: Bool = false) throws {
        self.stderrPath = stderrPath
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        if cleanSignals {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = ["-c", Self.cleanExec, executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        process.environment = withSanitizerOptions(environment)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = standardInput ?? FileHandle.nullDevice
        try process.run()
    }

    /// Unblocks every signal, restores SIGPIPE (Python ignores it) and execs argv[1:].
    private static let cleanExec = """
    import os, signal, sys
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.execv(sys.argv[1], sys.argv[1:])
    """

    /// What the child wrote to stderr so far (see `readText`: LeakSanitizer
    /// would report a test that polls a quiet child).
    var stderr: String { readText(stderrPath) }
    var isRunning: Bool { process.isRunning }

    func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// The child's memory map (/proc/PID/maps): which libraries it has loaded.
    /// (Read by cat: Foundation reads a /proc file, which says it is empty, one page at most.)
    var maps: String { (try? runProcess("/bin/cat", ["/proc/\(process.processIdentifier)/maps"]).stdout) ?? "" }

    /// Waits for the exit and returns the status; nil if it did not exit in time.
    func waitForExit(timeout: Double = 10) -> Int32? {
        guard Sockets.waitUntil(timeout: timeout, { !process.isRunning }) else { return nil }
        process.waitUntilExit()
        return process.terminationStatus
    }

    func stop() {
        guard process.isRunning else { return }
        signal(SIGTERM)
        if waitForExit(timeout: 5) == nil { signal(SIGKILL); process.waitUntilExit() }
    }

    deinit { stop() }
}

/// The whole stack most tests need, wired as the README describes: a
/// scratch directory, the real responder on a Unix socket, real nginx with
/// the project's snippets in front of it, and (with `fake: true`) the fake
/// MagicBell behind it with a project token set.
final class Stack {
    let scratch: Scratch
    let responder: Responder
    let nginx: Nginx
    /// Set with `fake: true`.
    let fake: FakeMagicBell?

    /// - Parameters:
    ///   - auth: the token location's auth variant.
    ///   - fake: start the fake MagicBell and point the responder at it.
    ///   - environment: more responder environment (over the defaults and the fake's).
    ///   - arguments: more `serve` options after `--socket` and `--workers`.
    ///   - serverExtra, httpExtra: as for `Nginx`.
    ///   - scratch: one the test has put files in already (a new one otherwise).
    init(scratch: Scratch? = nil, auth: Nginx.AuthVariant = .file("basic.conf"), fake: Bool = false, workers: Int = 4,
         environment extra: [String: String] = [:], arguments: [String] = [],
         serverExtra: String = "", httpExtra: String = "") throws {
        self.scratch = try scratch ?? Scratch()
        self.fake = fake ? try FakeMagicBell() : nil
        let environment = self.fake.map(Responder.upstream) ?? [:]
        let socket = self.scratch.file("fcgi.sock")
        responder = try Responder(scratch: self.scratch,
                                  arguments: ["serve", "--socket", socket, "--workers", String(workers)] + arguments,
                                  environment: Responder.environment(environment.merging(extra) { $1 }))
        nginx = try Nginx(scratch: self.scratch, authVariant: auth, upstream: "unix:\(socket)",
                          serverExtra: serverExtra, httpExtra: httpExtra)
    }

    /// The fake MagicBell, for the tests that asked for one.
    var magicBell: FakeMagicBell {
        guard let fake else { preconditionFailure("this Stack was made without fake: true") }
        return fake
    }
}

/// The real responder binary.
final class Responder {
    let child: Child
    let socketPath: String?

    static func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var env = ["MAGICBELL_API_KEY": Project.apiKey, "MAGICBELL_SECRET_KEY": Project.secret, "MAGICBELL_TOKEN_TTL": "600"]
        env["PATH"] = ProcessInfo.processInfo.environment["PATH"]
        return env.merging(extra) { $1 }
    }

    /// The variables that point the responder at the fake MagicBell, with a
    /// generous timeout: the whole suite runs in parallel, under ASan in CI.
    /// Tests of the timeout itself set their own.
    static func upstream(_ fake: FakeMagicBell) -> [String: String] {
        ["MAGICBELL_PROJECT_TOKEN": fake.token, "MAGICBELL_API_URL": fake.baseURL.absoluteString, "MAGICBELL_UPSTREAM_TIMEOUT": "5"]
    }

    /// Starts `serve` and waits until it accepts connections.
    init(scratch: Scratch, arguments: [String]? = nil, environment: [String: String] = Responder.environment(),
         waitForSocket: Bool = true) throws {
        let socketPath = scratch.file("fcgi.sock")
        let args = arguments ?? ["serve", "--socket", socketPath, "--workers", "4"]
        self.socketPath = args.contains(socketPath) ? socketPath : nil
        child = try Child(Project.binary, args, environment: environment, stderrPath: scratch.file("responder.log"))
        if waitForSocket, let path = self.socketPath {
            let ready = Sockets.waitUntil {
                guard let fd = try? Sockets.connectUnix(path: path) else { return false }
                close(fd)
                return true
            }
            guard ready else { throw Sockets.Failure(description: "responder did not start: \(child.stderr)") }
        }
    }
}

/// Real nginx under its own prefix on 127.0.0.1, configured with the
/// project's own snippets (copied unmodified from nginx/).
final class Nginx: WebServer, @unchecked Sendable {
    // @unchecked: every stored property is a `let` set in init, and the
    // request methods only read `port`; `child` (a Process) is touched only
    // by init and deinit.
    let child: Child
    let port: UInt16
    let prefix: String

    /// - Parameters:
    ///   - authVariant: the file from nginx/auth/ installed as snippets/magicbell-token-auth.conf,
    ///     or the text of a custom one.
    ///   - upstream: the `server` line of the magicbell_fcgi upstream.
    ///   - serverExtra: more directives for the site's server block.
    ///   - httpExtra: more directives at the http level (e.g. another server).
    ///   - tokenSnippet: include snippets/magicbell-token.conf in the server block.
    init(scratch: Scratch, authVariant: AuthVariant, upstream: String,
         serverExtra: String = "", httpExtra: String = "", tokenSnippet: Bool = true) throws {
        prefix = scratch.file("nginx")
        port = try Sockets.freePort()
        let fm = FileManager.default
        for dir in ["conf/snippets", "logs", "tmp"] {
            try fm.createDirectory(atPath: "\(prefix)/\(dir)", withIntermediateDirectories: true)
        }
        let nginxDir = Project.root.appendingPathComponent("nginx").path
        for name in ["magicbell-token.conf", "magicbell-fastcgi.conf", "magicbell-admin.conf", "magicbell-metrics.conf",
                     "magicbell-health.conf"] {
            try fm.copyItem(atPath: "\(nginxDir)/\(name)", toPath: "\(prefix)/conf/snippets/\(name)")
        }
        switch authVariant {
        case .file(let name):
            try fm.copyItem(atPath: "\(nginxDir)/auth/\(name)", toPath: "\(prefix)/conf/snippets/magicbell-token-auth.conf")
        case .custom(let text):
            try text.write(toFile: "\(prefix)/conf/snippets/magicbell-token-auth.conf", atomically: true, encoding: .utf8)
        }
        try Passwords.write(into: "\(prefix)/conf")
        if fm.fileExists(atPath: "/etc/nginx/fastcgi_params") {
            try fm.copyItem(atPath: "/etc/nginx/fastcgi_params", toPath: "\(prefix)/conf/fastcgi_params")
        }

        // As root, nginx's workers would run as nobody and could not reach the
        // responder's 0660 socket in a private temp dir; in production nginx's
        // user is in the socket's group instead.
        let user = geteuid() == 0 ? "user root;" : ""
        let conf = """
        \(user)
        worker_processes 1;
        daemon off;
        pid \(prefix)/nginx.pid;
        error_log \(prefix)/logs/error.log info;
        events { worker_connections 1024; }
        http {
            access_log \(prefix)/logs/access.log;
            client_body_temp_path \(prefix)/tmp/body;
            fastcgi_temp_path \(prefix)/tmp/fastcgi;
            proxy_temp_path \(prefix)/tmp/proxy;
            uwsgi_temp_path \(prefix)/tmp/uwsgi;
            scgi_temp_path \(prefix)/tmp/scgi;
            upstream magicbell_fcgi { server \(upstream); keepalive 32; } # as nginx/magicbell-upstream.conf
            server {
                listen 127.0.0.1:\(port);
                \(tokenSnippet ? "include snippets/magicbell-token.conf;" : "")
                \(serverExtra)
            }
            \(httpExtra)
        }
        """
        try conf.write(toFile: "\(prefix)/conf/nginx.conf", atomically: true, encoding: .utf8)
        child = try Child("/usr/sbin/nginx", ["-p", prefix, "-c", "conf/nginx.conf", "-e", "\(prefix)/logs/error.log"],
                          environment: [:], stderrPath: scratch.file("nginx.stderr"))
        let port = self.port
        let ready = Sockets.waitUntil {
            guard let fd = try? Sockets.connectTCP(port: port) else { return false }
            close(fd)
            return true
        }
        guard ready else {
            let log = (try? String(contentsOfFile: "\(prefix)/logs/error.log", encoding: .utf8)) ?? ""
            throw Sockets.Failure(description: "nginx did not start: \(child.stderr) \(log)")
        }
    }

    enum AuthVariant {
        case file(String)
        case custom(String)
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        try runProcess(executable, arguments).output
    }
}

/// The stand-in for oauth2-proxy and for a site's own session check: an nginx
/// server that answers the auth subrequest the way each documents (2xx plus
/// identity headers for a valid session cookie, 401 otherwise). It is not in
/// Debian's archive, and only its HTTP contract matters to the snippet.
enum AuthBackend {
    static func server(port: UInt16) -> String {
        """
        server {
            listen 127.0.0.1:\(port);
            location = /oauth2/auth {
                if ($cookie__oauth2_proxy ~ "^session-(?<who>[a-z0-9]+)$") {
                    add_header X-Auth-Request-User $who always;
                    add_header X-Auth-Request-Email $who@example.com always;
                    return 202;
                }
                return 401;
            }
            location = /auth/whoami {
                if ($cookie_session ~ "^user-(?<n>[0-9]+)$") {
                    add_header X-User-Id user-$n always;
                    add_header X-User-Email user-$n@example.com always;
                    return 200;
                }
                return 401;
            }
        }
        """
    }

    /// oauth2-proxy's auth location as nginx/auth/oauth2-proxy.conf shows it, pointed at the stand-in.
    static func oauth2Locations(port: UInt16) throws -> String {
        try documentedLocation("oauth2-proxy.conf", "location = /oauth2/auth {")
            .replacingOccurrences(of: "127.0.0.1:4180", with: "127.0.0.1:\(port)")
    }

    /// The app-session variant's internal location as nginx/auth/app-session.conf shows it.
    static func appLocation(port: UInt16) throws -> String {
        try documentedLocation("app-session.conf", "location = /_magicbell_auth {")
            .replacingOccurrences(of: "127.0.0.1:3000", with: "127.0.0.1:\(port)")
    }

    /// A location block that an auth variant's comments tell users to add,
    /// taken from the file as written (without the comment marks), so the
    /// tests run the text users copy.
    static func documentedLocation(_ file: String, _ opening: String) throws -> String {
        let text = try String(contentsOfFile: Project.root.appendingPathComponent("nginx/auth/\(file)").path, encoding: .utf8)
        var block: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let code = line.hasPrefix("#") ? String(line.dropFirst()) : nil
            if block.isEmpty {
                if code?.trimmingCharacters(in: .whitespaces) == opening { block.append(code!) }
                continue
            }
            guard let code else { break }
            block.append(code)
            if code.trimmingCharacters(in: .whitespaces) == "}" { return block.joined(separator: "\n") }
        }
        throw Sockets.Failure(description: "\(file) shows no complete \(opening) block")
    }
}

/// Verifies a token with PyJWT, an independent JWT library, and returns its claims.
enum PyJWT {
    static func decode(_ token: String, secret: String = Project.secret) throws -> [String: Any] {
        let script = """
        import json, sys, jwt
        print(json.dumps(jwt.decode(sys.argv[1], sys.argv[2], algorithms=["HS256"], options={"require": ["exp", "iat"]})))
        """
        let result = try runProcess("python3", ["-c", script, token, secret])
        guard result.status == 0,
              let claims = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
            throw Sockets.Failure(description: "PyJWT rejected the token: \(result.stderr)")
        }
        return claims
    }
}
