import Glibc
import FastCGIServer
import FoundationEssentials
import MagicBellAPI
import MagicBellJWT

/// `…/magicbell-admin/jwt/…`: forwards MagicBell's six JwtService
/// operations with the server's project token, for the locations that
/// declare the admin route (`fastcgi_param MAGICBELL_ROUTE admin`); and the
/// metrics, for those and for `MAGICBELL_ROUTE metrics`.
final class AdminEndpoint {
    private let context: AppContext

    init(context: AppContext) { self.context = context }

    /// `MAGICBELL_ROUTE admin`; `path` is what follows `/magicbell-admin/`.
    func respond(to request: MagicBellRequest<some RequestParameters & RequestBodyReader>, path: [String],
                 actor: Result<UserIdentity?, EndpointError>, with response: inout HTTPResponse) {
        let started = MonotonicClock.now()
        let method = request.method.name
        let user = try? actor.get()
        var entry = AuditLog.Entry(
            requestID: request.params.string("REQUEST_ID"),
            actorExternalID: user?.externalID?.string, actorEmail: user?.email?.string,
            method: method, status: 0, outcome: "rejected", durationMS: 0)
        var audited = true
        defer {
            entry.status = response.status
            entry.durationMS = MonotonicClock.milliseconds(since: started)
            context.metrics.countAdmin(operation: entry.operation ?? "none", status: response.status)
            if audited { context.audit.record(entry) }
        }
        do throws(EndpointError) {
            _ = try actor.get()
            try checkOrigin(request.params)
            if path == ["metrics"] {
                // Scrapes are counted but not audited: every 15 s is noise, not an action.
                entry.operation = "metrics"
                try serveMetrics(method: request.method, &response)
                audited = false
                return
            }
            if let asset = ConsoleAssets.asset(for: path) {
                // Page loads are counted, not audited: the console's actions are.
                entry.operation = "console"
                try ConsoleAssets.serve(asset, method: request.method,
                                        fetchSite: request.params.string("HTTP_SEC_FETCH_SITE")?.lowercased(), &response)
                audited = false
                return
            }
            guard let client = context.client else { throw .adminNotConfigured }
            let (operation, pathValue) = try AdminRequest.resolve(method: method, segments: path)
            entry.operation = operation.rawValue
            entry.target = pathValue
            let call = try AdminRequest.build(operation, pathValue: pathValue, request: request.params)
            guard context.adminGate.tryEnter() else {
                response.addHeader("Retry-After", "1")
                throw .adminBusy
            }
            defer { context.adminGate.leave() }
            let answer: APIResponse
            let retryAfter: String?
            switch call {
            case .list(let list): (answer, _, retryAfter) = try forward(list, with: client)
            case .discard(let discard): (answer, _, retryAfter) = try forward(discard, with: client)
            case .create(let create):
                let (forwarded, created, wait) = try forward(create, with: client)
                answer = forwarded
                retryAfter = wait
                // The new token's id, never its value; from the model, or from
                // a success that is not quite the model (decoded only then).
                if entry.target == nil, (200..<300).contains(answer.status) {
                    entry.target = created?.tokenID
                        ?? (try? JSONDecoder().decode(CreatedTokenID.self, from: Data(answer.body)))?.tokenID
                }
            }
            entry.outcome = (200..<300).contains(answer.status) ? "ok" : "upstream_error"
            response.setStatus(answer.status)
            response.addHeader("Content-Type", "application/json")
            if let retryAfter { response.addHeader("Retry-After", string: retryAfter) }
            EndpointError.addNoStoreHeaders(to: &response)
            response.body.append(contentsOf: answer.body)
        } catch {
            // MagicBell's own refusal (its status kept) is an upstream_error outcome, like a JSON one.
            if error.code.isUpstream { entry.outcome = error.upstreamStatus == nil ? "upstream_failure" : "upstream_error" }
            entry.error = error.code.rawValue
            error.write(to: &response)
        }
    }

    /// `MAGICBELL_ROUTE metrics`: the metrics and nothing else, whatever the path.
    func respondWithMetrics(to request: MagicBellRequest<some RequestParameters & RequestBodyReader>,
                            with response: inout HTTPResponse) {
        do throws(EndpointError) {
            try checkOrigin(request.params)
            try serveMetrics(method: request.method, &response)
        } catch {
            error.write(to: &response)
        }
        context.metrics.countAdmin(operation: "metrics", status: response.status)
    }

    /// Only same-site browsers may use the admin role (the role itself is
    /// the route the location declared). The site's origin is the one the
    /// browser addressed: `MAGICBELL_SITE_ORIGIN` (`$scheme://$http_host`,
    /// set by magicbell-fastcgi.conf), so that a `fastcgi_params` that sets
    /// `HTTP_HOST $host` (no port) cannot make a same-origin POST look foreign.
    static let siteOriginParam: StaticString = "MAGICBELL_SITE_ORIGIN"

    private func checkOrigin(_ request: some RequestParameters) throws(EndpointError) {
        if request.string("HTTP_SEC_FETCH_SITE")?.lowercased() == "cross-site" { throw .crossOrigin }
        if let origin = request.string("HTTP_ORIGIN") {
            guard let normalized = Origin.normalize(origin) else { throw .crossOrigin } // "null" and the like
            let site = request.string(Self.siteOriginParam).flatMap(Origin.normalize)
                ?? Origin.site(scheme: request.string("REQUEST_SCHEME") ?? "http", host: request.string("HTTP_HOST") ?? "")
            guard normalized == site || context.configuration.allowedOrigins.contains(normalized) else {
                throw .crossOrigin
            }
        }
    }

    /// MagicBell's answer as MagicBell gave it:
    /// - a success that decodes to the operation's model, with the model;
    /// - a success that is JSON but not the model, forwarded: the call took
    ///   effect upstream (a create's one-time token is in it);
    /// - a 4xx or 5xx keeps its status whatever the body: a JSON body is
    ///   forwarded, any other (empty, a proxy's HTML page) is our
    ///   `upstream_error` with `upstream_status`; Retry-After on 429 and 503
    ///   is passed on.
    /// A success that is not JSON, a redirect, an oversized answer or no
    /// answer at all is a 502 or 504.
    private func forward<Answer>(_ call: JwtCall<Answer>, with client: JWTServiceClient)
        throws(EndpointError) -> (answer: APIResponse, value: Answer?, retryAfter: String?) {
        do {
            let answered = try context.perform(call, with: client)
            return (APIResponse(status: answered.status, body: answered.body), answered.value, nil)
        } catch .undecodable(let status, let body) {
            guard JSONValue.parse(body) != nil else { throw .upstreamInvalid("the body is not JSON (status \(status))") }
            return (APIResponse(status: status, body: body), nil, nil)
        } catch .http(let status, let body, let retryAfter) {
            // 407 and 408 speak of the connection, not of the call: a browser
            // may resend on a 408. They are MagicBell's, so a 502 that says so.
            if status == 407 || status == 408 { throw .upstreamRefused(status: status, retryAfter: nil, as: 502) }
            guard JSONValue.parse(body) != nil else { throw .upstreamRefused(status: status, retryAfter: retryAfter) }
            return (APIResponse(status: status, body: body), nil, RetryAfter.passedOn(retryAfter, status: status))
        } catch {
            throw EndpointError(upstream: error)
        }
    }

    /// `GET …/magicbell-admin/metrics`: the Prometheus text exposition.
    private func serveMetrics(method: HTTPMethod, _ response: inout HTTPResponse) throws(EndpointError) {
        guard method == .get else { throw .methodNotAllowed(["GET"]) }
        response.addHeader("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        EndpointError.addNoStoreHeaders(to: &response)
        response.body.append(contentsOf: context.metrics.render().utf8)
    }
}

/// The one field of a create's answer the audit line names.
private struct CreatedTokenID: Decodable {
    let tokenID: String
    enum CodingKeys: String, CodingKey { case tokenID = "token_id" }
}
