import Glibc
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

/// A request body as read, bounded.
public enum RequestBody: Equatable {
    case complete([UInt8])
    /// Longer than the limit (at most `limit + 1` bytes were read).
    case tooLarge
    /// The connection failed or the stream broke before the body's end.
    case incomplete
}

/// Reads a request's body (FastCGI stdin).
public protocol RequestBodyReader {
    func readBody(limit: Int) -> RequestBody
}

/// One accepted libfcgi request, seen by a responder on its worker thread.
public struct FastCGIRequest: RequestParameters, RequestBodyReader {
    @usableFromInline let raw: UnsafeMutablePointer<FCGX_Request>
    /// The whole body, when the request was read record by record; nil when
    /// libfcgi reads it from the socket.
    let body: UnsafeBufferPointer<UInt8>?
    /// Answered before its body arrived (`FastCGIResponder.answersBeforeBody`):
    /// a responder that reads the body anyway gets `.incomplete`, never a
    /// body that looks empty.
    var bodyWithheld = false

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

extension FastCGIRequest {
    public func readBody(limit: Int) -> RequestBody {
        if bodyWithheld { return .incomplete }
        if let body {
            return body.count > limit ? .tooLarge : .complete(Array(body))
        }
        var body: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 8192)
        while body.count <= limit {
            let want = Int32(min(chunk.count, limit + 1 - body.count))
            let got = chunk.withUnsafeMutableBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { FCGX_GetStr($0.baseAddress, want, raw.pointee.in) }
            }
            if got <= 0 { break }
            body.append(contentsOf: chunk[..<Int(got)])
        }
        if body.count > limit { return .tooLarge }
        // A short read is the end of stdin only if the stream has no error.
        return FCGX_GetError(raw.pointee.in) == 0 ? .complete(body) : .incomplete
    }
}
