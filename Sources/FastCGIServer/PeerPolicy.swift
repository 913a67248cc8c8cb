import Glibc
import CFastCGI

/// Who may connect to the listen socket. Whoever can connect can mint a
/// token for anyone and act as admin (the server-set params are theirs to
/// set), so the socket is the trust boundary; this narrows it.
///
/// - Unix sockets: the peer's uid from `SO_PEERCRED` must be listed
///   (`serve --peer-uid`): nginx's user, and not the other processes that
///   run as it or share its group (PHP-FPM's default pool runs as
///   www-data, nginx's own user on Debian).
/// - TCP: the peer's address must be in `FCGI_WEB_SERVER_ADDRS`, libfcgi's
///   own allow-list (a comma-separated list; empty or unset allows any).
///   libfcgi checks it only in its own accept, which this server does not
///   use, so it is checked here, for IPv6 peers too.
public struct PeerPolicy: Sendable, Equatable {
    public var allowedUIDs: [UInt32]?
    /// 4-byte (IPv4) or 16-byte (IPv6) addresses.
    public var allowedAddresses: [[UInt8]]?

    public init(allowedUIDs: [UInt32]? = nil, allowedAddresses: [[UInt8]]? = nil) {
        self.allowedUIDs = allowedUIDs
        self.allowedAddresses = allowedAddresses
    }

    /// A setting that cannot be used: which one, and why.
    public struct Invalid: Error, CustomStringConvertible {
        public let setting: String
        public let problem: String
        public var description: String { "\(setting) \(problem)" }
    }

    /// `--peer-uid`: user names or numeric uids, comma-separated.
    public static func uids(_ text: String) throws(Invalid) -> [UInt32] {
        var uids: [UInt32] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let name = item.trimmingCharacters(in: " ")
            if let uid = UInt32(name) {
                uids.append(uid)
            } else if !name.isEmpty, let entry = getpwnam(name) {
                uids.append(entry.pointee.pw_uid)
            } else {
                throw Invalid(setting: "--peer-uid", problem: "names no user \"\(name)\"")
            }
        }
        return uids
    }

    /// `FCGI_WEB_SERVER_ADDRS` as libfcgi reads it: nil (any peer) when unset or empty.
    public static func webServerAddresses(_ text: String?) throws(Invalid) -> [[UInt8]]? {
        guard let text, !text.trimmingCharacters(in: " ").isEmpty else { return nil }
        var addresses: [[UInt8]] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let entry = item.trimmingCharacters(in: " ")
            guard let address = parseAddress(entry) else {
                throw Invalid(setting: "FCGI_WEB_SERVER_ADDRS", problem: "has \"\(entry)\", which is not an IPv4 or IPv6 address")
            }
            addresses.append(unmapped(address)) // ::ffff:a.b.c.d is a.b.c.d
        }
        return addresses
    }

    static func parseAddress(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    /// Why the peer of an accepted connection is refused, or nil.
    func refusal(of fd: Int32, family: Int32) -> String? {
        if family == AF_UNIX, let allowedUIDs {
            var uid: UInt32 = 0
            guard mbf_peer_uid(fd, &uid) == 0 else { return "SO_PEERCRED failed: \(lastError())" }
            return allowedUIDs.contains(uid) ? nil : "peer uid \(uid) is not in --peer-uid"
        }
        if family == AF_INET || family == AF_INET6, let allowedAddresses {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let got = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
            }
            guard got == 0, let (address, shown) = Self.address(of: storage) else { return "getpeername failed: \(lastError())" }
            return allowedAddresses.contains(address) || allowedAddresses.contains(Self.unmapped(address))
                ? nil : "peer \(shown) is not in FCGI_WEB_SERVER_ADDRS"
        }
        return nil
    }

    /// The peer's address bytes and its text.
    private static func address(of storage: sockaddr_storage) -> ([UInt8], String)? {
        var storage = storage
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafeBytes(of: &storage) { raw in
                var address = raw.load(as: sockaddr_in.self).sin_addr
                inet_ntop(AF_INET, &address, &text, socklen_t(text.count))
                return (withUnsafeBytes(of: &address) { Array($0) }, String(cString: text))
            }
        case AF_INET6:
            return withUnsafeBytes(of: &storage) { raw in
                var address = raw.load(as: sockaddr_in6.self).sin6_addr
                inet_ntop(AF_INET6, &address, &text, socklen_t(text.count))
                return (withUnsafeBytes(of: &address) { Array($0) }, String(cString: text))
            }
        default:
            return nil
        }
    }

    /// `::ffff:a.b.c.d` as the IPv4 address it stands for.
    private static func unmapped(_ address: [UInt8]) -> [UInt8] {
        guard address.count == 16, address[0..<10].allSatisfy({ $0 == 0 }), address[10] == 0xFF, address[11] == 0xFF else {
            return address
        }
        return Array(address[12...])
    }
}

private extension Substring {
    func trimmingCharacters(in set: Character) -> String {
        String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }
}

private extension String {
    func trimmingCharacters(in set: Character) -> String { self[...].trimmingCharacters(in: set) }
}
