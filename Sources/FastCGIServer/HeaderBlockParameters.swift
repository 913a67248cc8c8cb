/// The params of a checked header block, looked up without libfcgi: for
/// the one question asked of a request whose body is still arriving
/// (`FastCGIResponder.answersBeforeBody`). Slow path only: nginx, h2o and
/// Caddy send bodies whole, and their requests never get here.
///
/// `stream` is the PARAMS records' contents joined (spec §3.4 name-value
/// pairs); `RequestIntake` checked every length, so each pair is whole and
/// within the limit. A name sent twice is found first, as libfcgi's
/// `FCGX_GetParam` finds it.
public struct HeaderBlockParameters: RequestParameters {
    let stream: UnsafeBufferPointer<UInt8>

    public func param(_ name: StaticString) -> UnsafeBufferPointer<UInt8>? {
        var index = 0
        func length() -> Int? {
            guard index < stream.count else { return nil }
            if stream[index] & 0x80 == 0 {
                index += 1
                return Int(stream[index - 1])
            }
            guard index + 4 <= stream.count else { return nil }
            defer { index += 4 }
            return Int(stream[index] & 0x7F) << 24 | Int(stream[index + 1]) << 16 | Int(stream[index + 2]) << 8 | Int(stream[index + 3])
        }
        let wanted = UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        while let nameLength = length(), let valueLength = length() {
            guard nameLength <= stream.count - index, valueLength <= stream.count - index - nameLength else { return nil }
            let value = index + nameLength
            if nameLength == wanted.count && stream[index..<value].elementsEqual(wanted) {
                return UnsafeBufferPointer(rebasing: stream[value..<(value + valueLength)])
            }
            index = value + valueLength
        }
        return nil
    }

    /// The PARAMS contents of `headerBlock` (records as `ConnectionWorker`
    /// rebuilt them: no padding), joined into `stream`.
    static func join(_ headerBlock: [UInt8], into stream: inout [UInt8]) {
        stream.removeAll(keepingCapacity: true)
        var offset = 0
        while headerBlock.count - offset >= FCGI.headerLength {
            let header = headerBlock.withUnsafeBytes { RecordHeader(UnsafeRawBufferPointer(rebasing: $0[offset...])) }
            let content = offset + FCGI.headerLength
            guard headerBlock.count - content >= header.contentLength else { return }
            if header.type == FCGI.params { stream.append(contentsOf: headerBlock[content..<(content + header.contentLength)]) }
            offset = content + header.contentLength
        }
    }
}
