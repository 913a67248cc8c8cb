import FastCGIServer
import FoundationEssentials

/// `check-config`: the configuration `serve` would load, checked by the same
/// rules (those that depend on `--workers` included), from the environment
/// or, with an environment file, as systemd reads the unit's
/// `EnvironmentFile=` (its variables win). For `ExecStartPre=`: a failure
/// is exit 78 with one line naming the variable.
public enum ConfigurationCheck {
    public struct Report {
        /// Lines for stderr (unknown variables, a short secret, lines of
        /// the file systemd ignores); they do not fail the check.
        public let warnings: [String]
        /// The summary, without secrets, for stdout.
        public let summary: String
    }

    public struct Failure: Error, CustomStringConvertible {
        /// What was warned before the failure, then the one line.
        public let warnings: [String]
        public let description: String
    }

    public static func run(workers: Int, envFile: String?) throws(Failure) -> Report {
        var warnings: [String] = []
        func failure(_ message: String) -> Failure { Failure(warnings: warnings, description: message) }
        var environment = Configuration.processEnvironment(standardProxy: true)
        var addresses = ProcessInfo.processInfo.environment["FCGI_WEB_SERVER_ADDRS"]
        if let envFile {
            let bytes: [UInt8]
            do {
                bytes = try Configuration.readFile(envFile)
            } catch {
                throw failure("--env-file: cannot read \(envFile): \(Configuration.reason(error))")
            }
            // readFile stops one byte past its limit: a larger file would be checked cut short.
            guard bytes.count <= Configuration.maxSecretFileBytes else {
                throw failure("--env-file: \(envFile) is larger than \(Configuration.maxSecretFileBytes) bytes")
            }
            let parsed = EnvironmentFile.parse(bytes)
            warnings += parsed.ignored.map { "\(envFile): \($0)" }
            if let refused = parsed.refused { throw failure("--env-file: \(envFile): \(refused)") }
            // As the unit's EnvironmentFile= does: the file's values win.
            for (name, value) in parsed.variables
            where name.hasPrefix("MAGICBELL_") || Configuration.standardProxyVariables.contains(name) { environment[name] = value }
            addresses = parsed.dictionary["FCGI_WEB_SERVER_ADDRS"] ?? addresses
        }
        let configuration: Configuration
        let peers: PeerPolicy
        do {
            configuration = try Configuration.load(from: environment).checked(workers: workers)
            peers = try PeerPolicy.forServe(peerUIDs: nil, addresses: addresses)
        } catch {
            throw failure("\(error)")
        }
        warnings += Configuration.allWarnings(environment, configuration)
        var summary = configuration.summary
        if let addresses = peers.allowedAddresses {
            summary += "\nFCGI_WEB_SERVER_ADDRS \(addresses.count) address(es): TCP peers elsewhere are refused"
        }
        return Report(warnings: warnings, summary: summary + "\nconfiguration OK")
    }
}
