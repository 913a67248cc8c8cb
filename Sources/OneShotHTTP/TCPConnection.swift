import CLibSSL
import Glibc

/// What an exchange reads and writes: a TCP connection, or TLS over one.
protocol ByteStream {
    /// Writes all of `bytes`.
    mutating func write(_ bytes: [UInt8], until deadline: Deadline) throws(ExchangeFailure)
    /// Reads what has arrived, at least one byte; 0 at a clean end of stream.
    mutating func read(into buffer: inout [UInt8], until deadline: Deadline) throws(ExchangeFailure) -> Int
}

/// A non-blocking TCP connection that every wait bounds by the deadline.
/// Closed when the last copy goes.
final class TCPConnection: ByteStream {
    let descriptor: Int32
    /// Set to nil once the request is sent (see OneShotClient.exchange).
    var cancellation: Cancellation?

    private init(descriptor: Int32, cancellation: Cancellation?) {
        self.descriptor = descriptor
        self.cancellation = cancellation
    }

    deinit { close(descriptor) }

    /// Connects to the first of `addresses` that accepts, IPv6 and IPv4
    /// taking turns (RFC 8305 §4). Each attempt but the last gets an equal
    /// share of the time left, so one address that drops SYNs (an AAAA
    /// record where IPv6 goes nowhere) cannot take the whole deadline.
    static func connect(to addresses: [SocketAddress], until deadline: Deadline,
                        cancellation: Cancellation?) throws(ExchangeFailure) -> TCPConnection {
        var lastError: Int32 = ECONNREFUSED
        let ordered = interleavingFamilies(addresses)
        for (index, address) in ordered.enumerated() {
            let left = ordered.count - index
            let attempt = left == 1 ? deadline : Deadline(at: Deadline.now() + deadline.remainingSeconds / Double(left))
            let descriptor = socket(address.family, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
            guard descriptor >= 0 else { lastError = errno; continue }
            let connection = TCPConnection(descriptor: descriptor, cancellation: cancellation)
            var storage = address.storage
            let started = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, address.length) }
            }
            if started == 0 { return connection }
            guard errno == EINPROGRESS else { lastError = errno; continue }
            do {
                try wait(for: descriptor, Int16(POLLOUT), until: attempt, cancellation: cancellation)
            } catch .timedOut where left > 1 {
                lastError = ETIMEDOUT
                continue
            }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else { lastError = errno; continue }
            if error == 0 { return connection }
            lastError = error
        }
        throw .unreachable(describe(lastError))
    }

    /// The first address's family first, then the other, alternating.
    static func interleavingFamilies(_ addresses: [SocketAddress]) -> [SocketAddress] {
        guard let first = addresses.first else { return [] }
        var same = addresses.filter { $0.family == first.family }[...]
        var other = addresses.filter { $0.family != first.family }[...]
        var ordered: [SocketAddress] = []
        while let next = same.popFirst() {
            ordered.append(next)
            if let turn = other.popFirst() { ordered.append(turn) }
        }
        return ordered + other
    }

    private static func describe(_ error: Int32) -> String {
        switch error {
        case ECONNREFUSED: "connection refused"
        case ENETUNREACH, EHOSTUNREACH: "no route to host"
        case ETIMEDOUT: "the connection timed out"
        default: "connect failed (errno \(error))"
        }
    }

    func write(_ bytes: [UInt8], until deadline: Deadline) throws(ExchangeFailure) {
        var sent = 0
        while sent < bytes.count {
            // MSG_NOSIGNAL: a peer that has gone is an error here, not a SIGPIPE for the process.
            let count = bytes.withUnsafeBytes { send(descriptor, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if count > 0 { sent += count; continue }
            if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                try wait(for: descriptor, Int16(POLLOUT), until: deadline, cancellation: cancellation)
                continue
            }
            throw .dropped("the connection was dropped while sending")
        }
    }

    func read(into buffer: inout [UInt8], until deadline: Deadline) throws(ExchangeFailure) -> Int {
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress!, $0.count, 0) }
            if count >= 0 { return count }
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR {
                try wait(for: descriptor, Int16(POLLIN), until: deadline, cancellation: cancellation)
                continue
            }
            throw .dropped(errno == ECONNRESET ? "the connection was reset" : "the connection failed (errno \(errno))")
        }
    }
}
