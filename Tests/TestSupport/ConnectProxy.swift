import Glibc
import Foundation

/// Debian's tinyproxy on loopback, started for one test: a real HTTP proxy
/// that tunnels https with CONNECT, as a corporate egress proxy does. Its
/// log says which tunnels it opened.
public final class ConnectProxy: @unchecked Sendable {
    let process = Process()
    public let port: Int
    let logFile: String
    public var url: String { "http://127.0.0.1:\(port)" }

    /// `user` and `password`: tinyproxy's BasicAuth, asked of every client.
    public init(user: String? = nil, password: String? = nil) throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("proxy-\(UUID().uuidString)").path
        logFile = base + ".log"
        port = Int(try Loopback.freePort())
        // No ConnectPort line: CONNECT to any port (the fakes' ports are random).
        try """
        Port \(port)
        Listen 127.0.0.1
        Allow 127.0.0.1
        Timeout 30
        LogFile "\(logFile)"
        LogLevel Connect
        MaxClients 16
        User nobody
        Group nogroup
        \(user.map { "BasicAuth \($0) \(password ?? "")" } ?? "")

        """.write(toFile: base + ".conf", atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/tinyproxy")
        process.arguments = ["-d", "-c", base + ".conf"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if Loopback.accepts(port) { return }
            usleep(20_000)
        }
        throw CocoaError(.featureUnsupported, userInfo: [NSDebugDescriptionErrorKey: "tinyproxy did not start: \(log)"])
    }

    deinit {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    public var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

    /// The request lines it received, oldest first: "CONNECT host:port" for
    /// a tunnel, "GET http://..." for plain HTTP.
    public var requests: [String] {
        log.split(separator: "\n").compactMap { line in
            guard let range = line.range(of: "): ") , line.contains("Request (file descriptor") else { return nil }
            return line[range.upperBound...].split(separator: " ").prefix(2).joined(separator: " ")
        }
    }

    /// The hosts and ports it opened CONNECT tunnels to.
    public var tunnels: [String] {
        requests.filter { $0.hasPrefix("CONNECT ") }.map { String($0.dropFirst(8)) }
    }
}

/// Loopback TCP helpers shared by every test target.
public enum Loopback {
    public struct Failure: Error, CustomStringConvertible { public let description: String }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    public static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                guard bind(fd, $0, length) == 0, getsockname(fd, $0, &length) == 0 else {
                    throw Failure(description: "bind: \(String(cString: strerror(errno)))")
                }
            }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port`.
    public static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: in_port_t(UInt16(port).bigEndian),
                                  sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
