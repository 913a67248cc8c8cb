import Glibc
import FastCGIServer
import Logging

/// The app: routes each request and maps failures to JSON errors. One
/// instance per server thread (event loop or pool thread), so its minter
/// and buffers are never shared.
public final class MagicBellResponder: FastCGIResponder {
    private var token: TokenEndpoint
    private var admin: AdminEndpoint
    private var logger: Logger
    /// This worker's own token counters (see `Metrics`).
    private let counters: Metrics.TokenCounters
    /// `--log-level debug` or lower: a line per request. Read once: the
    /// level is set at start, and reading it through the logger copies the
    /// handler on every request.
    private let logsEveryRequest: Bool
    /// Where a reloaded configuration comes from, and the generation this
    /// worker's endpoints were built for.
    private let holder: ContextHolder?
    private var generation: Int

    /// A worker's responder, following the configuration in `holder`.
    public init(holder: ContextHolder) throws {
        let (context, generation) = holder.snapshot()
        token = try TokenEndpoint(context: context)
        admin = AdminEndpoint(context: context)
        logger = context.logger
        counters = context.metrics.registerWorker()
        logsEveryRequest = context.logger.logLevel <= .debug
        self.holder = holder
        self.generation = generation
    }

    /// A responder with a fixed context.
    public init(context: AppContext) throws {
        token = try TokenEndpoint(context: context)
        admin = AdminEndpoint(context: context)
        logger = context.logger
        counters = context.metrics.registerWorker()
        logsEveryRequest = context.logger.logLevel <= .debug
        holder = nil
        generation = 0
    }

    /// A responder with a context of its own (the CLI, tests).
    public convenience init(configuration: Configuration, logger: Logger,
                            clock: @escaping @Sendable () -> Int = MagicBellResponder.systemClock) throws {
        try self.init(context: AppContext(configuration: configuration, logger: logger, clock: clock))
    }

    /// Takes up a reloaded configuration, between two requests.
    private func followReload(_ holder: ContextHolder) {
        let (context, generation) = holder.snapshot()
        do {
            token = try TokenEndpoint(context: context)
            admin = AdminEndpoint(context: context)
            logger = context.logger
        } catch {
            // Only an OpenSSL failure gets here; keep serving with what works.
            logger.error("worker could not take up the reloaded configuration", metadata: ["error": "\(error)"])
        }
        self.generation = generation
    }

    /// Only the admin route reads a body (its creates); the token and
    /// metrics routes, and a refusal, answer the same whatever the body, so
    /// a body still arriving (a web server that streams uploads) is not
    /// waited for (issue 19 §2).
    public func answersBeforeBody(_ request: some RequestParameters) -> Bool {
        !(request.param(Route.routeParam)?.equals("admin") ?? false)
    }

    /// The admin route (MagicBell calls; its console and metrics pages
    /// are rare enough to go along) and, with `MAGICBELL_MINT=api`, the
    /// token route wait on MagicBell: the server answers them on its
    /// blocking pool, never on an event loop. Everything else (local
    /// tokens, health, metrics, refusals) is answered where it was read.
    public func blocks(_ request: some RequestParameters) -> Bool {
        if let holder, holder.generation != generation { followReload(holder) }
        guard let route = request.param(Route.routeParam) else { return false }
        return route.equals("admin") || (token.mintsOnMagicBell && route.equals("token"))
    }

    /// Unix seconds; `time()` is a vDSO call, no syscall.
    public static let systemClock: @Sendable () -> Int = { Int(time(nil)) }

    public func respond(to request: FastCGIRequest, with response: inout HTTPResponse) {
        if let holder, holder.generation != generation { followReload(holder) }
        handle(request, &response)
    }

    /// The whole request → response mapping, for any source of params.
    ///
    /// Logs: every error on a non-admin route is one line at info (warning
    /// when it means nginx or MagicBell is wrong: a 400 on the identity
    /// params, a 5xx); the admin route writes its own audit line; with
    /// `--log-level debug`, every request is one more line. Each carries
    /// nginx's `$request_id`, and so does the answer (`X-Request-Id`), so
    /// that a failure seen in the browser leads to its line. A token at info
    /// level has no line, so its answer skips the header (and the lookup).
    public func handle(_ params: some RequestParameters & RequestBodyReader, _ response: inout HTTPResponse) {
        let started = logsEveryRequest ? MonotonicClock.now() : 0
        let method = HTTPMethod(params.param("REQUEST_METHOD"))
        var routeName = "none"
        var isAdmin = false
        var isHealth = false
        var failed = false
        var misconfigured: Logger.Metadata?
        do throws(EndpointError) {
            let route: Route
            do {
                route = try Route.of(params)
            } catch {
                let (answer, warning) = Self.refusal(error)
                misconfigured = warning
                throw answer
            }
            routeName = route.name
            isHealth = route == .health
            isAdmin = route != .token && !isHealth
            let request = try MagicBellRequest(params, route: route, method: method)
            switch request.action {
            case .token(let user):
                try token.respond(to: request, for: user, with: &response)
                counters.minted.add(1, ordering: .relaxed)
            case .admin(let path, let actor):
                admin.respond(to: request, path: path, actor: actor, with: &response)
            case .metrics:
                admin.respondWithMetrics(to: request, with: &response)
            case .health:
                Self.respondHealthy(with: &response)
            }
        } catch {
            failed = true
            if !isHealth { counters.refused(error.code) }
            var fields = Self.requestFields(params, routeName, method, status: error.status)
            fields["code"] = .string(error.code.rawValue)
            if let misconfigured {
                logger.warning("request refused: the location declares no MAGICBELL_ROUTE",
                               metadata: fields.merging(misconfigured) { $1 })
            } else {
                logger.log(level: error.status == 400 || error.status >= 500 ? .warning : .info, "request refused", metadata: fields)
            }
            error.write(to: &response)
        }
        // A probe every few seconds is counted, answered or refused, apart from tokens.
        if isHealth { counters.healthChecks.add(1, ordering: .relaxed) }
        if failed || isAdmin || logsEveryRequest, let requestID = params.param("REQUEST_ID") {
            response.addHeader("X-Request-Id", visibleASCII: requestID)
        }
        // RFC 9110 §9.3.2: no answer to HEAD has a body, on any route (HAProxy
        // turns one that has into a 502): the health route's 200, every other
        // route's 405.
        if method == .head { response.omitBody() }
        if logsEveryRequest {
            var fields = Self.requestFields(params, routeName, method, status: response.status)
            fields["duration_ms"] = .stringConvertible(MonotonicClock.milliseconds(since: started))
            logger.debug("request", metadata: fields)
        }
    }

    /// The health route's answer. Only a responder with a configuration
    /// that loaded exists (`serve` refuses to start without one, and a
    /// refused reload leaves the old one in force), so it can mint: nothing
    /// else is checked, and MagicBell is not called (a monitor must not turn
    /// MagicBell's outage into this host's, nor call it every few seconds).
    static func respondHealthy(with response: inout HTTPResponse) {
        response.body.append(contentsOf: #"{"status":"ok"}"#.utf8)
        response.addHeader("Content-Type", "application/json")
        EndpointError.addNoStoreHeaders(to: &response)
    }

    /// A request with no route. A location without a valid `MAGICBELL_ROUTE`
    /// is a server misconfiguration: its one log line is a warning that
    /// names the param (the client sees only a 404).
    private static func refusal(_ refusal: Route.Refusal) -> (EndpointError, Logger.Metadata?) {
        switch refusal {
        case .notDeclared(let found):
            return (.notFound, ["param": .string("\(Route.routeParam)"), "found": .string(found ?? "-"),
                                "hint": "set fastcgi_param MAGICBELL_ROUTE token|admin|metrics|health in the location"])
        case .invalidPath(let why):
            return (.invalidPath(why), nil)
        case .notFound:
            return (.notFound, nil)
        }
    }

    /// The fields of every log line about a request.
    private static func requestFields(_ params: some RequestParameters, _ route: String, _ method: HTTPMethod,
                                      status: Int) -> Logger.Metadata {
        [
            "request_id": .string(params.string("REQUEST_ID") ?? "-"),
            "route": .string(route),
            "method": .string(method.logName),
            "status": .stringConvertible(status),
        ]
    }
}
