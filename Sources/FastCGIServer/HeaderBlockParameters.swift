/// The params of a checked header block, looked up without libfcgi: for
/// the one question asked of a request whose body is still arriving
/// (`FastCGIResponder.answersBeforeBody`). Slow path only: nginx, h2o and
/// Caddy send bodies whole, and their requests never get here.
///
/// `stream` is the PARAMS records' contents joined (spec §3.4 name-value
/// pairs); `RequestIntake` checked every length, so each pair is whole and
/// within the limit. A param must read here exactly as libfcgi's
/// `FCGX_GetParam` will read it, so that the question and the answer are
/// about the same request. libfcgi keeps each pair as the C string
/// `name=value`: a NUL ends the value, and the first entry that starts with
/// `NAME=` wins, a name sent twice as much as a name that holds `=`. So
/// values are cut at a NUL here, and a block with a name that holds `=` or
/// NUL is never asked about (`namesArePlain`): its request waits for its body.
public struct HeaderBlockParameters: RequestParameters {
    let stream: UnsafeBufferPointer<UInt8>

    public func param(_ name: StaticString) -> UnsafeBufferPointer<UInt8>? {
        let wanted = UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        var found: UnsafeBufferPointer<UInt8>?
        forEachPair { pairName, value in
            guard pairName.elementsEqual(wanted) else { return true }
            let cut = value.firstIndex(of: 0) ?? value.endIndex
            found = UnsafeBufferPointer(rebasing: value[..<cut])
            return false
        }
        return found
    }

    /// Whether no name holds `=` or NUL, so that `param` finds what libfcgi finds.
    var namesArePlain: Bool {
        var plain = true
        forEachPair { pairName, _ in
            plain = !pairName.contains(UInt8(ascii: "=")) && !pairName.contains(0)
            return plain
        }
        return plain
    }

    /// Calls `body` with each pair in order, until it returns false.
    private func forEachPair(_ body: (Slice<UnsafeBufferPointer<UInt8>>, Slice<UnsafeBufferPointer<UInt8>>) -> Bool) {
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
        while let nameLength = length(), let valueLength = length() {
            guard nameLength <= stream.count - index, valueLength <= stream.count - index - nameLength else { return }
            let value = index + nameLength
            guard body(stream[index..<value], stream[value..<(value + valueLength)]) else { return }
            index = value + valueLength
        }
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
