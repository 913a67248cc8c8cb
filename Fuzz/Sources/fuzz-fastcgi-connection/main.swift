import Glibc
import Foundation
import FuzzDriver
import Logging
@testable import FastCGIServer

/// Whole FastCGI connections through the real event loop: the input is
/// what a web server sends on one connection (any records: several
/// requests, management records, a second request id, aborts, garbage,
/// STDIN in many records), written in up to four pieces, and the loop
/// serves it turn by turn, as its thread would. Properties:
/// - the process never dies;
/// - what comes back is well-formed records, and each END_REQUEST, STDOUT
///   and management answer answers something the input asked;
/// - each request is answered on its own: every answer names its request's
///   own `ID` param and body length (the responder echoes them);
/// - when the input is nothing but clean requests (the model below), every
///   one of them is answered, in order.
final class Echo: FastCGIResponder {
    func respond(to request: FastCGIRequest, with response: inout HTTPResponse) {
        let id = request.param("ID").map { String(decoding: $0, as: UTF8.self) } ?? "-"
        var length = -1
        if case .complete(let body) = request.readBody(limit: 1 << 20) { length = body.count }
        response.addHeader("Content-Type", "text/plain")
        response.body.append(contentsOf: "id=\(id) body=\(length)".utf8)
    }
}

let limits = RequestIntake.Limits(maxHeaderBytes: 2048, maxBodyBytes: 1024, maxAnswers: 16,
                                  values: ManagementValues(maxConnections: 8, maxRequests: 1))
// A server whose listen socket is never used: connections are socketpairs handed to its loop.
let listenSocket = try! ListenSocket.open(.unix(path: "/tmp/fuzz-fastcgi-connection-\(getpid()).sock", mode: 0o600))
listenSocket.removeSocketFile()
let core = try! FastCGIServer(socket: listenSocket, options: .init(eventLoops: 1, workers: 1, ioTimeout: 0.05,
                                                                maxHeaderBytes: limits.maxHeaderBytes, maxBodyBytes: limits.maxBodyBytes,
                                                                maxConnections: 8),
                                logger: Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() }) { Echo() }
let loop = try! EventLoop(index: 0, server: core, responder: Echo())

struct Record { let type: UInt8; let id: UInt16; let content: [UInt8]; let padding: Int }

/// Splits bytes into records; nil unless they are whole records to the last byte.
func records(_ bytes: [UInt8]) -> [Record]? {
    var out: [Record] = []
    var i = 0
    while i < bytes.count {
        guard bytes.count - i >= 8, bytes[i] == 1 else { return nil }
        let length = Int(bytes[i + 4]) << 8 | Int(bytes[i + 5])
        let end = i + 8 + length + Int(bytes[i + 6])
        guard end <= bytes.count else { return nil }
        out.append(Record(type: bytes[i + 1], id: UInt16(bytes[i + 2]) << 8 | UInt16(bytes[i + 3]),
                          content: Array(bytes[(i + 8)..<(i + 8 + length)]), padding: Int(bytes[i + 6])))
        i = end
    }
    return out
}

/// The plainest reading of a stream of clean requests (spec §3.3–§3.5,
/// §5.1–§5.3): BEGIN(RESPONDER), PARAMS with well-formed pairs, empty PARAMS,
/// STDIN, empty STDIN, all of one id, within the limits, each but the last
/// keeping the connection. Returns each request's (ID param, body length),
/// or nil when the input is anything else. A BEGIN_REQUEST or an empty
/// record with padding is not clean: libfcgi would read that padding as
/// records, and the responder refuses it still.
func cleanRequests(_ input: [Record]) -> [(String, Int)]? {
    guard !input.contains(where: { ($0.type == 1 || $0.content.isEmpty) && $0.padding != 0 }) else { return nil }
    var out: [(String, Int)] = []
    var i = 0
    while i < input.count {
        let begin = input[i]
        guard begin.type == 1, begin.id != 0, begin.content.count == 8, begin.content[0] == 0, begin.content[1] == 1 else { return nil }
        var params: [UInt8] = []
        var headerBytes = 16
        i += 1
        while i < input.count, input[i].type == 4, input[i].id == begin.id, !input[i].content.isEmpty {
            params += input[i].content
            headerBytes += 8 + input[i].content.count + input[i].padding
            i += 1
        }
        guard i < input.count, input[i].type == 4, input[i].id == begin.id else { return nil }
        headerBytes += 8 + input[i].padding + begin.padding
        i += 1
        var body = 0
        while i < input.count, input[i].type == 5, input[i].id == begin.id, !input[i].content.isEmpty {
            body += input[i].content.count
            i += 1
        }
        guard i < input.count, input[i].type == 5, input[i].id == begin.id else { return nil }
        i += 1
        guard headerBytes <= limits.maxHeaderBytes, body <= limits.maxBodyBytes, let pairs = decodePairs(params) else { return nil }
        let keep = begin.content[2] & 1 != 0
        guard keep || i == input.count else { return nil }
        out.append((pairs["ID"] ?? "-", body))
    }
    return out
}

func decodePairs(_ bytes: [UInt8]) -> [String: String]? {
    var i = 0
    func length() -> Int? {
        guard i < bytes.count else { return nil }
        if bytes[i] < 0x80 { i += 1; return Int(bytes[i - 1]) }
        guard i + 4 <= bytes.count else { return nil }
        defer { i += 4 }
        return Int(bytes[i] & 0x7F) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
    }
    var pairs: [String: String] = [:]
    while i < bytes.count {
        guard let name = length(), let value = length(), name + value <= limits.maxHeaderBytes,
              name + value <= bytes.count - i else { return nil }
        let key = String(decoding: bytes[i..<(i + name)], as: UTF8.self)
        if pairs[key] == nil { pairs[key] = String(decoding: bytes[(i + name)..<(i + name + value)], as: UTF8.self) }
        i += name + value
    }
    return pairs
}

func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size >= 1 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let pieces = Int(data[0] % 4) + 1

    var fds: [Int32] = [-1, -1]
    precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
    let (server, client) = (fds[0], fds[1])
    var big: Int32 = 1 << 20
    setsockopt(server, SOL_SOCKET, SO_SNDBUF, &big, socklen_t(MemoryLayout<Int32>.size))
    setsockopt(client, SOL_SOCKET, SO_RCVBUF, &big, socklen_t(MemoryLayout<Int32>.size))
    _ = fcntl(server, F_SETFL, fcntl(server, F_GETFL) | O_NONBLOCK)

    // The web server: the input in pieces (one send each), then the end of
    // input. All of it is written first, from this thread: a writer thread
    // made the runs depend on scheduling (a late thread looked like a
    // connection that never became readable), and an input of at most
    // 4 KiB fits in the socket's buffer.
    let step = max(1, (input.count + pieces - 1) / pieces)
    var offset = 0
    while offset < input.count {
        let end = min(input.count, offset + step)
        let wrote = input[offset..<end].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        precondition(wrote > 0, "the socket buffer holds the whole input")
        offset += wrote
    }
    shutdown(client, Int32(SHUT_WR))

    // The loop, turn by turn. Everything is sent, and then the end: the
    // loop must close the connection (after its answers), whatever came.
    loop.adopt(server, MonotonicClock.now())
    var turns = 0
    while loop.connectionCount > 0 {
        loop.turn(waitingAtMost: 0)
        turns += 1
        precondition(turns <= input.count / 8 + 8, "the loop does not get to the end of a connection it has whole")
    }
    var output: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        output += chunk[..<n]
    }
    close(client)

    guard let answers = records(output) else { preconditionFailure("the output is not whole records") }
    let asked = records(input) // nil for garbage; then only the shape is checked
    var stdout: [UInt16: [UInt8]] = [:]
    var answered: [String] = []
    for answer in answers {
        switch answer.type {
        case 6: stdout[answer.id, default: []] += answer.content
        case 3:
            precondition(answer.content.count == 8)
            if answer.content[4] == 0, let text = stdout.removeValue(forKey: answer.id) {
                let shown = String(decoding: text, as: UTF8.self)
                precondition(shown.hasPrefix("Status: 200 OK\r\n"), "an answer that is not the responder's")
                answered.append(String(shown[shown.range(of: "\r\n\r\n")!.upperBound...]))
            }
            if let asked { precondition(asked.contains { $0.type == 1 && $0.id == answer.id }, "END_REQUEST for a request never begun") }
        case 10:
            if let asked { precondition(asked.contains { $0.type == 9 && $0.id == 0 }, "GET_VALUES_RESULT never asked") }
        case 11:
            if let asked { precondition(asked.contains { $0.id == 0 && $0.type != 9 }, "UNKNOWN_TYPE for no management record") }
        default:
            preconditionFailure("record type \(answer.type) in the output")
        }
    }
    precondition(stdout.values.allSatisfy(\.isEmpty), "STDOUT without its END_REQUEST")
    if let asked, let clean = cleanRequests(asked) {
        precondition(answered == clean.map { "id=\($0.0) body=\($0.1)" }, "clean requests \(clean), answers \(answered)")
    }
    return 0
}

runFuzzer(fuzz)
