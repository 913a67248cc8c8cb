import ArgumentParser
import FastCGIServer
import Logging
import MagicBellFCGIApp

// Option values parsed once, by ArgumentParser, into the types the server
// takes: a value that does not parse is a usage error (exit 64) naming the
// option, and run() never parses or force-unwraps again.

/// `--listen HOST:PORT`.
struct TCPAddress: ExpressibleByArgument {
    let address: ListenAddress
    init?(argument: String) {
        guard let address = ListenAddress.parseTCP(argument) else { return nil }
        self.address = address
    }
    var defaultValueDescription: String { "\(address)" }
}

/// `--socket-mode OCTAL`: permissions that let the owner read and write.
struct SocketMode: ExpressibleByArgument {
    let bits: UInt32
    init?(argument: String) {
        guard let bits = UInt32(argument, radix: 8), bits <= 0o777, bits & 0o600 == 0o600 else { return nil }
        self.bits = bits
    }
    init(_ bits: UInt32) { self.bits = bits }
    var defaultValueDescription: String { "0" + String(bits, radix: 8) }
}

/// `--peer-uid USER[,USER...]`: user names or uids, resolved once (a
/// transform, not ExpressibleByArgument, so the error names the user).
struct PeerUIDs {
    let uids: [UInt32]
    static func parse(_ text: String) throws -> PeerUIDs {
        do { return PeerUIDs(uids: try PeerPolicy.uids(text)) } catch { throw ValidationError(error.description) }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
extension LogFormat: ExpressibleByArgument {}

/// The variables serve reads, one per line, for --help and the man page.
/// (Here and not in main.swift, whose globals are made eagerly, in order:
/// a CGI process would build this help for every request.)
let environmentHelp: String = {
    let all = Configuration.variables + [
        ("FCGI_WEB_SERVER_ADDRS", "libfcgi's allow-list of TCP peers (comma-separated IPv4/IPv6 addresses); unset: any"),
        ("GATEWAY_INTERFACE", "CGI/1.x: run as a CGI program (set by the web server; the arguments are then ignored)"),
    ]
    let width = all.map(\.name.count).max()! + 2
    return all.map { "  " + $0.name + String(repeating: " ", count: width - $0.name.count) + $0.meaning }.joined(separator: "\n")
}()
