import CLibSSL
import Glibc
import Synchronization

/// The TLS settings every HTTPS exchange of one client shares: TLS 1.2 or
/// later, the peer's certificate checked against the system's trust store
/// (OpenSSL's default paths, which honour SSL_CERT_FILE and SSL_CERT_DIR)
/// or against `caFile`. Made on the first HTTPS exchange, so that a process
/// that never makes one (a CGI token request) never loads it.
final class TLSContext: Sendable {
    private let caFile: String?
    private let made = Mutex<Result<Context, ExchangeFailure>?>(nil)

    /// SSL_CTX is safe to share once configured (OpenSSL 3's threads(7)).
    private struct Context: @unchecked Sendable { let pointer: OpaquePointer }

    init(caFile: String?) { self.caFile = caFile }

    deinit {
        if case .success(let context) = made.withLock({ $0 }) { SSL_CTX_free(context.pointer) }
    }

    /// Made once; a failure (a CA file not readable yet) is not kept, so
    /// the next call tries again.
    func context() throws(ExchangeFailure) -> OpaquePointer {
        try made.withLock { made in
            if let made { return made }
            let result = Self.make(caFile: caFile).map(Context.init)
            if case .success = result { made = result }
            return result
        }.get().pointer
    }

    private static func make(caFile: String?) -> Result<OpaquePointer, ExchangeFailure> {
        guard let context = SSL_CTX_new(TLS_client_method()) else { return .failure(.tls("no TLS context: \(TLSSession.lastError())")) }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        mbf_ssl_ctx_configure(context)
        mbf_ssl_ctx_check_names_as_libcurl(context)
        let trusted = caFile.map { SSL_CTX_load_verify_locations(context, $0, nil) } ?? SSL_CTX_set_default_verify_paths(context)
        guard mbf_ssl_ctx_set_min_tls12(context) == 1, trusted == 1 else {
            let why = TLSSession.lastError()
            SSL_CTX_free(context)
            return .failure(.tls(caFile == nil ? "the system's trust store could not be loaded: \(why)"
                                               : "the CA file could not be loaded: \(why)"))
        }
        return .success(context)
    }
}

/// TLS over a TCP connection. OpenSSL reads and writes memory BIOs and this
/// type moves their bytes to and from the socket, so that every wait is the
/// exchange's (deadline, cancellation) and a write to a closed peer is never
/// a SIGPIPE.
final class TLSSession: ByteStream {
    private let connection: TCPConnection
    private let ssl: OpaquePointer
    /// network → OpenSSL, and OpenSSL → network.
    private let incoming: OpaquePointer
    private let outgoing: OpaquePointer
    private var scratch = [UInt8](repeating: 0, count: 16 * 1024)

    deinit { SSL_free(ssl) } // frees both BIOs

    /// Shakes hands with `host`, whose certificate must name it (RFC 6125
    /// through OpenSSL's host check, with libcurl's rules: see
    /// mbf_ssl_ctx_check_names_as_libcurl; an IP literal is checked as an IP
    /// SAN and sent without SNI, RFC 6066 §3).
    init(over connection: TCPConnection, host: String, context: TLSContext, deadline: Deadline) throws(ExchangeFailure) {
        ERR_clear_error()
        guard let ssl = SSL_new(try context.context()) else { throw .tls("no TLS session: \(Self.lastError())") }
        guard let incoming = BIO_new(BIO_s_mem()), let outgoing = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl) // (a BIO that was made leaks: this is out of memory)
            throw .tls("no TLS session: \(Self.lastError())")
        }
        self.connection = connection
        self.ssl = ssl
        self.incoming = incoming
        self.outgoing = outgoing
        SSL_set_bio(ssl, incoming, outgoing)
        let isAddress = Self.isIPLiteral(host)
        let named = isAddress ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) : SSL_set1_host(ssl, host)
        guard named == 1, isAddress || mbf_ssl_set_sni(ssl, host) == 1 else { throw .tls("the host name cannot be checked: \(Self.lastError())") }
        SSL_set_connect_state(ssl)
        // Only a finished handshake counts: before it, an alert such as
        // close_notify is plaintext that anyone on the path can send, and
        // SSL_do_handshake then returns 0 (SSL_ERROR_ZERO_RETURN).
        let done = try drive(until: deadline, handshake: true) { SSL_do_handshake(ssl) }
        guard done == 1, SSL_is_init_finished(ssl) == 1 else {
            throw .tls("the server ended the connection during the handshake")
        }
        // Belt and braces: SSL_VERIFY_PEER already fails the handshake otherwise.
        guard SSL_get_verify_result(ssl) == X509_V_OK, let peer = SSL_get1_peer_certificate(ssl) else {
            throw .tls("the server's certificate was not verified")
        }
        X509_free(peer)
    }

    func write(_ bytes: [UInt8], until deadline: Deadline) throws(ExchangeFailure) {
        var sent = 0
        while sent < bytes.count {
            let count = try drive(until: deadline, handshake: false) {
                bytes.withUnsafeBytes { SSL_write(ssl, $0.baseAddress! + sent, Int32(min($0.count - sent, Int(Int32.max)))) }
            }
            // 0 is the peer's close_notify: nothing more can be written.
            guard count > 0 else { throw .dropped("the server closed the connection while the request was sent") }
            sent += Int(count)
        }
    }

    func read(into buffer: inout [UInt8], until deadline: Deadline) throws(ExchangeFailure) -> Int {
        // (withUnsafeMutableBytes rethrows untyped errors: the result is carried out.)
        var result: Result<Int32, ExchangeFailure> = .success(0)
        buffer.withUnsafeMutableBytes { raw in
            result = Result { () throws(ExchangeFailure) in
                try drive(until: deadline, handshake: false) { SSL_read(ssl, raw.baseAddress!, Int32(min(raw.count, Int(Int32.max)))) }
            }
        }
        return Int(try result.get())
    }

    /// Runs one OpenSSL call to completion: flushes what it wrote, feeds it
    /// what it wants to read, and maps its errors. 0 only at close_notify.
    private func drive(until deadline: Deadline, handshake: Bool, _ operation: () -> Int32) throws(ExchangeFailure) -> Int32 {
        while true {
            // A backstop: every path below that waits checks these too, but
            // a loop that did not wait must still end by the deadline.
            if connection.cancellation?.isCancelled == true { throw .cancelled }
            if deadline.remainingMilliseconds == 0 { throw .timedOut }
            ERR_clear_error()
            let result = operation()
            let error = SSL_get_error(ssl, result)
            try flush(until: deadline)
            if result > 0 { return result }
            switch error {
            case SSL_ERROR_WANT_READ:
                let count = try connection.read(into: &scratch, until: deadline)
                guard count > 0 else {
                    // EOF without close_notify: the answer may be cut short (RFC 8446 §6.1).
                    throw handshake ? .tls("the server closed the connection during the handshake")
                                    : .dropped("the connection closed without TLS close_notify")
                }
                _ = scratch.withUnsafeBytes { BIO_write(incoming, $0.baseAddress!, Int32(count)) }
            case SSL_ERROR_WANT_WRITE:
                continue // memory BIOs take everything; flushed above
            case SSL_ERROR_ZERO_RETURN:
                return 0
            default:
                let verify = SSL_get_verify_result(ssl)
                if handshake && verify != X509_V_OK {
                    throw .tls("certificate verify failed: \(String(cString: X509_verify_cert_error_string(Int(verify))))")
                }
                let why = Self.lastError()
                throw handshake ? .tls(why) : .dropped("TLS failed: \(why)")
            }
        }
    }

    /// Sends whatever OpenSSL has written into the outgoing BIO.
    private func flush(until deadline: Deadline) throws(ExchangeFailure) {
        while BIO_ctrl_pending(outgoing) > 0 {
            let count = scratch.withUnsafeMutableBytes { BIO_read(outgoing, $0.baseAddress!, Int32($0.count)) }
            guard count > 0 else { return }
            try connection.write(Array(scratch[0..<Int(count)]), until: deadline)
        }
    }

    static func lastError() -> String {
        let code = ERR_get_error()
        guard code != 0 else { return "unknown error" }
        var text = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &text, text.count)
        return String(decoding: text.prefix { $0 != 0 }.map(UInt8.init(bitPattern:)), as: UTF8.self)
    }

    private static func isIPLiteral(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}
