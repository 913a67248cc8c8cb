import FuzzDriver
import FastCGIServer

/// FastCGIPreflight.check on any bytes, with a small limit so that the limit
/// paths are reached. Properties: it never crashes; a block found ready stays
/// ready whatever follows it (the body); and a ready block really is one: an
/// independent walk of its records and pairs agrees.
func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let limit = 4096
    let verdict = FastCGIPreflight.check(bytes, limit: limit)
    guard verdict == .ready else { return 0 }
    let extended = Array(bytes) + [0xFF, 0x00, 0x7F]
    precondition(extended.withUnsafeBytes { FastCGIPreflight.check($0, limit: limit) } == .ready)
    precondition(walk(Array(bytes), limit: limit), "ready, but the independent walk disagrees")
    return 0
}

/// The plainest possible reading of spec §3.3/§3.4: records one after the
/// other, pairs over the concatenated PARAMS contents.
func walk(_ bytes: [UInt8], limit: Int) -> Bool {
    var offset = 0
    var params: [UInt8] = []
    var first = true
    while offset + 8 <= bytes.count {
        let type = bytes[offset + 1]
        let length = Int(bytes[offset + 4]) << 8 | Int(bytes[offset + 5])
        let end = offset + 8 + length + Int(bytes[offset + 6])
        guard bytes[offset] == 1, end <= bytes.count, end <= limit else { return false }
        if first {
            guard type == 1, length == 8, bytes[offset + 8] == 0, bytes[offset + 9] == 1 else { return false }
            first = false
        } else {
            guard type == 4 else { return false }
            if length == 0 {
                // Decode every pair; each must fit.
                var i = 0
                func readLength() -> Int? {
                    guard i < params.count else { return nil }
                    if params[i] < 0x80 { i += 1; return Int(params[i - 1]) }
                    guard i + 4 <= params.count else { return nil }
                    let n = Int(params[i] & 0x7F) << 24 | Int(params[i + 1]) << 16 | Int(params[i + 2]) << 8 | Int(params[i + 3])
                    i += 4
                    return n
                }
                while i < params.count {
                    guard let name = readLength(), let value = readLength(), name + value <= limit,
                          i + name + value <= params.count else { return false }
                    i += name + value
                }
                return true
            }
            params += bytes[(offset + 8)..<(offset + 8 + length)]
        }
        offset = end
    }
    return false
}

runFuzzer(fuzz)
