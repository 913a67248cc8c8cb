import CCurl
import FoundationEssentials
import Glibc
import Synchronization

/// An HTTP client over libcurl, loaded on the first exchange (`CCurl`).
///
/// What it keeps of the MagicBell client's guarantees, and how:
/// - http and https only, no redirect followed (a redirect is an answer: the
///   project token must not travel to another host), no proxy unless one is
///   given (libcurl's own reading of `https_proxy` is turned off: in CGI mode
///   the environment is the web server's params), no compression, no cookies;
/// - one deadline for the whole exchange, name lookup included, and no
///   signals (`CURLOPT_NOSIGNAL`, libcurl's threaded resolver);
/// - answer bodies capped in the write callback, whatever the framing;
/// - the certificate and host name checked by libcurl with OpenSSL, against
///   the system's hashed directory `/etc/ssl/certs` (OpenSSL reads only the
///   certificates it needs, where a bundle is parsed whole on every call),
///   or `SSL_CERT_FILE` / `SSL_CERT_DIR`, or the `caFile` given;
/// - a cancellation ends the call at once until the request is sent
///   (`CURLOPT_PREREQFUNCTION` marks that point), never after;
/// - a POST is sent at most once: it goes on a fresh connection that is
///   closed after it, since libcurl re-sends a request whose reused
///   connection died before the answer.
///
/// Other calls reuse kept connections, with HTTP/2 where the server offers
/// it: each thread keeps its own (libcurl does not support one connection
/// cache for concurrent threads), and all threads share DNS answers and TLS
/// sessions through one share handle.
public final class CurlClient: Sendable {
    private let share: Share?
    private let trust: Trust
    private let proxy: Proxy

    /// Where certificates are looked up.
    struct Trust: Sendable {
        var file: String?
        var directory: String?
    }

    /// `caFile`: trust only the certificates in this PEM file, instead of
    /// the system's store. `proxy`: an http(s) proxy URL for every call, and
    /// `noProxy`, curl's list of hosts that bypass it. `reuseConnections`:
    /// keep connections (each thread its own), DNS answers and TLS sessions
    /// for later calls.
    public init(caFile: String? = nil, proxy: String? = nil, noProxy: String? = nil, reuseConnections: Bool = true) {
        if let caFile {
            trust = Trust(file: caFile, directory: nil)
        } else {
            // As OpenSSL's own defaults do: the variables replace the store.
            let file = getenv("SSL_CERT_FILE").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
            let directory = getenv("SSL_CERT_DIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
            trust = file == nil && directory == nil ? Trust(file: nil, directory: "/etc/ssl/certs")
                : Trust(file: file, directory: directory)
        }
        self.proxy = Proxy(url: proxy ?? "", exceptions: noProxy ?? "")
        share = reuseConnections ? Share() : nil
    }

    /// The libcurl this process loaded, e.g. "8.14.1"; nil before the
    /// first exchange (and in a process that never makes one).
    public static var loadedVersion: String? {
        ccurl_is_loaded() != 0 ? String(cString: ccurl_version()) : nil
    }

    public func exchange(_ request: HTTPRequestMessage, with endpoint: HTTPEndpoint, timeout: Double,
                         bodyLimit: Int, cancellation: Cancellation? = nil) throws(ExchangeFailure) -> HTTPResponseMessage {
        try Self.validate(request, for: endpoint)
        if cancellation?.isCancelled == true { throw .cancelled }
        if let why = ccurl_load() { throw .invalidRequest(.libcurl(CurlDiagnostic(String(cString: why)))) }
        let transfer = Transfer(bodyLimit: bodyLimit, cancellation: cancellation, body: request.body)
        guard let easy = ccurl_easy_init() else { throw .invalidRequest(.libcurl(CurlDiagnostic("libcurl could not make a handle"))) }
        // The transfer (its buffers, the error buffer, the callbacks' context)
        // outlives the handle.
        defer { ccurl_easy_cleanup(easy); withExtendedLifetime(transfer) {} }
        var headers: UnsafeMutablePointer<curl_slist>? = nil
        defer { ccurl_slist_free_all(headers) }
        for line in Self.headerLines(request) {
            guard let appended = ccurl_slist_append(headers, line) else { throw .invalidRequest(.libcurl(CurlDiagnostic("out of memory"))) }
            headers = appended
        }
        try configure(easy, for: request, at: endpoint, timeout: timeout, headers: headers, transfer: transfer)
        try Self.run(easy, transfer: transfer, keepConnections: share != nil)
        var status = 0, version = 0
        ccurl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        ccurl_easy_getinfo_long(easy, CURLINFO_HTTP_VERSION, &version)
        // An HTTP/1 body framed by the close: over TLS, libcurl (with
        // OpenSSL 3's SSL_OP_IGNORE_UNEXPECTED_EOF) takes a close without
        // close_notify as the end, so anyone on the path could cut the
        // answer short unseen. MagicBell frames its answers; one that does
        // not is refused, as the client before libcurl refused it.
        // (A Transfer-Encoding whose last coding is not chunked runs to the
        // close too, RFC 9112 §6.3.)
        let chunked = transfer.fields.value(named: "transfer-encoding")?.split(separator: ",").last
            .map { $0.trimmingBlanks().lowercased() == "chunked" } ?? false
        if endpoint.secure, version == CURL_HTTP_VERSION_1_0 || version == CURL_HTTP_VERSION_1_1,
           !transfer.received.isEmpty, transfer.fields.value(named: "content-length") == nil, !chunked {
            throw .dropped(.closeDelimitedOverTLS)
        }
        return HTTPResponseMessage(status: status, fields: transfer.fields, body: transfer.received)
    }

    private func configure(_ easy: UnsafeMutableRawPointer, for request: HTTPRequestMessage, at endpoint: HTTPEndpoint,
                           timeout: Double, headers: UnsafeMutablePointer<curl_slist>?, transfer: Transfer) throws(ExchangeFailure) {
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        let milliseconds = timeout.isNaN ? 1 : Int(min(max((timeout * 1000).rounded(.up), 1), 86_400_000))
        let url = "\(endpoint.secure ? "https" : "http")://\(endpoint.authority)\(request.target)"
        var codes: [CURLcode] = [
            ccurl_easy_setopt_string(easy, CURLOPT_URL, url),
            // The target is already encoded and normalized: sent as it is.
            ccurl_easy_setopt_long(easy, CURLOPT_PATH_AS_IS, 1),
            ccurl_easy_http_only(easy),
            ccurl_easy_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0),
            ccurl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1),
            ccurl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, milliseconds),
            ccurl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, milliseconds),
            // Plain http is loopback only: never through a proxy, where the
            // project token would cross the network in the clear.
            ccurl_easy_setopt_string(easy, CURLOPT_PROXY, endpoint.secure ? proxy.url : ""),
            ccurl_easy_setopt_string(easy, CURLOPT_NOPROXY, proxy.exceptions),
            // The credentials apart from the URL, which libcurl quotes in some errors.
            ccurl_easy_setopt_string(easy, CURLOPT_PROXYUSERNAME, proxy.user),
            ccurl_easy_setopt_string(easy, CURLOPT_PROXYPASSWORD, proxy.password),
            ccurl_easy_setopt_string(easy, CURLOPT_CAINFO, trust.file),
            ccurl_easy_setopt_string(easy, CURLOPT_CAPATH, trust.directory),
            ccurl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, 1),
            ccurl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, 2),
            // HTTP/2 where offered, but for a POST (below).
            ccurl_easy_setopt_long(easy, CURLOPT_HTTP_VERSION,
                                   request.method == "POST" || request.method == "PATCH" ? CURL_HTTP_VERSION_1_1 : CURL_HTTP_VERSION_2TLS),
            // A lookup still running at the deadline or a cancellation is
            // left to its thread instead of waited for (7.87+).
            ccurl_easy_quick_exit(easy),
            ccurl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, headers),
            ccurl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, transfer.errorBuffer),
            ccurl_easy_setopt_write_function(easy, CURLOPT_WRITEFUNCTION, receiveBody),
            ccurl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, context),
            ccurl_easy_setopt_write_function(easy, CURLOPT_HEADERFUNCTION, receiveHeader),
            ccurl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, context),
            ccurl_easy_setopt_prereq_function(easy, aboutToSend),
            ccurl_easy_setopt_pointer(easy, CURLOPT_PREREQDATA, context),
        ]
        switch request.method {
        case "GET":
            codes.append(ccurl_easy_setopt_long(easy, CURLOPT_HTTPGET, 1))
        case "HEAD":
            codes.append(ccurl_easy_setopt_long(easy, CURLOPT_NOBODY, 1))
        default:
            if request.method != "POST" { codes.append(ccurl_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, request.method)) }
            if transfer.requestBody != nil || request.method == "POST" || request.method == "PUT" {
                // POSTFIELDS with its size: the bytes as given (no strlen), and
                // a Content-Length, 0 for a POST or PUT without a body.
                codes.append(ccurl_easy_setopt_long(easy, CURLOPT_POSTFIELDSIZE, transfer.requestBodyCount))
                codes.append(ccurl_easy_setopt_pointer(easy, CURLOPT_POSTFIELDS, transfer.requestBody ?? transfer.emptyBody))
            }
        }
        if request.method == "POST" || request.method == "PATCH" {
            // Never re-sent: libcurl retries a request whose reused connection
            // died before the answer, so this one never uses a kept connection,
            // and its own is not kept for another call. (It also re-sends one
            // whose HTTP/2 stream was reset with HTTP_1_1_REQUIRED: a POST
            // goes over HTTP/1.1, above.)
            codes.append(ccurl_easy_setopt_long(easy, CURLOPT_FRESH_CONNECT, 1))
            codes.append(ccurl_easy_setopt_long(easy, CURLOPT_FORBID_REUSE, 1))
        }
        if let handle = share?.handle() { codes.append(ccurl_easy_setopt_share(easy, handle)) }
        if let failed = codes.first(where: { $0 != CURLE_OK }) {
            throw .invalidRequest(.libcurl(CurlDiagnostic("libcurl refused an option: \(String(cString: ccurl_easy_strerror(failed)))")))
        }
    }

    /// Runs the transfer on a multi handle, so that the wait can watch the
    /// cancellation's eventfd beside libcurl's sockets: the thread's own,
    /// whose connection cache keeps its connections for the next call, or
    /// one made for this call.
    private static func run(_ easy: UnsafeMutableRawPointer, transfer: Transfer, keepConnections: Bool) throws(ExchangeFailure) {
        guard let multi = keepConnections ? ccurl_thread_multi() : ccurl_multi_init() else {
            throw .invalidRequest(.libcurl(CurlDiagnostic("libcurl could not make a multi handle")))
        }
        defer { if !keepConnections { ccurl_multi_cleanup(multi) } }
        guard ccurl_multi_add_handle(multi, easy) == CURLM_OK else { throw .invalidRequest(.libcurl(CurlDiagnostic("libcurl refused the handle"))) }
        defer { ccurl_multi_remove_handle(multi, easy) }
        var cancelWatch = curl_waitfd(fd: transfer.cancellation?.descriptor ?? -1, events: Int16(CURL_WAIT_POLLIN), revents: 0)
        while true {
            var running: Int32 = 0
            let performed = ccurl_multi_perform(multi, &running)
            guard performed == CURLM_OK else { throw .invalidRequest(.libcurl(CurlDiagnostic("libcurl: multi error \(performed.rawValue)"))) }
            var result = CURLE_OK
            if ccurl_multi_done(multi, easy, &result) != 0 {
                if result == CURLE_OK { return }
                throw failure(result, transfer: transfer, easy: easy)
            }
            // Until the request is sent, a cancellation ends the call; after,
            // the eventfd (which stays readable) is no longer watched.
            let watching = transfer.cancellation != nil && !transfer.sent
            if watching && transfer.cancellation?.isCancelled == true { throw .cancelled }
            var ready: Int32 = 0
            let polled = watching ? ccurl_multi_poll(multi, &cancelWatch, 1, 1000, &ready)
                : ccurl_multi_poll(multi, nil, 0, 1000, &ready)
            guard polled == CURLM_OK else { throw .invalidRequest(.libcurl(CurlDiagnostic("libcurl: poll error \(polled.rawValue)"))) }
        }
    }

    /// What a libcurl error means to the caller.
    private static func failure(_ code: CURLcode, transfer: Transfer, easy: UnsafeMutableRawPointer) -> ExchangeFailure {
        let detail = CurlDiagnostic(transfer.errorMessage ?? String(cString: ccurl_easy_strerror(code)))
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return .timedOut
        case CURLE_ABORTED_BY_CALLBACK:
            return .cancelled
        case CURLE_WRITE_ERROR where transfer.tooLarge:
            return .tooLarge(limit: transfer.bodyLimit)
        case CURLE_WRITE_ERROR where transfer.headerTooLarge:
            return .malformed(.headerTooLarge(limit: Transfer.headerLimit))
        case CURLE_COULDNT_RESOLVE_HOST:
            return .unreachable(.hostNotFound)
        case CURLE_COULDNT_CONNECT:
            var osError = 0
            ccurl_easy_getinfo_long(easy, CURLINFO_OS_ERRNO, &osError)
            return .unreachable(Int32(osError) == ECONNREFUSED ? .refused : .other(detail))
        case CURLE_COULDNT_RESOLVE_PROXY:
            return .unreachable(.proxyNotFound)
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
             CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ENGINE_INITFAILED, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
             CURLE_SSL_INVALIDCERTSTATUS, CURLE_USE_SSL_FAILED:
            return .tls(detail)
        case CURLE_GOT_NOTHING:
            return .dropped(.beforeAnswer)
        case CURLE_PARTIAL_FILE, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_HTTP2, CURLE_HTTP2_STREAM:
            return .dropped(.other(detail))
        case CURLE_WEIRD_SERVER_REPLY, CURLE_UNSUPPORTED_PROTOCOL, CURLE_BAD_CONTENT_ENCODING:
            return .malformed(.notHTTP(detail))
        default:
            return .unreachable(.other(detail))
        }
    }

    /// Checks what libcurl would send as given: a CR or LF in a configured
    /// value (a token) would start a second header field (RFC 9112 §5),
    /// so it is refused before anything is sent.
    static func validate(_ request: HTTPRequestMessage, for endpoint: HTTPEndpoint) throws(ExchangeFailure) {
        let isToken: (UInt8) -> Bool = { $0 > 0x20 && $0 < 0x7F }
        let isValue: (UInt8) -> Bool = { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }
        guard !request.method.isEmpty, request.method.utf8.allSatisfy(isToken),
              request.target.first == "/", request.target.utf8.allSatisfy(isToken),
              // Host-name and IP-literal characters only (no "@", "/", "?", "#",
              // which would move the host in the URL libcurl parses); an
              // internationalized name is UTF-8, which libcurl turns into punycode.
              !endpoint.host.isEmpty, endpoint.host.utf8.allSatisfy(Self.isHostByte),
              (1...65535).contains(endpoint.port),
              request.fields.allSatisfy({ !$0.name.isEmpty && $0.name.utf8.allSatisfy(isToken) && $0.value.utf8.allSatisfy(isValue) })
        else { throw .invalidRequest(.forbiddenCharacter) }
        // The framing fields are libcurl's to write, once each.
        guard !request.fields.contains(where: { field in ownFields.contains { field.isNamed($0) } }) else {
            throw .invalidRequest(.reservedField)
        }
    }

    static let ownFields = ["host", "content-length", "transfer-encoding", "connection"]

    static func isHostByte(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
            || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
            || byte == UInt8(ascii: ":") || byte >= 0x80
    }

    /// The request's own fields, for CURLOPT_HTTPHEADER, and `Expect:` (no
    /// value) so that libcurl never waits for a 100 Continue on a body.
    static func headerLines(_ request: HTTPRequestMessage) -> [String] {
        // "Name;" is libcurl's way to send a field with an empty value.
        // And `Content-Type:` (none) unless the caller gave one: libcurl would
        // label a POST's body application/x-www-form-urlencoded.
        request.fields.map { $0.value.isEmpty ? "\($0.name);" : "\($0.name): \($0.value)" } + ["Expect:"]
            + (request.fields.value(named: "content-type") == nil ? ["Content-Type:"] : [])
    }
}

/// The proxy settings, as libcurl's options take them: "" is none. The
/// credentials are apart from the URL.
struct Proxy: Sendable {
    let url: String
    let exceptions: String
    let user: String?
    let password: String?

    init(url: String, exceptions: String) {
        self.exceptions = exceptions
        // scheme://user:password@host:port → the URL without its userinfo,
        // and the userinfo percent-decoded (RFC 3986 §3.2.1), as libcurl's
        // options take it.
        guard var components = URLComponents(string: url), components.user != nil || components.password != nil,
              let user = components.user else {
            self.url = url
            user = nil
            password = nil
            return
        }
        self.user = user
        password = components.password
        components.user = nil
        components.password = nil
        self.url = components.string ?? url
    }
}

extension Substring {
    func trimmingBlanks() -> String {
        String(String(drop { $0 == " " || $0 == "\t" }.reversed()).drop { $0 == " " || $0 == "\t" }.reversed())
    }
}

/// libcurl's share handle, made at the first call (making it loads
/// libcurl, which a process that never calls MagicBell must not do), kept
/// for the life of the client.
final class Share: Sendable {
    private let made = Mutex<OpaquePointer?>(nil)

    func handle() -> UnsafeMutableRawPointer? {
        made.withLock { share in
            if share == nil, ccurl_load() == nil { share = ccurl_share_new() }
            return share.map { ccurl_share_handle($0) }
        }
    }

    deinit { made.withLock { if let share = $0 { ccurl_share_free(share) } } }
}
