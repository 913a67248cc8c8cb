import FastCGIServer
import FoundationEssentials
import Glibc
import Logging

/// `magicbell-fcgi` started as a CGI program (Apache `mod_cgi`/`mod_cgid`,
/// lighttpd `mod_cgi`, nginx + fcgiwrap): one request, answered on stdout
/// with a `Status:` line (RFC 3875 §6.3.3), by the same responder, routes,
/// errors and audit lines as `serve`.
public enum CGIProgram {
    /// RFC 3875 §4.1.4: the server sets `GATEWAY_INTERFACE` to `CGI/1.1`.
    /// Any `CGI/1.x` counts; argv is then ignored, since a server passes an
    /// ISINDEX-style query (`?serve`) as arguments (§4.4).
    public static var isStartedAsCGI: Bool {
        guard let value = getenv("GATEWAY_INTERFACE") else { return false }
        return String(cString: value).hasPrefix("CGI/1.")
    }

    /// Answers the one request and returns the exit status.
    public static func run() -> Int32 {
        // Before the secret is read: a crash must never write it to a core file.
        _ = FastCGIServer.forbidCoreDumps()
        LogFormat.automatic.bootstrap(level: .info)
        let logger = Logger(label: "magicbell-fcgi")
        var response = HTTPResponse()
        do {
            let configuration = try Configuration.load(from: Configuration.processEnvironment())
            let responder = try MagicBellResponder(configuration: configuration, logger: logger)
            responder.handle(CGIRequest(), &response)
        } catch {
            // The detail (never a secret: see ConfigurationError) goes to the
            // server's error log; the client learns only that it is the server's fault.
            logger.error("CGI request refused: the configuration is invalid", metadata: ["error": "\(error)"])
            refuse(CGIRequest(), because: error, &response)
        }
        var out: [UInt8] = []
        response.serialize(into: &out)
        return writeAll(out) ? 0 : 1
    }

    /// The answer when the configuration did not load: the health route is
    /// not ready (503, what a load balancer acts on); every other route is
    /// the server's fault (500). Neither says why: the log line does.
    static func refuse(_ request: some RequestParameters, because error: any Error, _ response: inout HTTPResponse) {
        let isHealth = request.param(Route.routeParam)?.equals("health") ?? false
        (isHealth ? EndpointError.notReady : .misconfigured).write(to: &response)
        // RFC 9110 §9.3.2, as MagicBellResponder.handle does for every answer.
        if HTTPMethod(request.param("REQUEST_METHOD")) == .head { response.omitBody() }
    }

    private static func writeAll(_ bytes: [UInt8]) -> Bool {
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(1, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            written += n
        }
        return true
    }
}
