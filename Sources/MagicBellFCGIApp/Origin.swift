/// Web origins (`scheme://host[:port]`), compared the way browsers send them.
enum Origin {
    /// Lower-cased, with the scheme's default port dropped; nil if `text`
    /// is not an http(s) origin (a path, a query, credentials, "null").
    static func normalize(_ text: String) -> String? {
        let lower = text.lowercased()
        let scheme: String
        if lower.hasPrefix("https://") { scheme = "https" } else if lower.hasPrefix("http://") { scheme = "http" } else { return nil }
        var authority = String(lower.dropFirst(scheme.count + 3))
        if authority.hasSuffix("/") { authority.removeLast() }
        guard !authority.isEmpty, !authority.contains(where: { "/?#@ \\".contains($0) }) else { return nil }
        return scheme + "://" + dropDefaultPort(authority, scheme: scheme)
    }

    /// The origin of the site itself, from nginx's scheme and the Host header.
    static func site(scheme: String, host: String) -> String? {
        normalize(scheme + "://" + host)
    }

    private static func dropDefaultPort(_ authority: String, scheme: String) -> String {
        let port = scheme == "https" ? ":443" : ":80"
        return authority.hasSuffix(port) ? String(authority.dropLast(port.count)) : authority
    }
}
