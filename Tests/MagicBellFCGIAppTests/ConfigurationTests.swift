import Foundation
import Testing
@testable import MagicBellFCGIApp

/// One test per configuration rule. Every error must name its variable and
/// never contain the secret.
@Suite struct ConfigurationTests {
    static let secret = "s3cr3t-value-that-must-never-leak"
    static let valid = ["MAGICBELL_API_KEY": "pk_test_1", "MAGICBELL_SECRET_KEY": secret]

    func load(_ env: [String: String], files: [String: [UInt8]] = [:]) throws(ConfigurationError) -> Configuration {
        try Configuration.load(from: env) { path in
            guard let bytes = files[path] else { throw CocoaError(.fileReadNoSuchFile) }
            return bytes
        }
    }

    func expectError(_ env: [String: String], files: [String: [UInt8]] = [:], variable: String,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try load(env, files: files)
            Issue.record("expected a configuration error about \(variable)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.variable == variable, sourceLocation: sourceLocation)
            #expect(error.description.hasPrefix(variable), sourceLocation: sourceLocation)
            #expect(!error.description.contains(Self.secret), sourceLocation: sourceLocation)
            #expect(!error.description.contains("\n"), "one line", sourceLocation: sourceLocation)
        }
    }

    @Test func theUserKeyIsOnOrOffAndOffByDefault() throws {
        #expect(try load(Self.valid).userKey == false)
        #expect(try load(Self.valid.merging(["MAGICBELL_USER_KEY": "on"]) { $1 }).userKey)
        #expect(try load(Self.valid.merging(["MAGICBELL_USER_KEY": "off"]) { $1 }).userKey == false)
        for value in ["yes", "ON", "1", ""] {
            expectError(Self.valid.merging(["MAGICBELL_USER_KEY": value]) { $1 }, variable: "MAGICBELL_USER_KEY")
        }
    }

    @Test func aValidConfigurationLoadsWithDefaults() throws {
        let config = try load(Self.valid)
        #expect(config.apiKey == "pk_test_1")
        #expect(config.secret.bytes == Array(Self.secret.utf8))
        #expect(config.tokenTTL == 3600)
        #expect(!config.summary.contains(Self.secret))
        #expect(!"\(config.secret)".contains(Self.secret))
    }

    /// Issue 21: the proxy for MagicBell calls, its exceptions, where each
    /// came from, and a password in it never shown.
    @Test func theProxyAndItsExceptions() throws {
        #expect(try load(Self.valid).httpsProxy == nil)
        let own = try load(Self.valid.merging(["MAGICBELL_HTTPS_PROXY": "http://proxy.example.com:3128",
                                               "HTTPS_PROXY": "http://other:1", "MAGICBELL_NO_PROXY": " localhost, .internal ,10.0.0.0/8"]) { $1 })
        #expect(own.httpsProxy?.url == "http://proxy.example.com:3128" && own.httpsProxy?.variable == "MAGICBELL_HTTPS_PROXY")
        #expect(own.noProxy?.list == "localhost,.internal,10.0.0.0/8" && own.noProxy?.variable == "MAGICBELL_NO_PROXY")
        // The service's standard variables, when the environment holds them (serve's does; CGI's never).
        let standard = try load(Self.valid.merging(["https_proxy": "http://a:1", "HTTPS_PROXY": "http://b:2", "NO_PROXY": "*"]) { $1 })
        #expect(standard.httpsProxy?.url == "http://a:1" && standard.httpsProxy?.variable == "https_proxy", "curl reads the lowercase one first")
        #expect(standard.noProxy?.list == "*" && standard.noProxy?.variable == "NO_PROXY")
        #expect(try load(Self.valid.merging(["HTTPS_PROXY": ""]) { $1 }).httpsProxy == nil, "empty is unset")

        let secret = try load(Self.valid.merging(["MAGICBELL_HTTPS_PROXY": "http://user:pr0xy-pa55@proxy:3128"]) { $1 })
        #expect(!secret.summary.contains("pr0xy-pa55") && secret.summary.contains("proxy:3128"), "\(secret.summary)")
        for bad in ["proxy:3128", "socks5://proxy:1080", "http://proxy:3128/path", "http://proxy:99999", "http://proxy:3128?x=1",
                    "http://", "http://pro xy:1"] {
            expectError(Self.valid.merging(["MAGICBELL_HTTPS_PROXY": bad]) { $1 }, variable: "MAGICBELL_HTTPS_PROXY")
        }
        expectError(Self.valid.merging(["HTTPS_PROXY": "proxy:3128"]) { $1 }, variable: "HTTPS_PROXY")
        for bad in ["a,,b", "a b", "host;rm", String(repeating: "a", count: 5000)] {
            expectError(Self.valid.merging(["MAGICBELL_NO_PROXY": bad]) { $1 }, variable: "MAGICBELL_NO_PROXY")
        }
    }

    @Test func apiKeyIsRequired() {
        expectError(["MAGICBELL_SECRET_KEY": Self.secret], variable: "MAGICBELL_API_KEY")
        expectError(["MAGICBELL_API_KEY": "", "MAGICBELL_SECRET_KEY": Self.secret], variable: "MAGICBELL_API_KEY")
    }

    @Test func apiKeyMustBePrintableWithoutSpaces() {
        expectError(["MAGICBELL_API_KEY": "pk test", "MAGICBELL_SECRET_KEY": Self.secret], variable: "MAGICBELL_API_KEY")
        expectError(["MAGICBELL_API_KEY": "pk\n", "MAGICBELL_SECRET_KEY": Self.secret], variable: "MAGICBELL_API_KEY")
        expectError(["MAGICBELL_API_KEY": String(repeating: "k", count: 256), "MAGICBELL_SECRET_KEY": Self.secret],
                    variable: "MAGICBELL_API_KEY")
    }

    @Test func neitherSecretIsAnError() {
        expectError(["MAGICBELL_API_KEY": "pk"], variable: "MAGICBELL_SECRET_KEY")
    }

    @Test func bothSecretsIsAnError() {
        var env = Self.valid
        env["MAGICBELL_SECRET_KEY_FILE"] = "/run/secret"
        expectError(env, files: ["/run/secret": Array("x".utf8)], variable: "MAGICBELL_SECRET_KEY")
    }

    @Test func anEmptySecretIsAnError() {
        expectError(["MAGICBELL_API_KEY": "pk", "MAGICBELL_SECRET_KEY": ""], variable: "MAGICBELL_SECRET_KEY")
    }

    @Test func secretFileTrailingNewlineIsIgnored() throws {
        for contents in ["key\n", "key\r\n", "key"] {
            let config = try load(["MAGICBELL_API_KEY": "pk", "MAGICBELL_SECRET_KEY_FILE": "/s"], files: ["/s": Array(contents.utf8)])
            #expect(config.secret.bytes == Array("key".utf8))
            #expect(config.secretSource == .file(path: "/s"))
        }
        // Only one newline is stripped: the rest is part of the key.
        let config = try load(["MAGICBELL_API_KEY": "pk", "MAGICBELL_SECRET_KEY_FILE": "/s"], files: ["/s": Array("key\n\n".utf8)])
        #expect(config.secret.bytes == Array("key\n".utf8))
    }

    @Test func anUnreadableSecretFileIsAnError() {
        expectError(["MAGICBELL_API_KEY": "pk", "MAGICBELL_SECRET_KEY_FILE": "/missing"], variable: "MAGICBELL_SECRET_KEY_FILE")
    }

    @Test func anEmptySecretFileIsAnError() {
        expectError(["MAGICBELL_API_KEY": "pk", "MAGICBELL_SECRET_KEY_FILE": "/s"], files: ["/s": Array("\n".utf8)],
                    variable: "MAGICBELL_SECRET_KEY_FILE")
    }

    @Test func anOversizedSecretFileIsAnError() {
        expectError(["MAGICBELL_API_KEY": "pk", "MAGICBELL_SECRET_KEY_FILE": "/s"],
                    files: ["/s": [UInt8](repeating: 0x61, count: Configuration.maxSecretFileBytes + 1)],
                    variable: "MAGICBELL_SECRET_KEY_FILE")
    }

    @Test func realSecretFilesAreReadFromDisk() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mbf-secret-\(UUID())").path
        try Data("from-disk\n".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try Configuration.load(from: ["MAGICBELL_API_KEY": "pk", "MAGICBELL_SECRET_KEY_FILE": path])
        #expect(config.secret.bytes == Array("from-disk".utf8))
        #expect(throws: ConfigurationError.self) {
            try Configuration.load(from: ["MAGICBELL_API_KEY": "pk", "MAGICBELL_SECRET_KEY_FILE": path + ".missing"])
        }
    }

    @Test(arguments: ["60", "3600", "31536000"])
    func ttlInRangeIsAccepted(_ ttl: String) throws {
        var env = Self.valid
        env["MAGICBELL_TOKEN_TTL"] = ttl
        #expect(try load(env).tokenTTL == Int(ttl))
    }

    @Test(arguments: ["59", "31536001", "0", "-60", "1h", "", " 60", "3600.5", "99999999999999999999"])
    func ttlOutOfRangeOrNotANumberIsAnError(_ ttl: String) {
        var env = Self.valid
        env["MAGICBELL_TOKEN_TTL"] = ttl
        expectError(env, variable: "MAGICBELL_TOKEN_TTL")
    }

    // MARK: The admin route and MAGICBELL_MINT

    func with(_ extra: [String: String]) -> [String: String] { Self.valid.merging(extra) { $1 } }

    @Test func upstreamDefaults() throws {
        let config = try load(Self.valid)
        #expect(config.projectToken == nil)
        #expect(config.apiURL.absoluteString == "https://api.magicbell.com/v2")
        #expect(config.upstreamTimeout == 10)
        #expect(config.allowedOrigins.isEmpty)
        #expect(config.adminMaxConcurrent == nil)
        #expect(config.mintMode == .local)
        #expect(Configuration.defaultAdminMaxConcurrent(workers: 8) == 2)
        #expect(Configuration.defaultAdminMaxConcurrent(workers: 2) == 1)
        #expect(Configuration.defaultAdminMaxConcurrent(workers: 1) == 1)
    }

    @Test func projectTokenFromEnvironmentOrFileButNotBoth() throws {
        let fromEnv = try load(with(["MAGICBELL_PROJECT_TOKEN": "pt_abc"]))
        #expect(fromEnv.projectToken?.value == "pt_abc")
        #expect(!"\(fromEnv.projectToken!)".contains("pt_abc"))
        #expect(!fromEnv.summary.contains("pt_abc"))
        let fromFile = try load(with(["MAGICBELL_PROJECT_TOKEN_FILE": "/pt"]), files: ["/pt": Array("pt_file\n".utf8)])
        #expect(fromFile.projectToken?.value == "pt_file")
        expectError(with(["MAGICBELL_PROJECT_TOKEN": "a", "MAGICBELL_PROJECT_TOKEN_FILE": "/pt"]), files: ["/pt": [0x61]],
                    variable: "MAGICBELL_PROJECT_TOKEN")
        expectError(with(["MAGICBELL_PROJECT_TOKEN": "has space"]), variable: "MAGICBELL_PROJECT_TOKEN")
        expectError(with(["MAGICBELL_PROJECT_TOKEN_FILE": "/missing"]), variable: "MAGICBELL_PROJECT_TOKEN_FILE")
    }

    @Test func apiURLMustBeHTTPSOrLoopbackHTTP() throws {
        #expect(try load(with(["MAGICBELL_API_URL": "https://eu.magicbell.example/v2"])).apiURL.host == "eu.magicbell.example")
        #expect(try load(with(["MAGICBELL_API_URL": "http://127.0.0.1:8999/v2"])).apiURL.port == 8999)
        for bad in ["http://api.magicbell.com/v2", "ftp://x/v2", "not a url", "https://u:p@h/v2", "https://h/v2?x=1", "/v2"] {
            expectError(with(["MAGICBELL_API_URL": bad]), variable: "MAGICBELL_API_URL")
        }
    }

    /// TCP ports are 1...65535: port 99999 was accepted, and getaddrinfo
    /// then took it modulo 65536 (the client connected to port 34463).
    @Test func apiURLPortIsATCPPort() throws {
        for good in [1, 65535] {
            #expect(try load(with(["MAGICBELL_API_URL": "https://api.magicbell.com:\(good)/v2"])).apiURL.port == good)
        }
        for bad in ["0", "65536", "99999", "34463000", "18446744073709551617"] {
            expectError(with(["MAGICBELL_API_URL": "https://api.magicbell.com:\(bad)/v2"]), variable: "MAGICBELL_API_URL")
        }
    }

    @Test func upstreamTimeoutRange() throws {
        #expect(try load(with(["MAGICBELL_UPSTREAM_TIMEOUT": "2.5"])).upstreamTimeout == 2.5)
        for bad in ["0", "0.1", "121", "ten", ""] {
            expectError(with(["MAGICBELL_UPSTREAM_TIMEOUT": bad]), variable: "MAGICBELL_UPSTREAM_TIMEOUT")
        }
    }

    @Test func allowedOriginsAreNormalizedOrRefused() throws {
        let config = try load(with(["MAGICBELL_ALLOWED_ORIGINS": "https://Admin.Example.com, http://localhost:3000 ,https://x.io:443"]))
        #expect(config.allowedOrigins == ["https://admin.example.com", "http://localhost:3000", "https://x.io"])
        for bad in ["admin.example.com", "https://a.com/path", "null", "https://a.com,ftp://b"] {
            expectError(with(["MAGICBELL_ALLOWED_ORIGINS": bad]), variable: "MAGICBELL_ALLOWED_ORIGINS")
        }
    }

    @Test func adminMaxConcurrentRange() throws {
        #expect(try load(with(["MAGICBELL_ADMIN_MAX_CONCURRENT": "4"])).adminMaxConcurrent == 4)
        for bad in ["0", "257", "two"] {
            expectError(with(["MAGICBELL_ADMIN_MAX_CONCURRENT": bad]), variable: "MAGICBELL_ADMIN_MAX_CONCURRENT")
        }
    }

    @Test func mintModeApiNeedsAProjectToken() throws {
        #expect(try load(with(["MAGICBELL_MINT": "api", "MAGICBELL_PROJECT_TOKEN": "pt"])).mintMode == .api)
        expectError(with(["MAGICBELL_MINT": "api"]), variable: "MAGICBELL_MINT")
        expectError(with(["MAGICBELL_MINT": "remote"]), variable: "MAGICBELL_MINT")
        expectError(with(["MAGICBELL_MINT_TOKEN_NAME": ""]), variable: "MAGICBELL_MINT_TOKEN_NAME")
    }
}
