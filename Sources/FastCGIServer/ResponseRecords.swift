/// An answer as FastCGI records (spec §5.3, §5.5): the CGI response as
/// STDOUT records of at most 65,535 bytes, the empty STDOUT that ends the
/// stream, and END_REQUEST (appStatus 0, FCGI_REQUEST_COMPLETE). Written
/// into the connection's output, which is sent with one `send`.
enum ResponseRecords {
    static func append(_ wire: UnsafeRawBufferPointer, requestID: UInt16, to output: inout ByteBuffer) {
        output.reserve(output.count + wire.count + (wire.count / 0xFFFF + 3) * FCGI.headerLength + 8)
        var offset = 0
        while offset < wire.count {
            let length = min(0xFFFF, wire.count - offset)
            appendHeader(FCGI.stdout, requestID, contentLength: length, to: &output)
            output.append(UnsafeRawBufferPointer(rebasing: wire[offset..<(offset + length)]))
            offset += length
        }
        appendHeader(FCGI.stdout, requestID, contentLength: 0, to: &output)
        appendHeader(FCGI.endRequest, requestID, contentLength: 8, to: &output)
        var body: UInt64 = 0 // appStatus 0 (4 bytes), FCGI_REQUEST_COMPLETE, 3 reserved bytes
        withUnsafeBytes(of: &body) { output.append($0) }
    }

    /// §3.3: a record's header, without padding.
    private static func appendHeader(_ type: UInt8, _ requestID: UInt16, contentLength: Int, to output: inout ByteBuffer) {
        withUnsafeBytes(of: RecordHeader.encoded(type: type, requestID: requestID, contentLength: contentLength)) {
            output.append($0)
        }
    }
}
