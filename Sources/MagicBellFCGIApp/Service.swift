import FastCGIServer
import FoundationEssentials
import Logging

/// `serve`, from start to stop: the one place that wires core dumps,
/// logging, the configuration (loaded once per start and once per SIGHUP),
/// the peers allowed, the descriptor limit, metrics, the listen socket and
/// the server. The executable parses the command line into `Options` and
/// maps a `StartFailure` to its exit code.
public enum Service {
    public struct Options: Sendable {
        public var address: ListenAddress
        public var server: FastCGIServer.Options
        /// `--peer-uid`, resolved; `server.peers` is made from it and from
        /// `FCGI_WEB_SERVER_ADDRS` at start.
        public var peerUIDs: [UInt32]?
        public var logLevel: Logger.Level
        public var logFormat: LogFormat

        public init(address: ListenAddress, server: FastCGIServer.Options, peerUIDs: [UInt32]?,
                    logLevel: Logger.Level, logFormat: LogFormat) {
            self.address = address
            self.server = server
            self.peerUIDs = peerUIDs
            self.logLevel = logLevel
            self.logFormat = logFormat
        }
    }

    /// Why serve did not start, or stopped at once.
    public enum StartFailure: Error, CustomStringConvertible {
        /// The configuration (exit 78, EX_CONFIG).
        case configuration(String)
        /// The socket or the server (exit 1).
        case listen(String)

        public var description: String {
            switch self {
            case .configuration(let text), .listen(let text): text
            }
        }
    }

    /// Serves until SIGTERM or SIGINT; SIGHUP reloads the configuration.
    public static func serve(_ options: Options) throws(StartFailure) {
        // Before the secret is read: a crash must never write it to a core file.
        let noCoreDumps = FastCGIServer.forbidCoreDumps()
        options.logFormat.bootstrap(level: options.logLevel)
        let logger = Logger(label: "magicbell-fcgi")
        let workers = options.server.workers
        var serverOptions = options.server
        let configuration: Configuration
        let environment = Configuration.processEnvironment(standardProxy: true)
        do {
            configuration = try Configuration.load(from: environment).checked(workers: workers)
            serverOptions.peers = try PeerPolicy.forServe(peerUIDs: options.peerUIDs,
                                                          addresses: ProcessInfo.processInfo.environment["FCGI_WEB_SERVER_ADDRS"])
        } catch {
            throw .configuration("\(error)")
        }
        // One line each, at warning: what the journal shows (`journalctl -p warning`).
        for warning in Configuration.allWarnings(environment, configuration) { logger.warning("\(warning)") }
        if !noCoreDumps { logger.warning("could not turn core dumps off (setrlimit or prctl failed)") }
        let threads = serverOptions.eventLoops + workers
        let descriptors = FastCGIServer.raiseDescriptorLimit(toHold: serverOptions.maxConnections, threads: threads)
        if descriptors < serverOptions.maxConnections + 2 * threads + 64 {
            logger.warning("the descriptor limit is below what --max-connections needs; raise LimitNOFILE",
                           metadata: ["limit": .stringConvertible(descriptors),
                                      "max_connections": .stringConvertible(serverOptions.maxConnections)])
        }
        // Counters live as long as the process, across reloads.
        let activity = WorkerActivity(eventLoops: serverOptions.eventLoops, workers: workers)
        let metrics = Metrics(activity: activity)
        let holder = ContextHolder(AppContext(configuration: configuration, logger: logger, workers: workers, metrics: metrics))
        do {
            let socket = try ListenSocket.open(options.address)
            let server = try FastCGIServer(socket: socket, options: serverOptions, logger: logger, activity: activity) {
                try MagicBellResponder(holder: holder)
            }
            try server.run {
                reload(holder, workers: workers, metrics: metrics, logger: logger)
            }
        } catch let error as ListenError {
            throw .listen(error.description)
        } catch {
            throw .listen("\(error)")
        }
    }

    /// SIGHUP: reads the environment's files again (rotated secrets) and
    /// swaps the configuration in; a bad one is refused, the old one stays.
    private static func reload(_ holder: ContextHolder, workers: Int, metrics: Metrics, logger: Logger) {
        do {
            let environment = Configuration.processEnvironment(standardProxy: true)
            let fresh = try Configuration.load(from: environment).checked(workers: workers)
            for warning in Configuration.allWarnings(environment, fresh) { logger.warning("\(warning)") }
            holder.replace(with: AppContext(configuration: fresh, logger: logger, workers: workers, metrics: metrics))
            logger.notice("configuration reloaded")
        } catch {
            logger.error("configuration reload refused; the current configuration stays in force",
                         metadata: ["error": "\(error)"])
        }
    }
}

extension Configuration {
    /// What is probably a mistake but works: unknown `MAGICBELL_*` names, a
    /// short secret. Warned, never refused, so existing deployments keep
    /// working (serve logs them, check-config prints them).
    public static func allWarnings(_ environment: [String: String], _ configuration: Configuration) -> [String] {
        warnings(about: environment) + configuration.warnings
    }
}

extension PeerPolicy {
    /// Who may connect: `--peer-uid` (unix sockets) and libfcgi's
    /// `FCGI_WEB_SERVER_ADDRS` (TCP), checked the same way by serve and check-config.
    public static func forServe(peerUIDs: [UInt32]?, addresses: String?) throws(ConfigurationError) -> PeerPolicy {
        do {
            return PeerPolicy(allowedUIDs: peerUIDs, allowedAddresses: try webServerAddresses(addresses))
        } catch {
            throw ConfigurationError(error.setting, error.problem)
        }
    }
}
