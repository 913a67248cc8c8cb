import FastCGIServer

/// The admin console (issue 14): one page, one JS module and one style
/// sheet, served on the admin route itself, so it needs nothing installed
/// and has exactly that route's auth and CSRF rule; its actions are the
/// route's own calls, audited as any other. The files are
/// Console/assets/console.{html,js,css}, compiled in as static strings by
/// scripts/embed-console (ConsoleFiles.swift; no resources: a bundle would
/// need all of Foundation).
enum ConsoleAssets {
    /// The three files; `RouteTable.app` maps the paths to them.
    enum Asset: Sendable {
        case page, script, style

        var body: StaticString {
            switch self {
            case .page: ConsoleAssets.page
            case .script: ConsoleAssets.script
            case .style: ConsoleAssets.style
            }
        }

        var contentType: StaticString {
            switch self {
            case .page: "text/html; charset=utf-8"
            case .script: "text/javascript; charset=utf-8"
            case .style: "text/css; charset=utf-8"
            }
        }
    }

    /// The CSP: only this origin's files (no inline script or style), no
    /// framing; and what default-src does not cover: no form may submit
    /// (the forms are the script's; before it runs, a plain submit would put
    /// what was typed in a URL), no <base>, no plugins.
    static let contentSecurityPolicy: StaticString =
        "default-src 'self'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'; object-src 'none'"

    /// The asset, with the CSP, no caching, no sniffing, no referrer, its
    /// own browsing context group. Only a navigation the admin made here
    /// (typed, bookmarked) or a load from the page itself: a link from
    /// another site, even a sibling subdomain, does not open the console.
    static func serve(_ asset: Asset, fetchSite: String?, _ response: inout HTTPResponse) throws(EndpointError) {
        if let fetchSite, fetchSite != "none" && fetchSite != "same-origin" { throw .crossOrigin }
        response.addHeader("Content-Type", asset.contentType)
        response.addHeader("Content-Security-Policy", contentSecurityPolicy)
        response.addHeader("Cross-Origin-Opener-Policy", "same-origin")
        response.addHeader("Referrer-Policy", "no-referrer")
        EndpointError.addNoStoreHeaders(to: &response)
        let body = asset.body
        response.body.append(contentsOf: UnsafeRawBufferPointer(start: body.utf8Start, count: body.utf8CodeUnitCount))
    }
}
