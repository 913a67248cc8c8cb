import FoundationEssentials
import Glibc
import MagicBellJWT

/// The responder's configuration, read from the environment.
///
/// Every rule names the variable it is about, and no error or summary ever
/// contains the secret key.
public struct Configuration: Sendable {
    public enum SecretSource: Sendable, Equatable {
        case environment
        case file(path: String)
    }

    /// Where tokens come from: signed here, or created by MagicBell.
    public enum MintMode: String, Sendable, CaseIterable {
        case local, api
    }

    public var apiKey: String
    public var secret: SecretKey
    public var secretSource: SecretSource
    /// Lifetime of minted tokens, in seconds.
    public var tokenTTL: Int
    /// `MAGICBELL_USER_KEY=on`: the token answer also carries `user_key`,
    /// MagicBell's HMAC user key for its older clients.
    public var userKey = false

    /// The admin route and `MAGICBELL_MINT=api` call MagicBell with this; nil disables them.
    public var projectToken: ProjectToken?
    public var apiURL: URL = Configuration.defaultAPIURL
    public var upstreamTimeout: Double = Configuration.defaultUpstreamTimeout
    /// Origins besides the site's own from which browsers may call the admin route.
    public var allowedOrigins: [String] = []
    /// Admin calls in flight at once; more are answered 503 at once. nil:
    /// `defaultAdminMaxConcurrent(workers:)`.
    public var adminMaxConcurrent: Int?
    /// `MAGICBELL_MINT=api` calls in flight at once; nil:
    /// `defaultMintMaxConcurrent(workers:)`.
    public var mintMaxConcurrent: Int?
    public var mintMode: MintMode = .local
    /// The `name` of tokens created with `MAGICBELL_MINT=api`.
    public var mintTokenName: String = Configuration.defaultMintTokenName
    /// The proxy MagicBell calls go through (an http:// or https:// URL),
    /// and the variable it came from; nil: none.
    public var httpsProxy: (url: String, variable: String)?
    /// Hosts reached without the proxy: libcurl's NO_PROXY list.
    public var noProxy: (list: String, variable: String)?

    public static let defaultAPIURL = URL(string: "https://api.magicbell.com/v2")!
    public static let defaultUpstreamTimeout = 10.0
    public static let upstreamTimeoutRange = 0.5...120.0
    /// Two, but always leaving at least one pool thread for the admin
    /// requests that do not wait on MagicBell (and at least one admin call).
    public static func defaultAdminMaxConcurrent(workers: Int) -> Int { max(1, min(2, workers - 1)) }
    public static let adminMaxConcurrentRange = 1...256
    /// Half the workers, rounded down, at least 1 and below --workers when it can be: with
    /// `MAGICBELL_MINT=api` every token waits on MagicBell, and a slow
    /// MagicBell (or one user reloading in a loop) must not hold every worker.
    public static func defaultMintMaxConcurrent(workers: Int) -> Int { max(1, min(workers / 2, workers - 1)) }
    public static let defaultMintTokenName = "magicbell-fcgi"

    public static let defaultTokenTTL = 3600
    /// One minute to one year (MagicBell's own examples mint 1-year tokens).
    public static let tokenTTLRange = 60...31_536_000
    /// Larger secret files are a mistake (a wrong path), not a key.
    public static let maxSecretFileBytes = 64 * 1024

    public init(apiKey: String, secret: SecretKey, secretSource: SecretSource = .environment,
                tokenTTL: Int = Configuration.defaultTokenTTL) {
        self.apiKey = apiKey
        self.secret = secret
        self.secretSource = secretSource
        self.tokenTTL = tokenTTL
    }

    /// The variables, for `--help`, the man page and docs/configuration.md.
    public static let variables: [(name: String, meaning: String)] = [
        ("MAGICBELL_API_KEY", "required: the project's API key; goes into the api_key claim"),
        ("MAGICBELL_SECRET_KEY", "the project's secret key, which signs tokens (or use the _FILE variant)"),
        ("MAGICBELL_SECRET_KEY_FILE", "a file holding the secret key; a trailing newline is ignored"),
        ("MAGICBELL_TOKEN_TTL", "token lifetime in seconds, \(tokenTTLRange.lowerBound)...\(tokenTTLRange.upperBound), default \(defaultTokenTTL)"),
        ("MAGICBELL_USER_KEY", "on: the token answer also carries user_key, base64(HMAC-SHA256(secret key, external id or email)) for MagicBell's older clients; default off"),
        ("MAGICBELL_PROJECT_TOKEN", "a project token for the admin route and MAGICBELL_MINT=api (or use the _FILE variant)"),
        ("MAGICBELL_PROJECT_TOKEN_FILE", "a file holding the project token; a trailing newline is ignored"),
        ("MAGICBELL_API_URL", "MagicBell's API, default \(defaultAPIURL.absoluteString); https, or http on loopback"),
        ("MAGICBELL_HTTPS_PROXY", "a proxy for the calls to MagicBell (http://host:port); serve also takes the service's HTTPS_PROXY, CGI mode never"),
        ("MAGICBELL_NO_PROXY", "hosts reached without that proxy, comma-separated (curl's NO_PROXY); serve also takes NO_PROXY"),
        ("MAGICBELL_UPSTREAM_TIMEOUT", "seconds for each call to MagicBell, \(upstreamTimeoutRange.lowerBound)...\(upstreamTimeoutRange.upperBound), default \(Int(defaultUpstreamTimeout))"),
        ("MAGICBELL_ALLOWED_ORIGINS", "comma-separated origins (https://host[:port]) that may call the admin route besides the site itself"),
        ("MAGICBELL_ADMIN_MAX_CONCURRENT", "admin calls in flight at once, \(adminMaxConcurrentRange.lowerBound)...\(adminMaxConcurrentRange.upperBound), default 2 (at most --workers - 1); must be below --workers"),
        ("MAGICBELL_MINT", "local (default: sign here) or api (create each token with MagicBell's createUserJwt)"),
        ("MAGICBELL_MINT_MAX_CONCURRENT", "MAGICBELL_MINT=api calls in flight at once, \(adminMaxConcurrentRange.lowerBound)...\(adminMaxConcurrentRange.upperBound), default half of --workers; must be below --workers"),
        ("MAGICBELL_MINT_TOKEN_NAME", "the name of tokens created with MAGICBELL_MINT=api, default \(defaultMintTokenName)"),
    ]

    public static func load(
        from environment: [String: String],
        readFile: (String) throws -> [UInt8] = Configuration.readFile
    ) throws(ConfigurationError) -> Configuration {
        guard let apiKey = environment["MAGICBELL_API_KEY"], !apiKey.isEmpty else {
            throw ConfigurationError("MAGICBELL_API_KEY", "is required: the project's API key from the MagicBell dashboard")
        }
        guard apiKey.utf8.count <= 255, apiKey.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F }) else {
            throw ConfigurationError("MAGICBELL_API_KEY", "must be 1 to 255 characters with no spaces or control characters")
        }
        let (secret, source) = try loadSecret(environment, readFile: readFile)
        let ttl = try loadTTL(environment["MAGICBELL_TOKEN_TTL"])
        var configuration = Configuration(apiKey: apiKey, secret: secret, secretSource: source, tokenTTL: ttl)
        if let text = environment["MAGICBELL_USER_KEY"] {
            switch text {
            case "on": configuration.userKey = true
            case "off": configuration.userKey = false
            default: throw ConfigurationError("MAGICBELL_USER_KEY", "must be on or off (got \"\(text.prefix(32))\")")
            }
        }
        try configuration.loadUpstream(environment, readFile: readFile)
        return configuration
    }

    /// Everything about calling MagicBell: the admin route and `MAGICBELL_MINT=api`.
    mutating func loadUpstream(_ environment: [String: String],
                               readFile: (String) throws -> [UInt8]) throws(ConfigurationError) {
        if let (bytes, source) = try Self.loadKeyMaterial(environment, "MAGICBELL_PROJECT_TOKEN", readFile: readFile) {
            let token = String(decoding: bytes, as: UTF8.self)
            guard token.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
                throw ConfigurationError(source == .environment ? "MAGICBELL_PROJECT_TOKEN" : "MAGICBELL_PROJECT_TOKEN_FILE",
                                         "must hold a token of printable ASCII characters without spaces")
            }
            projectToken = ProjectToken(value: token, source: source)
        }
        if let text = environment["MAGICBELL_API_URL"] {
            apiURL = try Self.parseAPIURL(text)
        }
        if let (name, value) = Self.firstSet(["MAGICBELL_HTTPS_PROXY"] + Self.standardHTTPSProxyVariables, in: environment) {
            httpsProxy = (try Self.parseProxy(value, name), name)
        }
        if let (name, value) = Self.firstSet(["MAGICBELL_NO_PROXY"] + Self.standardNoProxyVariables, in: environment) {
            noProxy = (try Self.parseNoProxy(value, name), name)
        }
        if let seconds = try Self.number(environment["MAGICBELL_UPSTREAM_TIMEOUT"], "MAGICBELL_UPSTREAM_TIMEOUT",
                                         in: Self.upstreamTimeoutRange, "a number of seconds") {
            upstreamTimeout = seconds
        }
        if let text = environment["MAGICBELL_ALLOWED_ORIGINS"] {
            allowedOrigins = try text.split(separator: ",").map { item throws(ConfigurationError) in
                let trimmed = item.trimmingWhitespace
                guard let origin = Origin.normalize(trimmed) else {
                    throw ConfigurationError("MAGICBELL_ALLOWED_ORIGINS",
                        "must be a comma-separated list of origins like https://admin.example.com (got \"\(trimmed.prefix(64))\")")
                }
                return origin
            }
        }
        adminMaxConcurrent = try Self.number(environment["MAGICBELL_ADMIN_MAX_CONCURRENT"], "MAGICBELL_ADMIN_MAX_CONCURRENT",
                                             in: Self.adminMaxConcurrentRange, "a whole number")
        mintMaxConcurrent = try Self.number(environment["MAGICBELL_MINT_MAX_CONCURRENT"], "MAGICBELL_MINT_MAX_CONCURRENT",
                                            in: Self.adminMaxConcurrentRange, "a whole number")
        if let text = environment["MAGICBELL_MINT"] {
            guard let mode = MintMode(rawValue: text) else {
                throw ConfigurationError("MAGICBELL_MINT", "must be local or api (got \"\(text.prefix(32))\")")
            }
            mintMode = mode
        }
        if mintMode == .api && projectToken == nil {
            throw ConfigurationError("MAGICBELL_MINT", "is api, which needs MAGICBELL_PROJECT_TOKEN or MAGICBELL_PROJECT_TOKEN_FILE")
        }
        if let name = environment["MAGICBELL_MINT_TOKEN_NAME"] {
            guard (1...255).contains(name.unicodeScalars.count) else {
                throw ConfigurationError("MAGICBELL_MINT_TOKEN_NAME", "must be 1 to 255 characters")
            }
            mintTokenName = name
        }
    }

    /// The process's `MAGICBELL_*` variables: everything `load(from:)`
    /// reads. Read from `environ` directly: ProcessInfo copies every
    /// variable, which a CGI process (whose environment also holds the
    /// request's meta-variables) would pay for on each request.
    ///
    /// `standardProxy`: also the service's own `HTTPS_PROXY` and `NO_PROXY`
    /// (either case), which `MAGICBELL_HTTPS_PROXY` and `MAGICBELL_NO_PROXY`
    /// override. Never in CGI mode: there the environment is the web
    /// server's params, which a client may have a hand in (httpoxy).
    public static func processEnvironment(standardProxy: Bool = false) -> [String: String] {
        var variables: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            defer { entry += 1 }
            // The prefix first: a CGI token request skips every other variable at its first bytes.
            let ours = strncmp(pointer, "MAGICBELL_", 10) == 0
            guard ours || standardProxy, let equals = strchr(pointer, 0x3D) else { continue }
            let name = String(decoding: UnsafeRawBufferPointer(start: pointer, count: equals - pointer), as: UTF8.self)
            guard ours || standardProxyVariables.contains(name) else { continue }
            variables[name] = String(cString: equals + 1)
        }
        return variables
    }

    /// The standard proxy variables `serve` and `check-config` take up, each
    /// list in the order it is looked at (curl reads the lowercase one first).
    static let standardHTTPSProxyVariables = ["https_proxy", "HTTPS_PROXY"]
    static let standardNoProxyVariables = ["no_proxy", "NO_PROXY"]
    public static let standardProxyVariables = standardHTTPSProxyVariables + standardNoProxyVariables

    /// The first of `names` set to something in `environment`.
    static func firstSet(_ names: [String], in environment: [String: String]) -> (name: String, value: String)? {
        for name in names { if let value = environment[name], !value.isEmpty { return (name, value) } }
        return nil
    }

    static func parseProxy(_ text: String, _ variable: String) throws(ConfigurationError) -> String {
        guard text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }), let components = URLComponents(string: text),
              let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = components.host, !host.isEmpty, components.path.isEmpty || components.path == "/",
              components.query == nil, components.fragment == nil else {
            throw ConfigurationError(variable, "must be a proxy URL like http://proxy.example.com:3128 (http or https, no path)")
        }
        guard components.port.map({ (1...65535).contains($0) }) ?? (components.rangeOfPort == nil) else {
            throw ConfigurationError(variable, "has a port that is not a TCP port from 1 to 65535")
        }
        return text
    }

    static func parseNoProxy(_ text: String, _ variable: String) throws(ConfigurationError) -> String {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        let entries = text.split(separator: ",", omittingEmptySubsequences: false).map { entry in
            String(entry.drop(while: blank).reversed().drop(while: blank).reversed())
        }
        let allowed: (UInt8) -> Bool = { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                || [UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: ":"), UInt8(ascii: "*"), UInt8(ascii: "/"),
                    UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "_")].contains(byte)
        }
        guard text.utf8.count <= 4096, entries.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy(allowed) }) else {
            throw ConfigurationError(variable, "must be a comma-separated list of host names, domains (.example.com), addresses or CIDR ranges, or *")
        }
        return entries.joined(separator: ",")
    }

    static func parseAPIURL(_ text: String) throws(ConfigurationError) -> URL {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              let host = components.host, !host.isEmpty, components.query == nil, components.fragment == nil,
              components.user == nil, components.password == nil, let url = components.url else {
            throw ConfigurationError("MAGICBELL_API_URL", "must be an absolute URL like https://api.magicbell.com/v2, without query or credentials")
        }
        // RFC 3986 §3.2.3 allows any digits, TCP only 1...65535: getaddrinfo
        // took 99999 as 34463, and a port too large for an Int parses as
        // none (443). An empty port is the scheme's.
        let port = components.rangeOfPort.flatMap { range in components.string.map { String($0[range]) } } ?? ""
        guard port.isEmpty || components.port.map({ (1...65535).contains($0) }) == true else {
            throw ConfigurationError("MAGICBELL_API_URL", "has port \"\(port.prefix(32))\", which is not a TCP port from 1 to 65535")
        }
        let loopback = ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host.lowercased())
        guard scheme == "https" || (scheme == "http" && loopback) else {
            throw ConfigurationError("MAGICBELL_API_URL", "must use https (http only on loopback): it carries the project token")
        }
        return url
    }

    /// Only the secret key, for `verify`, which needs nothing else.
    public static func loadSecretKey(from environment: [String: String]) throws(ConfigurationError) -> SecretKey {
        try loadSecret(environment, readFile: readFile).0
    }

    static func loadSecret(_ environment: [String: String],
                           readFile: (String) throws -> [UInt8]) throws(ConfigurationError) -> (SecretKey, SecretSource) {
        guard let (bytes, source) = try loadKeyMaterial(environment, "MAGICBELL_SECRET_KEY", readFile: readFile) else {
            throw ConfigurationError("MAGICBELL_SECRET_KEY", "or MAGICBELL_SECRET_KEY_FILE is required: the project's secret key signs the tokens")
        }
        return (SecretKey(bytes), source)
    }

    /// A value given either directly in `NAME` or in the file named by
    /// `NAME_FILE` (one trailing newline ignored). Both is an error; neither
    /// is nil.
    static func loadKeyMaterial(_ environment: [String: String], _ name: String,
                                readFile: (String) throws -> [UInt8]) throws(ConfigurationError) -> ([UInt8], SecretSource)? {
        let fileName = name + "_FILE"
        switch (environment[name], environment[fileName]) {
        case (nil, nil):
            return nil
        case (.some, .some):
            throw ConfigurationError(name, "and \(fileName) are both set; set exactly one")
        case (let value?, nil):
            guard !value.isEmpty else { throw ConfigurationError(name, "is set but empty") }
            return (Array(value.utf8), .environment)
        case (nil, let path?):
            guard !path.isEmpty else { throw ConfigurationError(fileName, "is set but empty") }
            var bytes: [UInt8]
            do {
                bytes = try readFile(path)
            } catch {
                throw ConfigurationError(fileName, "cannot read \(path): \(Self.reason(error))")
            }
            guard bytes.count <= maxSecretFileBytes else {
                throw ConfigurationError(fileName, "\(path) is larger than \(maxSecretFileBytes) bytes; is it the right file?")
            }
            if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
            if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
            guard !bytes.isEmpty else { throw ConfigurationError(fileName, "\(path) is empty") }
            return (bytes, .file(path: path))
        }
    }

    static func loadTTL(_ text: String?) throws(ConfigurationError) -> Int {
        try number(text, "MAGICBELL_TOKEN_TTL", in: tokenTTLRange, "a whole number of seconds") ?? defaultTokenTTL
    }

    /// A number within `range`, or nil when the variable is not set.
    static func number<Value: LosslessStringConvertible & Comparable>(
        _ text: String?, _ variable: String, in range: ClosedRange<Value>, _ what: String
    ) throws(ConfigurationError) -> Value? {
        guard let text else { return nil }
        guard let value = Value(text), range.contains(value) else {
            let shown = text.count > 32 ? String(text.prefix(32)) + "…" : text
            throw ConfigurationError(variable, "must be \(what) from \(range.lowerBound) to \(range.upperBound) (got \"\(shown)\")")
        }
        return value
    }

    public static func readFile(_ path: String) throws -> [UInt8] {
        // Read at most one byte past the limit, so a huge or endless file
        // (a device, a FIFO) cannot exhaust memory.
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileError(errno: errno) }
        defer { close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: maxSecretFileBytes + 1)
        var filled = 0
        while filled < bytes.count {
            let count = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + filled, $0.count - filled) }
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                throw FileError(errno: errno)
            }
            filled += count
        }
        return Array(bytes[0..<filled])
    }

    /// An open(2) or read(2) failure, by its errno.
    struct FileError: Error {
        let errno: Int32
    }

    /// Why a file could not be read, in a few words.
    public static func reason(_ error: any Error) -> String {
        guard let file = error as? FileError else { return "\(error)" }
        switch file.errno {
        case ENOENT: return "no such file"
        case EACCES: return "permission denied"
        case EISDIR: return "is a directory"
        default: return String(cString: strerror(file.errno))
        }
    }

    /// A proxy URL without the password it may carry.
    static func redacted(proxy url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "****"
        return components.string ?? "(a URL with credentials)"
    }

    /// A human summary for `check-config`, without the secret.
    public var summary: String {
        let source: String
        switch secretSource {
        case .environment: source = "from MAGICBELL_SECRET_KEY"
        case .file(let path): source = "from MAGICBELL_SECRET_KEY_FILE (\(path))"
        }
        let admin: String
        switch projectToken?.source {
        case nil: admin = "not configured (admin routes answer 503)"
        case .environment?: admin = "set, from MAGICBELL_PROJECT_TOKEN"
        case .file(let path)?: admin = "set, from MAGICBELL_PROJECT_TOKEN_FILE (\(path))"
        }
        return """
        MAGICBELL_API_KEY              \(apiKey)
        secret key                     set, \(secret.count) bytes, \(source)
        MAGICBELL_TOKEN_TTL            \(tokenTTL) s
        MAGICBELL_USER_KEY             \(userKey ? "on (answers carry user_key)" : "off")
        MAGICBELL_MINT                 \(mintMode.rawValue)\(mintMode == .api ? " (token name \"\(mintTokenName)\")" : "")
        project token                  \(admin)
        MAGICBELL_API_URL              \(apiURL.absoluteString)
        MAGICBELL_UPSTREAM_TIMEOUT     \(upstreamTimeout) s
        proxy                          \(httpsProxy.map { "\(Self.redacted(proxy: $0.url)), from \($0.variable)" } ?? "none")\(noProxy.map { "; not for \($0.list) (\($0.variable))" } ?? "")
        MAGICBELL_ALLOWED_ORIGINS      \(allowedOrigins.isEmpty ? "(only the site's own origin)" : allowedOrigins.joined(separator: ", "))
        MAGICBELL_ADMIN_MAX_CONCURRENT \(adminMaxConcurrent.map(String.init) ?? "default: 2, at most --workers - 1")
        MAGICBELL_MINT_MAX_CONCURRENT  \(mintMaxConcurrent.map(String.init) ?? "default: half of --workers")
        """
    }
}

extension Configuration {
    /// The rules that depend on the worker count, in one place for `serve`
    /// and `check-config`: calls that wait on MagicBell (admin calls, api-mode
    /// tokens) must leave a pool thread free for the rest.
    public func checked(workers: Int) throws(ConfigurationError) -> Configuration {
        if let bound = adminMaxConcurrent, bound >= workers {
            throw ConfigurationError("MAGICBELL_ADMIN_MAX_CONCURRENT",
                "(\(bound)) must be less than --workers (\(workers)), so that the pool always has a thread for admin requests that do not wait on MagicBell")
        }
        if let bound = mintMaxConcurrent, bound >= workers {
            throw ConfigurationError("MAGICBELL_MINT_MAX_CONCURRENT",
                "(\(bound)) must be less than --workers (\(workers)), so that no slow MagicBell call can hold every pool thread")
        }
        return self
    }
}

/// One clear line that names the variable, never the secret's value.
public struct ConfigurationError: Error, Equatable, CustomStringConvertible {
    public let variable: String
    public let problem: String

    public init(_ variable: String, _ problem: String) {
        self.variable = variable
        self.problem = problem
    }

    public var description: String { "\(variable) \(problem)" }
}

/// The project token: like the secret key, never shown.
public struct ProjectToken: Sendable, CustomStringConvertible {
    public let value: String
    public let source: Configuration.SecretSource
    public var description: String { "ProjectToken(<redacted>)" }
}
