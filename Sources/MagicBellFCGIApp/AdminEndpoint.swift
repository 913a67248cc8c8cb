import FastCGIServer
import MagicBellAPI
import MagicBellJWT

/// `…/magicbell-admin/jwt/…`: forwards MagicBell's JwtService operations
/// with the server's project token. Each operation is one entry of
/// `RouteTable.app` whose handler is `forward` of its `JwtEndpoint`;
/// everything forwarded is rebuilt from validated values (`AdminRequest`).
final class AdminEndpoint {
    let context: AppContext

    init(context: AppContext) { self.context = context }

    /// One operation's call, sent through the admin gate; MagicBell's
    /// answer written as MagicBell gave it:
    /// - a success that decodes to the operation's model;
    /// - a success that is JSON but not the model, forwarded: the call took
    ///   effect upstream (a create's one-time token is in it);
    /// - a 4xx or 5xx keeps its status whatever the body: a JSON body is
    ///   forwarded, any other (empty, a proxy's HTML page) is our
    ///   `upstream_error` with `upstream_status`; Retry-After on 429 and 503
    ///   is passed on.
    /// A success that is not JSON, a redirect, an oversized answer or no
    /// answer at all is a 502 or 504. The audit's target, for a create, is
    /// the new token's id, from the answer as decoded (never decoded again).
    func forward<Answer>(_ call: JwtCall<Answer>, with client: JWTServiceClient, _ state: inout RequestState,
                         _ response: inout HTTPResponse) throws(EndpointError) {
        guard context.adminGate.tryEnter() else {
            response.addHeader("Retry-After", "1")
            throw .adminBusy
        }
        defer { context.adminGate.leave() }
        let status: Int, body: [UInt8]
        var retryAfter: String?
        do {
            let answered = try context.perform(call, with: client)
            (status, body) = (answered.status, answered.body)
            state.target = state.target ?? answered.value.createdID
        } catch .undecodable(let answeredStatus, let answeredBody) {
            guard let json = JSONValue.parse(answeredBody) else {
                throw .upstreamInvalid("the body is not JSON (status \(answeredStatus))")
            }
            (status, body) = (answeredStatus, answeredBody)
            // A create's new token id, from the one parse of an answer that is not quite the model.
            if call.request.operation.body != nil { state.target = state.target ?? json["token_id"]?.string }
        } catch .http(let answeredStatus, let answeredBody, let wait) {
            // 407 and 408 speak of the connection, not of the call: a browser
            // may resend on a 408. They are MagicBell's, so a 502 that says so.
            if answeredStatus == 407 || answeredStatus == 408 {
                throw .upstreamRefused(status: answeredStatus, retryAfter: nil, as: 502)
            }
            guard JSONValue.parse(answeredBody) != nil else { throw .upstreamRefused(status: answeredStatus, retryAfter: wait) }
            (status, body) = (answeredStatus, answeredBody)
            retryAfter = RetryAfter.passedOn(wait, status: answeredStatus)
        } catch {
            throw EndpointError(upstream: error)
        }
        state.outcome = (200..<300).contains(status) ? "ok" : "upstream_error"
        response.setStatus(status)
        response.addHeader("Content-Type", "application/json")
        if let retryAfter { response.addHeader("Retry-After", string: retryAfter) }
        EndpointError.addNoStoreHeaders(to: &response)
        response.body.append(contentsOf: body)
    }

    /// `GET …/magicbell-admin/metrics`, and `MAGICBELL_ROUTE metrics`: the
    /// Prometheus text exposition.
    func serveMetrics(_ response: inout HTTPResponse) {
        response.addHeader("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        EndpointError.addNoStoreHeaders(to: &response)
        response.body.append(contentsOf: context.metrics.render().utf8)
    }
}

/// A route-table handler that forwards one of MagicBell's operations.
protocol AdminForward: Sendable {
    var operation: JwtOperation { get }
    /// What would be sent for an admin request (the fuzzer's view of `forward`).
    func apiRequest(_ request: MagicBellRequest<some RequestParameters & RequestBodyReader>, pathValue: String?)
        throws(EndpointError) -> APIRequest
    /// Validates the path value, query and body by the operation's rules
    /// and models, then forwards the call.
    func forward(_ request: MagicBellRequest<some RequestParameters & RequestBodyReader>, pathValue: String?,
                 via admin: AdminEndpoint, _ state: inout RequestState, _ response: inout HTTPResponse) throws(EndpointError)
}

extension JwtEndpoint: AdminForward {
    /// The operation's call for an admin request: the path value, the query
    /// and the body checked by the operation's rules and models, and
    /// rebuilt from the checked values.
    func call(_ request: MagicBellRequest<some RequestParameters & RequestBodyReader>, pathValue: String?)
        throws(EndpointError) -> JwtCall<Answer> {
        if let name = operation.path.parameter { try AdminRequest.validateID(pathValue ?? "", name: name) }
        let page = try AdminRequest.parseQuery(request.params.param("QUERY_STRING").map(Array.init) ?? [],
                                               paginated: operation.isPaginated)
        let body: Body
        if let none = Body.none { body = none } else { body = try AdminRequest.decode(Body.self, json: try AdminRequest.body(request.params)) }
        return call(pathValue: pathValue, page: page, body: body)
    }

    func apiRequest(_ request: MagicBellRequest<some RequestParameters & RequestBodyReader>, pathValue: String?)
        throws(EndpointError) -> APIRequest {
        try call(request, pathValue: pathValue).request
    }

    func forward(_ request: MagicBellRequest<some RequestParameters & RequestBodyReader>, pathValue: String?,
                 via admin: AdminEndpoint, _ state: inout RequestState, _ response: inout HTTPResponse) throws(EndpointError) {
        guard let client = admin.context.client else { throw .adminNotConfigured }
        // Named in the audit line even when refused below (an invalid id
        // too, cut to a bounded length: the log line escapes it).
        state.target = pathValue.map { $0.unicodeScalars.count > AdminRequest.maxIDLength + 1
            ? String(String.UnicodeScalarView($0.unicodeScalars.prefix(AdminRequest.maxIDLength))) + "…" : $0 }
        try admin.forward(try call(request, pathValue: pathValue), with: client, &state, &response)
    }
}
