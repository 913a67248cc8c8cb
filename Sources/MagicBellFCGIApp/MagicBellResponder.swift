import Glibc
import FastCGIServer
import Logging

/// The app: routes each request and maps failures to JSON errors. One
/// instance per server thread (event loop or pool thread), so its minter
/// and buffers are never shared.
public final class MagicBellResponder: FastCGIResponder {
    private var token: TokenEndpoint
    private var admin: AdminEndpoint
    private var steps: Steps
    /// `RouteTable.app`, kept here: read without a once-check per request.
    private let routes = RouteTable.app
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
        steps = Steps(context: context)
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
        steps = Steps(context: context)
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
            steps = Steps(context: context)
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
    public func answersBeforeBody(_ request: FastCGIRequest) -> Bool {
        declared(request) != .admin
    }

    /// As above, for params from anywhere (tests, tools).
    public func answersBeforeBody(_ request: some RequestParameters) -> Bool {
        (try? Route.declared(request)) != .admin
    }

    /// The admin route's group blocks (MagicBell calls; its console and
    /// metrics pages are rare enough to go along), and so does the token
    /// route with `MAGICBELL_MINT=api`: the server answers them on its
    /// blocking pool, never on an event loop. Everything else (local
    /// tokens, health, metrics, refusals) is answered where it was read.
    public func blocks(_ request: FastCGIRequest) -> Bool {
        if let holder, holder.generation != generation { followReload(holder) }
        guard let route = declared(request) else { return false }
        return routes[route].blocks || (route == .token && token.mintsOnMagicBell)
    }

    /// The declared route, looked up once per request: kept as the
    /// request's note (`route.rawValue + 1`; -1 for none) from `blocks` to `respond`.
    private func declared(_ request: FastCGIRequest) -> Route? {
        if request.note == 0 { request.note = (try? Route.declared(request)).map { $0.rawValue + 1 } ?? -1 }
        return request.note > 0 ? Route(rawValue: request.note - 1) : nil
    }

    /// Unix seconds; `time()` is a vDSO call, no syscall.
    public static let systemClock: @Sendable () -> Int = { Int(time(nil)) }

    public func respond(to request: FastCGIRequest, with response: inout HTTPResponse) {
        if let holder, holder.generation != generation { followReload(holder) }
        handle(request, &response, declared: declared(request))
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
        handle(params, &response, declared: nil)
    }

    /// `declared`: the route already looked up (nil: look it up, and refuse
    /// a request without one).
    private func handle(_ params: some RequestParameters & RequestBodyReader, _ response: inout HTTPResponse,
                        declared: Route?) {
        let started = logsEveryRequest ? MonotonicClock.now() : 0
        let method = HTTPMethod(params.param("REQUEST_METHOD"))
        var routeName = "none"
        var isHealth = false
        var answeredByItsSteps = false
        var failed = false
        var misconfigured: Logger.Metadata?
        do throws(EndpointError) {
            let route: Route, path: [String]
            do throws(Route.Refusal) {
                if let declared { route = declared } else { route = try Route.declared(params) }
                routeName = route.name
                path = try route.path(params)
            } catch {
                let (answer, warning) = Self.refusal(error)
                misconfigured = warning
                throw answer
            }
            isHealth = route == .health
            let request = MagicBellRequest(params: params, route: route, method: method, path: path)
            let group = routes[route]
            answeredByItsSteps = !group.steps.isEmpty
            var state = RequestState()
            // A route with one entry (metrics) is named before its steps run,
            // so that their refusals are counted under it too.
            if group.entries.count == 1 { state.entry = group.entries[0].name }
            try pass(request, group, step: 0, &state, &response)
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
        if failed || answeredByItsSteps || logsEveryRequest, let requestID = params.param("REQUEST_ID") {
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

    /// The group's steps from `step` on, outermost first, then its entry
    /// for the method and path (404 or 405 without one) and that entry's handler.
    private func pass(_ request: MagicBellRequest<some RequestParameters & RequestBodyReader>, _ group: RouteTable.Group,
                      step: Int, _ state: inout RequestState, _ response: inout HTTPResponse) throws(EndpointError) {
        guard step < group.steps.count else { return try answer(request, &state, &response) }
        let next = { (state: inout RequestState, response: inout HTTPResponse) throws(EndpointError) in
            try self.pass(request, group, step: step + 1, &state, &response)
        }
        switch group.steps[step] {
        case .counted: steps.counted(&state, &response, next)
        case .audited: steps.audited(request, &state, &response, next)
        case .sameOrigin:
            try steps.checkOrigin(request.params)
            try next(&state, &response)
        }
    }

    private func answer(_ request: MagicBellRequest<some RequestParameters & RequestBodyReader>,
                        _ state: inout RequestState, _ response: inout HTTPResponse) throws(EndpointError) {
        switch routes.match(request.route, request.method, path: request.path) {
        case .notFound:
            throw .notFound
        case .methodNotAllowed(let allowed, let name):
            state.entry = name
            throw request.route == .token ? .methodNotAllowed : .methodNotAllowed(allowed)
        case .found(let entry, let pathValue):
            state.entry = entry.name
            state.auditsRefusalsOnly = entry.auditsRefusalsOnly
            switch entry.handler {
            case .token:
                guard let user = try Identity.of(request.params) else { throw .unauthenticated }
                try token.respond(to: request, for: user, with: &response)
                counters.minted.add(1, ordering: .relaxed)
            case .health:
                Self.respondHealthy(with: &response)
            case .metrics:
                admin.serveMetrics(&response)
            case .asset(let asset):
                try ConsoleAssets.serve(asset, fetchSite: request.params.string("HTTP_SEC_FETCH_SITE")?.lowercased(), &response)
            case .forward(let operation):
                try operation.forward(request, pathValue: pathValue, via: admin, &state, &response)
            }
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
