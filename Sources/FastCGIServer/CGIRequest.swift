import Glibc

/// One CGI/1.1 request (RFC 3875): the meta-variables are this process's
/// environment, as the web server set it (§4.1), and the body is standard
/// input, exactly `CONTENT_LENGTH` bytes (§4.2). For a process that answers
/// one request and exits; nothing here is shared with the FastCGI server.
public struct CGIRequest: RequestParameters, RequestBodyReader {
    public init() {}

    /// The variable's bytes. The environment is never changed while the
    /// request runs, so the pointer stays valid.
    public func param(_ name: StaticString) -> UnsafeBufferPointer<UInt8>? {
        let value = name.utf8Start.withMemoryRebound(to: CChar.self, capacity: name.utf8CodeUnitCount + 1) { getenv($0) }
        guard let value else { return nil }
        return UnsafeBufferPointer(start: UnsafeRawPointer(value).assumingMemoryBound(to: UInt8.self), count: strlen(value))
    }

    /// §4.2: the server passes `CONTENT_LENGTH` with a body and the script
    /// must not read more; without it there is no body. A length that is
    /// not a plain decimal number is read as none.
    public func readBody(limit: Int) -> RequestBody {
        guard let text = param("CONTENT_LENGTH"), !text.isEmpty, text.count <= 18,
              text.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
              let length = Int(String(decoding: text, as: UTF8.self)), length > 0 else {
            return .complete([])
        }
        guard length <= limit else { return .tooLarge }
        var body = [UInt8](repeating: 0, count: length)
        var got = 0
        while got < length {
            let n = body.withUnsafeMutableBytes { read(0, $0.baseAddress! + got, length - got) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            got += n
        }
        return got == length ? .complete(body) : .incomplete
    }
}
