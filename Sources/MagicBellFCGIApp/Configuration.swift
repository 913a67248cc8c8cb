import Foundation
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

    public var apiKey: String
    public var secret: SecretKey
    public var secretSource: SecretSource
    /// Lifetime of minted tokens, in seconds.
    public var tokenTTL: Int

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

    /// The variables, for `--help` and the README.
    public static let variables: [(name: String, meaning: String)] = [
        ("MAGICBELL_API_KEY", "required: the project's API key; goes into the api_key claim"),
        ("MAGICBELL_SECRET_KEY", "the project's secret key, which signs tokens (or use the _FILE variant)"),
        ("MAGICBELL_SECRET_KEY_FILE", "a file holding the secret key; a trailing newline is ignored"),
        ("MAGICBELL_TOKEN_TTL", "token lifetime in seconds, \(tokenTTLRange.lowerBound)...\(tokenTTLRange.upperBound), default \(defaultTokenTTL)"),
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
        return Configuration(apiKey: apiKey, secret: secret, secretSource: source, tokenTTL: ttl)
    }

    /// Only the secret key, for `verify`, which needs nothing else.
    public static func loadSecretKey(from environment: [String: String]) throws(ConfigurationError) -> SecretKey {
        try loadSecret(environment, readFile: readFile).0
    }

    static func loadSecret(_ environment: [String: String],
                           readFile: (String) throws -> [UInt8]) throws(ConfigurationError) -> (SecretKey, SecretSource) {
        switch (environment["MAGICBELL_SECRET_KEY"], environment["MAGICBELL_SECRET_KEY_FILE"]) {
        case (nil, nil):
            throw ConfigurationError("MAGICBELL_SECRET_KEY", "or MAGICBELL_SECRET_KEY_FILE is required: the project's secret key signs the tokens")
        case (.some, .some):
            throw ConfigurationError("MAGICBELL_SECRET_KEY", "and MAGICBELL_SECRET_KEY_FILE are both set; set exactly one")
        case (let value?, nil):
            guard !value.isEmpty else { throw ConfigurationError("MAGICBELL_SECRET_KEY", "is set but empty") }
            return (SecretKey(value.utf8), .environment)
        case (nil, let path?):
            guard !path.isEmpty else { throw ConfigurationError("MAGICBELL_SECRET_KEY_FILE", "is set but empty") }
            var bytes: [UInt8]
            do {
                bytes = try readFile(path)
            } catch {
                throw ConfigurationError("MAGICBELL_SECRET_KEY_FILE", "cannot read \(path): \(Self.reason(error))")
            }
            guard bytes.count <= maxSecretFileBytes else {
                throw ConfigurationError("MAGICBELL_SECRET_KEY_FILE", "\(path) is larger than \(maxSecretFileBytes) bytes; is it the right file?")
            }
            if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
            if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
            guard !bytes.isEmpty else { throw ConfigurationError("MAGICBELL_SECRET_KEY_FILE", "\(path) is empty") }
            return (SecretKey(bytes), .file(path: path))
        }
    }

    static func loadTTL(_ text: String?) throws(ConfigurationError) -> Int {
        guard let text else { return defaultTokenTTL }
        guard let ttl = Int(text), tokenTTLRange.contains(ttl) else {
            let shown = text.count > 32 ? String(text.prefix(32)) + "…" : text
            throw ConfigurationError("MAGICBELL_TOKEN_TTL",
                "must be a whole number of seconds from \(tokenTTLRange.lowerBound) to \(tokenTTLRange.upperBound) (got \"\(shown)\")")
        }
        return ttl
    }

    public static func readFile(_ path: String) throws -> [UInt8] {
        // Read at most one byte past the limit, so a huge or endless file
        // (a device, a FIFO) cannot exhaust memory.
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
        }
        defer { try? handle.close() }
        let data = try handle.read(upToCount: maxSecretFileBytes + 1) ?? Data()
        return Array(data)
    }

    private static func reason(_ error: any Error) -> String {
        if let cocoa = error as? CocoaError, cocoa.code == .fileReadNoSuchFile {
            return FileManager.default.fileExists(atPath: cocoa.filePath ?? "") ? "permission denied" : "no such file"
        }
        return "\(error.localizedDescription)"
    }

    /// A human summary for `check-config`, without the secret.
    public var summary: String {
        let source: String
        switch secretSource {
        case .environment: source = "from MAGICBELL_SECRET_KEY"
        case .file(let path): source = "from MAGICBELL_SECRET_KEY_FILE (\(path))"
        }
        return """
        MAGICBELL_API_KEY    \(apiKey)
        secret key           set, \(secret.count) bytes, \(source)
        MAGICBELL_TOKEN_TTL  \(tokenTTL) s
        """
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
