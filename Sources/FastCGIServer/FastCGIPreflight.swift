/// The fast path's check: a look (a peek, nothing consumed) at what a
/// connection has sent. When it is exactly one clean request, from
/// BEGIN_REQUEST to the end of STDIN with nothing else in between or
/// after, libfcgi may read those very bytes from the socket: each was
/// checked by `RequestIntake`, and libfcgi stops at the end of STDIN, so
/// nothing it might read beyond is ever interpreted. That is how nginx
/// sends a request, in one write. Anything else (management records, a
/// second request id, a request still arriving or bigger than the look)
/// is read record by record instead (`ConnectionWorker`), and libfcgi gets
/// only the checked records.
public enum FastCGIPreflight {
    public enum Verdict: Equatable, Sendable {
        /// One whole, clean request, ending at the last byte looked at.
        case ready
        /// Not known to be invalid, but not a clean whole request either:
        /// to be read and checked record by record.
        case needsIntake
        /// Never valid, whatever follows; the reason is for the log.
        case invalid(String)
    }

    /// The default header block limit: nginx's own cap on request headers
    /// (4 × 8 KiB large_client_header_buffers) with room for a site that raises it.
    public static let defaultLimit = 128 * 1024

    static func check(_ bytes: UnsafeRawBufferPointer, limits: RequestIntake.Limits) -> Verdict {
        var intake = RequestIntake(limits: limits)
        var offset = 0
        while bytes.count - offset >= FCGI.headerLength {
            let header = RecordHeader(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
            if let problem = intake.precheck(header) { return .invalid(problem) }
            guard bytes.count - offset >= header.recordLength else { return .needsIntake }
            let content = UnsafeRawBufferPointer(rebasing: bytes[(offset + FCGI.headerLength)..<(offset + FCGI.headerLength + header.contentLength)])
            switch intake.take(header, content) {
            case .request: break
            case .invalid(let reason): return .invalid(reason)
            case .reply, .skip, .aborted: return .needsIntake
            }
            offset += header.recordLength
            if intake.isComplete { return offset == bytes.count ? .ready : .needsIntake }
        }
        return .needsIntake
    }

    /// For tests and the fuzz target: `check` with the default limits.
    public static func check(_ bytes: UnsafeRawBufferPointer, headerLimit: Int = defaultLimit,
                             bodyLimit: Int = 1 << 20) -> Verdict {
        check(bytes, limits: RequestIntake.Limits(maxHeaderBytes: headerLimit, maxBodyBytes: bodyLimit,
                                                   values: ManagementValues(maxConnections: 1, maxRequests: 1)))
    }
}
