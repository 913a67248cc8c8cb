/// What `check-config` and `serve` warn about: a configuration that works
/// but is probably not what was meant. Never an error: existing deployments
/// keep working.
extension Configuration {
    /// The variables the responder reads: `variables`, the one list.
    public static var knownVariables: [String] { variables.map(\.name) }

    /// `MAGICBELL_*` names that are request params, set by the web server
    /// for each request (in CGI mode they arrive in the environment, as every
    /// request param does, RFC 3875 §4.1); as configuration they do nothing.
    static let requestParams = ["\(Route.routeParam)", "\(Identity.externalIDParam)", "\(Identity.emailParam)",
                                "\(Steps.siteOriginParam)"]

    /// RFC 7518 §3.2: an HS256 key should be at least 256 bits.
    public static let recommendedSecretBytes = 32

    /// A warning for each `MAGICBELL_*` name in `environment` that the
    /// responder does not read (a misspelling is silently ignored
    /// otherwise), naming the closest one it does read.
    public static func warnings(about environment: [String: String]) -> [String] {
        environment.keys.filter { $0.hasPrefix("MAGICBELL_") && !knownVariables.contains($0) }.sorted().map { name in
            if requestParams.contains(name) {
                return "\(name) is a request param, which the web server sets for each request; as an environment variable it configures nothing"
            }
            let (closest, distance) = knownVariables.map { ($0, editDistance(name, $0)) }.min { $0.1 < $1.1 }!
            // Within a few edits it is a misspelling; further away, a guess would mislead.
            guard distance <= 3 else { return "unknown variable \(name); magicbell-fcgi --help lists the variables it reads" }
            return "unknown variable \(name); did you mean \(closest)?"
        }
    }

    /// Warnings about the loaded values.
    public var warnings: [String] {
        guard secret.count < Self.recommendedSecretBytes else { return [] }
        let variable: String
        switch secretSource {
        case .environment: variable = "MAGICBELL_SECRET_KEY"
        case .file(let path): variable = "MAGICBELL_SECRET_KEY_FILE (\(path))"
        }
        return ["\(variable) holds a \(secret.count)-byte key; an HS256 key should be at least \(Self.recommendedSecretBytes) bytes (256 bits, RFC 7518 §3.2)"]
    }

    /// Optimal string alignment distance: insertions, deletions,
    /// substitutions and swaps of two neighbours (SECERT → SECRET is one).
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8), b = Array(b.utf8)
        guard !a.isEmpty, !b.isEmpty else { return max(a.count, b.count) }
        var table = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { table[i][0] = i }
        for j in 0...b.count { table[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
                }
            }
        }
        return table[a.count][b.count]
    }
}
