import Glibc
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The project's fake MagicBell (scripts/fake-magicbell), started for one test.
public final class FakeMagicBell: @unchecked Sendable {
    public static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let process = Process()
    public let port: Int
    public let token: String
    public let scheme: String
    public var baseURL: URL { URL(string: "\(scheme)://127.0.0.1:\(port)/v2")! }

    /// `tls`: serve HTTPS with that certificate (its control endpoints too,
    /// which `control` then cannot reach: a TLS fake is for the client's checks).
    public init(token: String = Canary.secret("pt_test"), tls: TestCertificates.Pair? = nil) throws {
        self.token = token
        scheme = tls == nil ? "http" : "https"
        let portFile = FileManager.default.temporaryDirectory.appendingPathComponent("fake-\(UUID().uuidString)").path
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.root.appendingPathComponent("scripts/fake-magicbell").path,
                             "--token", token, "--port-file", portFile]
            + (tls.map { ["--tls-cert", $0.certificate, "--tls-key", $0.key] } ?? [])
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: portFile) && Date() < deadline { usleep(20_000) }
        port = Int((try? String(contentsOfFile: portFile, encoding: .utf8)) ?? "") ?? 0
        try? FileManager.default.removeItem(atPath: portFile)
        guard port > 0 else { throw CocoaError(.featureUnsupported, userInfo: [NSDebugDescriptionErrorKey: "the fake did not start"]) }
    }

    deinit {
        kill(process.processIdentifier, SIGKILL) // whatever signal mask it inherited
        process.waitUntilExit()
    }

    /// Calls a control endpoint (`requests`, `reset`, `misbehave`).
    @discardableResult
    public func control(_ path: String, _ body: String? = nil) throws -> Data {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/_fake/\(path)")!)
        if let body {
            request.httpMethod = "POST"
            request.httpBody = Data(body.utf8)
        }
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result = Data()
        URLSession.shared.dataTask(with: request) { data, _, _ in
            result = data ?? Data()
            done.signal()
        }.resume()
        done.wait()
        return result
    }

    /// Makes the next `count` API requests misbehave (-1: until reset).
    public func misbehave(_ mode: String, count: Int = 1, seconds: Double? = nil) throws {
        var rule = #"{"mode":"\#(mode)","count":\#(count)"#
        if let seconds { rule += #","seconds":\#(seconds)"# }
        try control("misbehave", rule + "}")
    }

    /// Every API request the fake received, oldest first.
    public func requests() throws -> [[String: Any]] {
        (try JSONSerialization.jsonObject(with: try control("requests")) as? [[String: Any]]) ?? []
    }
}

/// Certificates made with the openssl command, for one test.
public enum TestCertificates {
    public struct Pair: Sendable {
        public let certificate: String
        public let key: String
    }

    /// A self-signed certificate (P-256, one day) for `subjectAltName`, e.g. "DNS:localhost,IP:127.0.0.1".
    public static func make(_ subjectAltName: String) throws -> Pair {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("cert-\(UUID().uuidString)").path
        try openssl(["-subj", "/CN=test", "-addext", "subjectAltName=\(subjectAltName)", "-keyout", base + ".key", "-out", base + ".pem"])
        return Pair(certificate: base + ".pem", key: base + ".key")
    }

    /// A certificate authority for one test, to put in SSL_CERT_FILE, and
    /// the server certificates it signs.
    public struct Authority: Sendable {
        public let certificate: String
        let key: String

        /// A server certificate (CA:FALSE) for `commonName`, with
        /// `subjectAltName` (e.g. "DNS:api.example.com") when given.
        public func issue(commonName: String, subjectAltName: String?) throws -> Pair {
            let base = FileManager.default.temporaryDirectory.appendingPathComponent("leaf-\(UUID().uuidString)").path
            let names = subjectAltName.map { ["-addext", "subjectAltName=\($0)"] } ?? []
            try TestCertificates.openssl(["-subj", "/CN=\(commonName)", "-addext", "basicConstraints=CA:FALSE"] + names
                                         + ["-CA", certificate, "-CAkey", key, "-keyout", base + ".key", "-out", base + ".pem"])
            return Pair(certificate: base + ".pem", key: base + ".key")
        }
    }

    public static func authority() throws -> Authority {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("ca-\(UUID().uuidString)").path
        try openssl(["-subj", "/CN=magicbell-fcgi test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign", "-keyout", base + ".key", "-out", base + ".pem"])
        return Authority(certificate: base + ".pem", key: base + ".key")
    }

    /// `openssl req -x509` for a P-256 key that lasts a day, with `arguments`.
    static func openssl(_ arguments: [String]) throws {
        let made = try runProcess("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                              "-nodes", "-days", "1"] + arguments)
        guard made.status == 0 else { throw CocoaError(.featureUnsupported, userInfo: [NSDebugDescriptionErrorKey: made.stderr]) }
    }
}

/// A port that never answers a connect.
public enum Blackhole {
    /// A listener whose accept queue is full: Linux drops further SYNs, so a
    /// connect to it hangs, like one to an address whose route goes nowhere.
    public static func listener() throws -> (port: Int, keep: [Int32]) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: 0, sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        listen(listener, 0)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        var keep = [listener]
        for _ in 0..<3 { // fill the queue (backlog 0 takes one; more to be sure)
            let filler = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue), 0)
            _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(filler, $0, length) } }
            keep.append(filler)
        }
        usleep(100_000)
        return (Int(UInt16(bigEndian: address.sin_port)), keep)
    }
}
