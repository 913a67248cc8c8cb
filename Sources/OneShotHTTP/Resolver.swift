import CLibSSL
import Dispatch
import Glibc
import Synchronization

/// A socket address getaddrinfo(3) gave.
struct SocketAddress: Sendable {
    let family: Int32
    let storage: sockaddr_storage
    let length: socklen_t
}

/// Name lookup within the exchange's deadline. getaddrinfo(3) has no
/// timeout of its own (resolv.conf's can add up to many seconds), so a name
/// is looked up on a thread of its own and waited for with the deadline;
/// a lookup that outlives its caller finishes alone and is dropped.
enum Resolver {
    static let maxAddresses = 8
    /// Lookups on Dispatch's pool at once. One that outlives its caller
    /// (a DNS server that never answers) holds a thread until resolv.conf's
    /// timeouts end it; past this many, a call fails at once instead of
    /// piling up threads.
    static let maxInFlight = 16
    private static let inFlight = Atomic<Int>(0)

    static func addresses(of host: String, port: Int, until deadline: Deadline,
                          cancellation: Cancellation?) throws(ExchangeFailure) -> [SocketAddress] {
        // An IP literal needs no lookup (AI_NUMERICHOST never blocks).
        if case .success(let addresses) = lookup(host, port: port, flags: AI_NUMERICHOST) { return addresses }
        let pending = PendingLookup()
        guard pending.descriptor >= 0 else { throw .unreachable("no eventfd for the name lookup") }
        guard inFlight.wrappingAdd(1, ordering: .relaxed).newValue <= maxInFlight else {
            inFlight.wrappingSubtract(1, ordering: .relaxed)
            throw .unreachable("more than \(maxInFlight) name lookups are pending: is DNS answering?")
        }
        // Dispatch's pool adds a thread when its workers block.
        DispatchQueue.global().async { [pending] in
            pending.finish(lookup(host, port: port, flags: AI_ADDRCONFIG))
            inFlight.wrappingSubtract(1, ordering: .relaxed)
        }
        while true {
            if let result = pending.result {
                switch result {
                case .success(let addresses): return addresses
                case .failure(let failure): throw .unreachable(failure.why)
                }
            }
            try wait(for: pending.descriptor, Int16(POLLIN), until: deadline, cancellation: cancellation)
        }
    }

    private static func lookup(_ host: String, port: Int, flags: Int32) -> Result<[SocketAddress], LookupFailure> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = flags | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            return .failure(LookupFailure(status == EAI_NONAME ? "host not found"
                                                                                      : "name lookup failed (\(status))"))
        }
        defer { freeaddrinfo(first) }
        var addresses: [SocketAddress] = []
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry, addresses.count < maxAddresses {
            if let address = current.pointee.ai_addr, Int(current.pointee.ai_addrlen) <= MemoryLayout<sockaddr_storage>.size {
                var storage = sockaddr_storage()
                withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(current.pointee.ai_addrlen))) }
                addresses.append(SocketAddress(family: current.pointee.ai_family, storage: storage, length: current.pointee.ai_addrlen))
            }
            entry = current.pointee.ai_next
        }
        return addresses.isEmpty ? .failure(LookupFailure("host not found")) : .success(addresses)
    }
}

struct LookupFailure: Error, Sendable {
    let why: String
    init(_ why: String) { self.why = why }
}

/// One lookup's result, handed from its thread to the waiting caller.
private final class PendingLookup: Sendable {
    let descriptor = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
    private let state = Mutex<Result<[SocketAddress], LookupFailure>?>(nil)

    deinit { if descriptor >= 0 { close(descriptor) } }

    var result: Result<[SocketAddress], LookupFailure>? { state.withLock { $0 } }

    func finish(_ result: Result<[SocketAddress], LookupFailure>) {
        state.withLock { $0 = result }
        _ = eventfd_write(descriptor, 1)
    }
}
