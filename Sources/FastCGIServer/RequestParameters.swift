#if canImport(Glibc)
import Glibc
#endif
import CFastCGI

/// Read access to a request's FastCGI params (the CGI environment nginx sends).
/// Values are raw bytes, valid until the request finishes.
public protocol RequestParameters {
    /// The value of `name`, or nil if nginx did not send it.
    func param(_ name: StaticString) -> UnsafeBufferPointer<UInt8>?
}

extension RequestParameters {
    /// The value as a String (invalid UTF-8 is repaired); for logs and errors,
    /// not the hot path.
    public func string(_ name: StaticString) -> String? {
        param(name).map { String(decoding: $0, as: UTF8.self) }
    }
}

/// One accepted libfcgi request, seen by a responder on its worker thread.
public struct FastCGIRequest: RequestParameters {
    @usableFromInline let raw: UnsafeMutablePointer<FCGX_Request>

    @inlinable
    public func param(_ name: StaticString) -> UnsafeBufferPointer<UInt8>? {
        // StaticString literals are NUL-terminated, as FCGX_GetParam needs.
        let value = name.utf8Start.withMemoryRebound(to: CChar.self, capacity: name.utf8CodeUnitCount + 1) {
            FCGX_GetParam($0, raw.pointee.envp)
        }
        guard let value else { return nil }
        return UnsafeBufferPointer(start: UnsafeRawPointer(value).assumingMemoryBound(to: UInt8.self),
                                   count: strlen(value))
    }
}
