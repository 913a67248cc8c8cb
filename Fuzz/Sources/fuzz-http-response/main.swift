import FuzzDriver
@testable import OneShotHTTP

/// MagicBell's answers through the HTTP/1.1 response parser. The first
/// input byte picks where to cut the rest into two pieces and the body
/// limit; the rest is the answer. Properties: the outcome is the same
/// whole and cut (an answer's meaning never depends on how TCP split it);
/// an accepted answer keeps the body limit and the field bound; nothing
/// traps.
func parse(_ bytes: ArraySlice<UInt8>, cut: Int, limit: Int) -> Result<HTTPResponseMessage, ExchangeFailure> {
    var parser = ResponseParser(bodyLimit: limit)
    do throws(ExchangeFailure) {
        for piece in [bytes[bytes.startIndex..<bytes.startIndex + cut], bytes[(bytes.startIndex + cut)...]] where !piece.isEmpty {
            try parser.feed(piece)
            if let response = parser.response { return .success(response) }
        }
        try parser.finish()
        return parser.response.map { .success($0) } ?? .failure(.dropped("no answer after finish"))
    } catch {
        return .failure(error)
    }
}

func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let control = Int(input[0])
    let answer = input[1...]
    let limit = [0, 1, 16, 256, 1 << 20][control % 5]
    let whole = parse(answer, cut: answer.count, limit: limit)
    let cut = answer.isEmpty ? 0 : (control * 7919) % (answer.count + 1)
    let split = parse(answer, cut: cut, limit: limit)
    precondition(whole == split, "the outcome depends on the cut: \(whole) vs \(split)")
    if case .success(let response) = whole {
        precondition(response.body.count <= limit, "the body is over its limit")
        precondition(response.fields.count <= ResponseParser.maxFields, "more fields than allowed")
        precondition((100...999).contains(response.status) && !(100..<200).contains(response.status), "an interim status as the answer")
        for field in response.fields {
            precondition(!field.value.utf8.contains(where: { $0 < 0x20 && $0 != 0x09 }), "a control character in a value")
        }
    }
    return 0
}

runFuzzer(fuzz)
