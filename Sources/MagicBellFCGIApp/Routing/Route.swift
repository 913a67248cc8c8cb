import FastCGIServer
import MagicBellAPI

/// What a request is for, decided once, from what the web server set: the
/// location declares its route (`fastcgi_param MAGICBELL_ROUTE token|admin|metrics|health`),
/// and the admin route's entry comes from the decoded, normalized path the
/// server matched (`DOCUMENT_URI`). Later code works from these values
/// (`RouteTable` matches them) and never looks at the URI again.
///
/// Why not the URI alone: nginx picks the location (and its auth) from the
/// decoded, normalized path, cut at `#`; a responder that routes on the raw
/// `REQUEST_URI` can be steered by `%2F`, `#`, `//` or `..` into a route
/// the location never authorized (a metrics login listing tokens).
public enum Route: Int, CaseIterable, Sendable {
    /// `MAGICBELL_ROUTE token`: a token for the identity the location set.
    case token
    /// `MAGICBELL_ROUTE admin`: the admin role: MagicBell's operations,
    /// the console and the metrics, by the path after `/magicbell-admin/`.
    case admin
    /// `MAGICBELL_ROUTE metrics`: the metrics and nothing else.
    case metrics
    /// `MAGICBELL_ROUTE health`: whether the responder can mint, for a load
    /// balancer or a monitor; no identity, no secret, no auth.
    case health

    /// As logs and metrics name it.
    public var name: String {
        switch self {
        case .token: return "token"
        case .admin: return "admin"
        case .metrics: return "metrics"
        case .health: return "health"
        }
    }

    public static let routeParam: StaticString = "MAGICBELL_ROUTE"
    static let adminSegment = Array("/magicbell-admin/".utf8)

    /// Why a request has no route.
    public enum Refusal: Error, Equatable {
        /// No `MAGICBELL_ROUTE`, or a value other than token, admin, metrics, health:
        /// the location is not one of the project's (404, and a warning).
        case notDeclared(found: String?)
        /// The raw target has `#`, or does not decode to the matched path,
        /// or the server sent no path (400 `invalid_path`).
        case invalidPath(String)
        /// An admin location whose path has no `/magicbell-admin/` segment.
        case notFound
    }

    /// The route the location declares. Two short param compares at most on
    /// the token path, no allocation.
    public static func declared(_ request: some RequestParameters) throws(Refusal) -> Route {
        guard let declared = request.param(routeParam) else { throw .notDeclared(found: nil) }
        if declared.equals("token") { return .token }
        if declared.equals("admin") { return .admin }
        if declared.equals("metrics") { return .metrics }
        if declared.equals("health") { return .health }
        throw .notDeclared(found: String(decoding: declared.prefix(40), as: UTF8.self))
    }

    /// The path `route` acts on, once checked against the raw target (every
    /// route: see `matchedPath`): the admin route's decoded segments after
    /// `/magicbell-admin/` (`[]` for the console page), `[]` for the others.
    public func path(_ request: some RequestParameters) throws(Refusal) -> [String] {
        let path = try Self.matchedPath(request)
        guard self == .admin else { return [] }
        return try Self.adminSegments(path)
    }

    /// The declared route and its path, checked (for tests and tools).
    public static func of(_ request: some RequestParameters) throws(Refusal) -> (route: Route, path: [String]) {
        let route = try declared(request)
        return (route, try route.path(request))
    }

    /// The matched path (see `MatchedPath`), once checked against the raw
    /// target (`REQUEST_URI` up to `?`, when the server sends it): no `#`,
    /// and percent-decoding it once gives exactly the matched path. nginx
    /// and Apache resolve `//`, `.` and `..` before matching, so a target
    /// that needed any of that is refused too: what the server matched and
    /// what is acted on are the same bytes.
    static func matchedPath(_ request: some RequestParameters) throws(Refusal) -> MatchedPath {
        let path = try MatchedPath(request)
        guard let raw = request.param("REQUEST_URI") else { return path }
        var i = try pathStart(raw), j = 0
        while i < raw.endIndex {
            var byte = raw[i]
            if byte == UInt8(ascii: "?") { break }
            if byte == UInt8(ascii: "#") { throw .invalidPath("the request target contains #") }
            if byte == UInt8(ascii: "%") {
                guard i + 2 < raw.endIndex, let high = PercentEncoding.hexValue(raw[i + 1]), let low = PercentEncoding.hexValue(raw[i + 2]) else {
                    throw .invalidPath("the request target has a malformed percent-escape")
                }
                byte = high << 4 | low
                i += 2
            }
            guard j < path.count, path[j] == byte else {
                throw .invalidPath("the request target does not decode to the path the server matched")
            }
            i += 1
            j += 1
        }
        guard j == path.count else {
            throw .invalidPath("the request target does not decode to the path the server matched")
        }
        return path
    }

    /// Where the path of the raw target starts. An origin-form target
    /// (`/path`, what nginx sends) is all path. An absolute-form one
    /// (`http://host/path`), which an HTTP/1.1 server must accept (RFC 9112
    /// §3.2.2) and Apache and HAProxy pass on as it came, has its path after
    /// `scheme://authority`; the scheme must be http or https, and an
    /// authority with userinfo is refused (RFC 9110 §4.2.4). Everything after
    /// is checked as before, so `http://host//x` is refused as `//x` is.
    static func pathStart(_ raw: UnsafeBufferPointer<UInt8>) throws(Refusal) -> Int {
        // A scheme is a letter, then letters, digits, +, - or . (RFC 3986 §3.1).
        guard let first = raw.first, (first | 0x20) >= UInt8(ascii: "a") && (first | 0x20) <= UInt8(ascii: "z") else { return 0 }
        var i = 1
        while i < raw.count, Self.isSchemeByte(raw[i]) { i += 1 }
        guard raw.count - i >= 3, raw[i] == UInt8(ascii: ":"), raw[i + 1] == UInt8(ascii: "/"), raw[i + 2] == UInt8(ascii: "/") else {
            return 0 // not absolute-form: compared whole, as ever
        }
        let scheme = UnsafeBufferPointer(rebasing: raw[..<i])
        guard scheme.equalsIgnoringCase("http") || scheme.equalsIgnoringCase("https") else {
            throw .invalidPath("the request target's scheme is not http or https")
        }
        let authority = i + 3
        var end = authority
        while end < raw.count, raw[end] != UInt8(ascii: "/"), raw[end] != UInt8(ascii: "?"), raw[end] != UInt8(ascii: "#") {
            if raw[end] == UInt8(ascii: "@") { throw .invalidPath("the request target has userinfo") }
            end += 1
        }
        guard end > authority else { throw .invalidPath("the request target has no authority") }
        return end
    }

    private static func isSchemeByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."): return true
        default: return false
        }
    }

    /// The segments after the first `/magicbell-admin/` of the matched path.
    static func adminSegments(_ path: MatchedPath) throws(Refusal) -> [String] {
        let bytes = path.bytes
        let n = adminSegment.count
        var start = 0
        while start + n <= bytes.count && !bytes[start..<(start + n)].elementsEqual(adminSegment) { start += 1 }
        guard start + n <= bytes.count else { throw .notFound }
        guard let rest = String(validating: bytes[(start + n)...], as: UTF8.self) else {
            throw .invalidPath("the path is not valid UTF-8")
        }
        if rest.isEmpty { return [] } // the console's page
        return rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    }
}

extension UnsafeBufferPointer<UInt8> {
    /// ASCII letters compared without case (`literal` is lower case).
    func equalsIgnoringCase(_ literal: StaticString) -> Bool {
        guard count == literal.utf8CodeUnitCount else { return false }
        let expected = literal.utf8Start
        for k in 0..<count {
            let byte = self[k]
            let lower = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
            if lower != expected[k] { return false }
        }
        return true
    }

    /// Byte for byte, without making a String (the token path's compares).
    func equals(_ literal: StaticString) -> Bool {
        guard count == literal.utf8CodeUnitCount else { return false }
        let expected = literal.utf8Start
        for k in 0..<count where self[k] != expected[k] { return false }
        return true
    }
}

/// The decoded, normalized path the server matched the request's location
/// with: `DOCUMENT_URI` (nginx sets it, and so can any server's recipe), or,
/// from a server that sends none, CGI/1.1's `SCRIPT_NAME` + `PATH_INFO`,
/// which RFC 3875 defines as exactly that path, decoded (§4.1.13, §4.1.5).
struct MatchedPath {
    private let head: UnsafeBufferPointer<UInt8>
    private let tail: UnsafeBufferPointer<UInt8>

    init(_ request: some RequestParameters) throws(Route.Refusal) {
        if let path = request.param("DOCUMENT_URI"), !path.isEmpty {
            head = path
            tail = UnsafeBufferPointer(start: nil, count: 0)
            return
        }
        let script = request.param("SCRIPT_NAME") ?? UnsafeBufferPointer(start: nil, count: 0)
        let info = request.param("PATH_INFO") ?? UnsafeBufferPointer(start: nil, count: 0)
        guard !script.isEmpty || !info.isEmpty else {
            throw .invalidPath("the server passed no DOCUMENT_URI (nor SCRIPT_NAME and PATH_INFO)")
        }
        head = script
        tail = info
    }

    var count: Int { head.count + tail.count }

    subscript(index: Int) -> UInt8 { index < head.count ? head[index] : tail[index - head.count] }

    /// A copy, for the admin route's segments.
    var bytes: [UInt8] { Array(head) + Array(tail) }
}
