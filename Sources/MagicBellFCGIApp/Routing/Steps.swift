import FastCGIServer
import MagicBellJWT

/// The steps of `RouteTable.Step`: each runs `next` (the rest of the steps,
/// then the handler) inside what it adds.
struct Steps {
    let context: AppContext

    /// Counts the request by entry and status in the admin metrics, and
    /// answers its errors here (an admin refusal is not a token refusal).
    func counted(_ state: inout RequestState, _ response: inout HTTPResponse,
                 _ next: (inout RequestState, inout HTTPResponse) throws(EndpointError) -> Void) {
        do {
            try next(&state, &response)
        } catch {
            error.write(to: &response)
        }
        context.metrics.countAdmin(operation: state.entry ?? "none", status: response.status)
    }

    /// One audit line for the request, with the actor the location set: a
    /// refused actor is kept as the error, so that the refusal is audited too.
    func audited(_ request: MagicBellRequest<some RequestParameters & RequestBodyReader>,
                 _ state: inout RequestState, _ response: inout HTTPResponse,
                 _ next: (inout RequestState, inout HTTPResponse) throws(EndpointError) -> Void) {
        let started = MonotonicClock.now()
        let actor = Result { () throws(EndpointError) in try Identity.of(request.params) }
        let user = try? actor.get()
        var entry = AuditLog.Entry(
            requestID: request.params.string("REQUEST_ID"),
            actorExternalID: user?.externalID?.string, actorEmail: user?.email?.string,
            method: request.method.name, status: 0, outcome: "rejected", durationMS: 0)
        var failure: EndpointError?
        do {
            _ = try actor.get()
            try next(&state, &response)
        } catch {
            // MagicBell's own refusal (its status kept) is an upstream_error outcome, like a JSON one.
            if error.code.isUpstream { entry.outcome = error.upstreamStatus == nil ? "upstream_failure" : "upstream_error" }
            entry.error = error.code.rawValue
            error.write(to: &response)
            failure = error
        }
        guard failure != nil || !state.auditsRefusalsOnly else { return }
        entry.operation = state.entry
        entry.target = state.target
        if failure == nil, let outcome = state.outcome { entry.outcome = outcome }
        entry.status = response.status
        entry.durationMS = MonotonicClock.milliseconds(since: started)
        context.audit.record(entry)
    }

    /// Only same-site browsers may use the admin role (the role itself is
    /// the route the location declared). The site's origin is the one the
    /// browser addressed: `MAGICBELL_SITE_ORIGIN` (`$scheme://$http_host`,
    /// set by magicbell-fastcgi.conf), so that a `fastcgi_params` that sets
    /// `HTTP_HOST $host` (no port) cannot make a same-origin POST look foreign.
    static let siteOriginParam: StaticString = "MAGICBELL_SITE_ORIGIN"

    func checkOrigin(_ request: some RequestParameters) throws(EndpointError) {
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
}
