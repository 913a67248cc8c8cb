import Glibc
import CFastCGI

/// Where the responder listens.
public enum ListenAddress: Equatable, Sendable, CustomStringConvertible {
    /// A unix socket created at `path` with permissions `mode`.
    case unix(path: String, mode: UInt32)
    /// A TCP socket, `HOST:PORT` (IPv4 address or a name that resolves to one).
    case tcp(host: String, port: UInt16)
    /// A listen socket inherited on fd 0, as spawn-fcgi and systemd
    /// (`StandardInput=socket`) pass it.
    case inherited

    public var description: String {
        switch self {
        case .unix(let path, let mode): return "unix:\(path) (mode \(String(mode, radix: 8)))"
        case .tcp(let host, let port): return "tcp:\(host):\(port)"
        case .inherited: return "the socket inherited on fd 0"
        }
    }

    /// Parses `HOST:PORT` for `--listen`.
    public static func parseTCP(_ text: String) -> ListenAddress? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let host = String(text[..<colon])
        guard !host.isEmpty, !host.contains(":"), let port = UInt16(text[text.index(after: colon)...]), port > 0 else {
            return nil
        }
        return .tcp(host: host, port: port)
    }
}

public struct ListenError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// The one listen socket every event loop accepts from.
public final class ListenSocket {
    public let fd: Int32
    public let address: ListenAddress
    /// The socket file this process created, with its identity, so that on
    /// exit it removes its own file and never one a successor put there.
    private let createdFile: (path: String, device: UInt64, inode: UInt64)?

    /// The kernel caps this at net.core.somaxconn.
    public static let backlog: Int32 = 1024

    private init(fd: Int32, address: ListenAddress, createdFile: (String, UInt64, UInt64)?) {
        self.fd = fd
        self.address = address
        self.createdFile = createdFile
    }

    /// True if this process created the socket (and so closes it).
    public var isOwned: Bool { address != .inherited }

    /// True if, on stop, the event loops should serve what is already queued:
    /// only for a unix socket this process created, whose path is removed
    /// first so the queue can only shrink. A TCP listener keeps receiving
    /// connections until closed, and an inherited one stays queued for the
    /// next process.
    public var drainsOnStop: Bool { createdFile != nil }

    public static func open(_ address: ListenAddress) throws -> ListenSocket {
        let socket: ListenSocket
        switch address {
        case .inherited:
            try checkInherited()
            socket = ListenSocket(fd: 0, address: address, createdFile: nil)
        case .tcp(let host, let port):
            let fd = FCGX_OpenSocket("\(host):\(port)", backlog)
            guard fd >= 0 else {
                throw ListenError("cannot listen on \(host):\(port): \(lastError())")
            }
            socket = ListenSocket(fd: fd, address: address, createdFile: nil)
        case .unix(let path, let mode):
            socket = try openUnix(path: path, mode: mode)
        }
        // Workers wait in epoll and accept without blocking, so a stop request
        // is never stuck behind an accept() that no connection will wake.
        let flags = fcntl(socket.fd, F_GETFL)
        guard flags >= 0, fcntl(socket.fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw ListenError("cannot make the listen socket non-blocking: \(lastError())")
        }
        return socket
    }

    private static func checkInherited() throws {
        var type: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(0, SOL_SOCKET, SO_TYPE, &type, &length) == 0 else {
            throw ListenError("no --socket or --listen given, and fd 0 is not a socket (\(lastError())); "
                + "pass --socket PATH or --listen HOST:PORT, or start under spawn-fcgi or systemd socket activation")
        }
        var listening: Int32 = 0
        length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0, listening == 1,
              type == Int32(SOCK_STREAM.rawValue) else {
            throw ListenError("fd 0 is a socket but not a listening stream socket")
        }
    }

    private static func openUnix(path: String, mode: UInt32) throws -> ListenSocket {
        guard !path.isEmpty, path.utf8.count < 108 else {
            throw ListenError("--socket path must be 1 to 107 bytes long")
        }
        // libfcgi reads "name:digits" as TCP, so such a path cannot be a unix socket here.
        guard !path.contains(":") else { throw ListenError("--socket path must not contain ':' (\(path))") }

        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else {
                throw ListenError("\(path) exists and is not a socket; refusing to replace it")
            }
            if isLive(path) {
                throw ListenError("another process is listening on \(path)")
            }
            // Stale: left by a process that died without cleaning up.
        }

        // libfcgi binds with the process umask; keep the socket private until
        // chmod gives it the requested mode.
        let oldMask = umask(0o177)
        let fd = FCGX_OpenSocket(path, backlog) // unlinks a stale file first
        let openError = errno
        umask(oldMask)
        guard fd >= 0 else {
            throw ListenError("cannot listen on \(path): \(String(cString: strerror(openError)))")
        }
        guard chmod(path, mode_t(mode)) == 0 else {
            let message = lastError()
            Glibc.close(fd)
            unlink(path)
            throw ListenError("cannot chmod \(path) to \(String(mode, radix: 8)): \(message)")
        }
        guard lstat(path, &info) == 0 else { throw ListenError("cannot stat \(path): \(lastError())") }
        return ListenSocket(fd: fd, address: .unix(path: path, mode: mode),
                            createdFile: (path, UInt64(info.st_dev), UInt64(info.st_ino)))
    }

    /// A connect() that succeeds means a live listener owns the path.
    private static func isLive(_ path: String) -> Bool {
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard probe >= 0 else { return false }
        defer { Glibc.close(probe) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8)
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return result == 0
    }

    /// Removes the socket file if this process created it and it is still
    /// the same file. Safe to call more than once.
    public func removeSocketFile() {
        guard let created = createdFile else { return }
        var info = stat()
        if lstat(created.path, &info) == 0, UInt64(info.st_dev) == created.device,
           UInt64(info.st_ino) == created.inode {
            unlink(created.path)
        }
    }

    public func close() {
        if isOwned { _ = Glibc.close(fd) }
    }
}

func lastError() -> String { String(cString: strerror(errno)) }
