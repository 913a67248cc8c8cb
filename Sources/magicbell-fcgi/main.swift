import ArgumentParser
import FastCGIServer
import FoundationEssentials
import Glibc
import Logging
import MagicBellFCGIApp
import MagicBellJWT

// The command line: parses arguments and hands off to the app (serve to
// Service, mint to CommandLineMint). Exit codes: 0 ok, 1 failure (bad token, cannot listen),
// 64 usage error, 78 bad configuration (EX_CONFIG).

let configurationExitCode = ExitCode(78)

func fail(_ message: String, _ code: ExitCode) -> ExitCode {
    printError(message)
    return code
}

func printWarning(_ message: String) {
    printError("warning: \(message)", priority: "<4>")
}

/// One line on stderr. Under systemd (check-config as ExecStartPre=, a
/// refused start) stderr is the journal: the line then starts with its
/// syslog priority (sd-daemon(3)), as serve's log lines do, so that
/// `journalctl -p warning` shows it.
func printError(_ message: String, priority: String = "<3>") {
    let line = Array("\(Journal.isStandardError ? priority : "")magicbell-fcgi: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

func loadConfiguration() throws -> Configuration {
    do {
        return try Configuration.load(from: Configuration.processEnvironment())
    } catch {
        throw fail("\(error)", configurationExitCode)
    }
}

struct MagicBellFCGI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "magicbell-fcgi",
        abstract: "Mints MagicBell User JWTs, as a FastCGI responder or a CGI program behind a web server, for the users the server authenticated.",
        discussion: """
        Configuration comes from the environment:
        \(environmentHelp)

        Exit codes: 0 success (check-config: warnings, if any, on stderr); 1 failure (invalid token, cannot listen); \
        64 usage error; 78 invalid configuration.

        Started by a web server as a CGI program (GATEWAY_INTERFACE=CGI/1.1), it answers that one request \
        on stdout with a Status line, the body read from stdin up to CONTENT_LENGTH, and ignores its arguments.

        SIGHUP makes serve read its configuration (and the _FILE variables' files) again. \
        The nginx snippets, systemd units and the security model: /usr/share/doc/magicbell-fcgi/ (docs/ in the source tree).
        """,
        version: MagicBellFCGIVersion.description,
        subcommands: [Serve.self, Mint.self, Verify.self, CheckConfig.self]
    )
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve FastCGI requests until SIGTERM or SIGINT.",
        discussion: """
        Listens on --socket, on --listen, or, with neither, on the listen socket inherited as fd 0 \
        (spawn-fcgi, systemd StandardInput=socket). On SIGTERM/SIGINT it stops accepting, finishes \
        in-flight requests, removes the socket file it created and exits 0.
        """
    )

    @Option(name: .customLong("socket"), help: ArgumentHelp("Listen on a unix socket at PATH (a stale socket file is replaced).", valueName: "PATH"))
    var socketPath: String?

    @Option(name: .customLong("socket-mode"),
            help: ArgumentHelp("Permissions of the --socket file, in octal; the owner must be able to read and write.", valueName: "OCTAL"))
    var socketMode = SocketMode(0o660)

    @Option(help: ArgumentHelp("Listen on TCP, e.g. 127.0.0.1:9000 (a port from 1 to 65535).", valueName: "HOST:PORT"))
    var listen: TCPAddress?

    @Option(name: .customLong("event-loops"),
            help: ArgumentHelp("Threads that read every request and answer tokens, health and metrics (default: half the CPUs, at least 1; here \(FastCGIServer.defaultEventLoops)).",
                               valueName: "N"))
    var eventLoops: Int = FastCGIServer.defaultEventLoops

    @Option(help: ArgumentHelp("Threads that answer requests which wait on MagicBell: admin calls, MAGICBELL_MINT=api tokens (default: 4 per CPU, at least 4; here \(FastCGIServer.defaultWorkers)).", valueName: "N"))
    var workers: Int = FastCGIServer.defaultWorkers

    @Option(name: .customLong("io-timeout"),
            help: ArgumentHelp("Seconds a FastCGI request may take to arrive whole, and its answer to be taken (nginx's side).",
                               valueName: "SECONDS"))
    var ioTimeout: Double = 10

    @Option(name: .customLong("max-connections"),
            help: ArgumentHelp("Connections held at once, kept-alive ones included; beyond, new ones are closed at once.", valueName: "N"))
    var maxConnections: Int = 1024

    @Option(name: .customLong("idle-timeout"),
            help: ArgumentHelp("Seconds a connection may wait for its next request before it is closed (above nginx's keepalive_timeout, 60 s).",
                               valueName: "SECONDS"))
    var idleTimeout: Double = 120

    @Option(name: .customLong("peer-uid"),
            help: ArgumentHelp("Unix sockets: accept only peers running as these users (names or uids, comma-separated), e.g. www-data. Whoever can connect can mint any user's token.",
                               valueName: "USER[,USER...]"),
            transform: PeerUIDs.parse)
    var peerUID: PeerUIDs?

    @Option(help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error, critical.", valueName: "LEVEL"))
    var logLevel: Logger.Level = .info

    @Option(help: ArgumentHelp("Log lines as json or text (default: text on a terminal, json otherwise).",
                               valueName: "FORMAT"))
    var logFormat: LogFormat?

    func validate() throws {
        if socketPath != nil && listen != nil { throw ValidationError("use either --socket or --listen, not both") }
        try validateWorkers(workers)
        guard (1...FastCGIServer.maxEventLoops).contains(eventLoops) else {
            throw ValidationError("--event-loops must be from 1 to \(FastCGIServer.maxEventLoops)")
        }
        guard ioTimeout >= 0.1 && ioTimeout <= 3600 else { throw ValidationError("--io-timeout must be from 0.1 to 3600 seconds") }
        guard (1...1_000_000).contains(maxConnections) else { throw ValidationError("--max-connections must be from 1 to 1000000") }
        guard idleTimeout >= 1 && idleTimeout <= 86_400 else { throw ValidationError("--idle-timeout must be from 1 to 86400 seconds") }
        if peerUID != nil && listen != nil { throw ValidationError("--peer-uid applies to unix sockets; for --listen use FCGI_WEB_SERVER_ADDRS") }
    }

    func run() throws {
        let address: ListenAddress
        if let socketPath {
            address = .unix(path: socketPath, mode: socketMode.bits)
        } else if let listen {
            address = listen.address
        } else {
            address = .inherited
        }
        let server = FastCGIServer.Options(eventLoops: eventLoops, workers: workers, ioTimeout: ioTimeout,
                                           maxConnections: maxConnections, idleTimeout: idleTimeout)
        do {
            try Service.serve(.init(address: address, server: server, peerUIDs: peerUID?.uids, logLevel: logLevel,
                                    logFormat: logFormat ?? .automatic))
        } catch {
            switch error {
            case .configuration(let message): throw fail(message, configurationExitCode)
            case .listen(let message): throw fail(message, .failure)
            }
        }
    }
}

/// `--workers`, for serve and check-config alike.
func validateWorkers(_ workers: Int) throws {
    guard (1...FastCGIServer.maxWorkers).contains(workers) else {
        throw ValidationError("--workers must be from 1 to \(FastCGIServer.maxWorkers)")
    }
}

struct Mint: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a User JWT, signed here by the endpoint's minter, with its identity rules.")

    @Option(name: .customLong("external-id"), help: "The user's external id (user_external_id).")
    var externalID: String?

    @Option(help: "The user's email (user_email).")
    var email: String?

    @Option(help: ArgumentHelp("Lifetime in seconds (default: MAGICBELL_TOKEN_TTL).", valueName: "S"))
    var ttl: Int?

    @Flag(help: "Print the endpoint's JSON answer instead of the bare token.")
    var json = false

    func validate() throws {
        if (externalID ?? "").isEmpty && (email ?? "").isEmpty {
            throw ValidationError("give --external-id, --email, or both")
        }
        if let ttl, !Configuration.tokenTTLRange.contains(ttl) {
            throw ValidationError("--ttl must be from \(Configuration.tokenTTLRange.lowerBound) to \(Configuration.tokenTTLRange.upperBound) seconds")
        }
    }

    func run() throws {
        var configuration = try loadConfiguration()
        if let ttl { configuration.tokenTTL = ttl }
        if CommandLineMint.signsUnlikeTheEndpoint(configuration) {
            printWarning("MAGICBELL_MINT=api: this token is signed here with the secret key, not created by MagicBell, so MagicBell does not list it")
        }
        let minted: CommandLineMint.Minted
        do {
            minted = try CommandLineMint.mint(configuration, email: email, externalID: externalID)
        } catch let error as EndpointError {
            throw fail("cannot mint: \(error.message)", .failure)
        }
        print(json ? minted.answer : minted.token)
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a token's HS256 signature (constant time) and expiry; print its claims as JSON.",
        discussion: "Needs only MAGICBELL_SECRET_KEY or MAGICBELL_SECRET_KEY_FILE. Exits 0 if valid, 1 with a one-line reason if not."
    )

    @Argument(help: ArgumentHelp("The token, or - to read it from standard input (keeps it out of shell history).", valueName: "TOKEN"))
    var token: String

    func run() throws {
        let secret: SecretKey
        do {
            secret = try Configuration.loadSecretKey(from: Configuration.processEnvironment())
        } catch {
            throw fail("\(error)", configurationExitCode)
        }
        var text = token
        if text == "-" {
            text = String(decoding: readStandardInput(limit: 64 * 1024), as: UTF8.self)
        }
        text = text.trimmingWhitespace
        do {
            let verified = try TokenVerifier(secret: secret).verify(text, now: Int(Date().timeIntervalSince1970))
            print(verified.claimsJSON)
        } catch let error as TokenVerifier.Error {
            throw fail("invalid token: \(error)", .failure)
        }
    }
}

/// Standard input up to `limit` bytes (a token is far smaller).
func readStandardInput(limit: Int) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: limit)
    var filled = 0
    while filled < limit {
        let count = bytes.withUnsafeMutableBytes { read(0, $0.baseAddress! + filled, limit - filled) }
        if count < 0 && errno == EINTR { continue }
        guard count > 0 else { break }
        filled += count
    }
    return Array(bytes[0..<filled])
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate the configuration and print a summary without secrets.",
        discussion: """
        Exits 0 if the configuration is valid, 78 (EX_CONFIG) with one line naming the variable if not \
        (or if --env-file cannot be read, or holds bytes that are not UTF-8, which make systemd refuse it): \
        fit for ExecStartPre=. Warnings (an unknown MAGICBELL_ variable, \
        a secret under 32 bytes) go to stderr and still exit 0. Give it the --workers serve runs with: \
        some rules depend on it.
        """
    )

    @Option(help: ArgumentHelp("The --workers serve runs with (default: serve's default, here \(FastCGIServer.defaultWorkers)).", valueName: "N"))
    var workers: Int = FastCGIServer.defaultWorkers

    @Option(name: .customLong("env-file"),
            help: ArgumentHelp("Read FILE as systemd reads the unit's EnvironmentFile=; its variables override the environment's.",
                               valueName: "FILE"))
    var envFile: String?

    func validate() throws {
        try validateWorkers(workers)
    }

    func run() throws {
        do {
            let report = try ConfigurationCheck.run(workers: workers, envFile: envFile)
            for warning in report.warnings { printWarning(warning) }
            print(report.summary)
        } catch {
            for warning in error.warnings { printWarning(warning) }
            throw fail(error.description, configurationExitCode)
        }
    }
}

// Started by a web server as a CGI program: one request, argv ignored.
if CGIProgram.isStartedAsCGI { exit(CGIProgram.run()) }
MagicBellFCGI.main()
