import Testing
@testable import OneShotHTTP

/// The response parser over hostile bytes (RFC 9112), fed whole and one
/// byte at a time: both must give the same answer or the same refusal.
@Suite struct ParserTests {
    /// Parses `text` (CRLF written as \r\n) fed in `pieces` of that size; EOF after.
    static func parse(_ text: String, limit: Int = 1 << 20, piece: Int? = nil) -> Result<HTTPResponseMessage, ExchangeFailure> {
        var parser = ResponseParser(bodyLimit: limit)
        let bytes = Array(text.utf8)
        do throws(ExchangeFailure) {
            var index = 0
            while index < bytes.count {
                let end = min(bytes.count, index + (piece ?? bytes.count))
                try parser.feed(bytes[index..<end])
                index = end
                if let response = parser.response { return .success(response) }
            }
            try parser.finish()
            guard let response = parser.response else { return .failure(.dropped("no answer")) }
            return .success(response)
        } catch {
            return .failure(error)
        }
    }

    /// The same result whole and byte by byte.
    static func both(_ text: String, limit: Int = 1 << 20) -> Result<HTTPResponseMessage, ExchangeFailure> {
        let whole = parse(text, limit: limit)
        #expect(parse(text, limit: limit, piece: 1) == whole, "byte by byte differs")
        return whole
    }

    static func body(_ result: Result<HTTPResponseMessage, ExchangeFailure>) -> String? {
        guard case .success(let response) = result else { return nil }
        return String(decoding: response.body, as: UTF8.self)
    }

    @Test func contentLengthChunkedAndClose() throws {
        let fixed = try Self.both("HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}").get()
        #expect(fixed.status == 201 && fixed.field("content-type") == "application/json")
        #expect(String(decoding: fixed.body, as: UTF8.self) == "{\"a\":1}")

        let chunked = Self.both("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"a\"\r\n9\r\n:1234567}\r\n0\r\nX-Trailer: t\r\n\r\n")
        #expect(Self.body(chunked) == "{\"a\":1234567}")

        // No length, no coding: the body runs to the close (§6.3 item 8).
        #expect(Self.body(Self.both("HTTP/1.1 200 OK\r\n\r\nto the end")) == "to the end")
        // Bare LF line endings (§2.2), a missing reason phrase, and bytes after the answer are ignored.
        #expect(Self.body(Self.both("HTTP/1.1 200\nContent-Length: 2\n\nokEXTRA")) == "ok")
        #expect(try Self.both("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n").get().body.isEmpty)
    }

    @Test func interimAnswersAreSkipped() throws {
        let answer = try Self.both("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").get()
        #expect(answer.status == 200 && answer.field("link") == nil)
        let many = String(repeating: "HTTP/1.1 100 Continue\r\n\r\n", count: 9) + "HTTP/1.1 200 OK\r\n\r\n"
        #expect(Self.both(many) == .failure(.malformed("more than 8 interim answers")))
        #expect(Self.both("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n") == .failure(.malformed("an unrequested protocol switch (101)")))
    }

    @Test func fieldsAreCheckedAndFolded() throws {
        let folded = try Self.both("HTTP/1.1 200 OK\r\nX-A: one\r\n  two\r\nRetry-After:  120 \r\nContent-Length: 0\r\n\r\n").get()
        #expect(folded.field("X-A") == "one two" && folded.field("retry-after") == "120")
        for bad in ["X-A : 1", "X A: 1", ": 1", "X-A: a\u{0}b", "X-A: a\rb", "NoColon"] {
            #expect(Self.both("HTTP/1.1 200 OK\r\n\(bad)\r\nContent-Length: 0\r\n\r\n").isFailure, "\(bad.debugDescription)")
        }
        #expect(Self.both("HTTP/1.1 200 OK\r\n folded-first: 1\r\n\r\n").isFailure)
    }

    @Test func framingErrorsAreUnrecoverable() {
        let refused = [
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",   // §6.3 item 5
            "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
            "HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",  // no coding was asked for
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n",
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",       // §6.1
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZ\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", // a chunk longer than its size
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
            "HTTP/2 200\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 099 X\r\n\r\n", "ICY 200 OK\r\n\r\n", "HTTP/1.1 200OK\r\n\r\n",
        ]
        for text in refused {
            guard case .failure(.malformed) = Self.both(text) else {
                Issue.record("accepted: \(text.debugDescription)")
                continue
            }
        }
        // Both Content-Length and chunked: the coding wins (§6.3 item 3).
        #expect(Self.body(Self.both("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")) == "ok")
        // The same length twice, as one list or two fields, is one length (§8.6).
        #expect(Self.body(Self.both("HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\ncontent-length: 2\r\n\r\nok")) == "ok")
    }

    @Test func cutShortIsDroppedNotAnswered() {
        #expect(Self.both("") == .failure(.dropped("the connection closed before an answer")))
        for text in ["HTTP/1.1 200 OK\r\nContent-Le", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
                     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"] {
            #expect(Self.both(text) == .failure(.dropped("the connection closed in the middle of the answer")), "\(text.debugDescription)")
        }
    }

    /// A line that arrives a byte at a time is searched once, not once per
    /// byte: 60 KB of header fed in 60,000 pieces must not cost 1.8 billion
    /// comparisons (it cost 1.5 s of CPU per line before the bound).
    @Test func aTrickledLineIsSearchedInLinearTime() throws {
        let text = "HTTP/1.1 200 OK\r\nX-Long: " + String(repeating: "a", count: 60_000) + "\r\nContent-Length: 0\r\n\r\n"
        var parser = ResponseParser(bodyLimit: 1024)
        for byte in text.utf8 { try parser.feed(CollectionOfOne(byte)) }
        #expect(parser.response?.field("x-long")?.count == 60_000)
        #expect(parser.bytesSearched <= text.utf8.count, "\(parser.bytesSearched) bytes searched for \(text.utf8.count)")
    }

    @Test func everythingIsBounded() {
        // The body: refused by its Content-Length before it arrives, by its chunks, or as it runs to the close.
        #expect(Self.both("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", limit: 10) == .failure(.tooLarge(limit: 10)))
        #expect(Self.body(Self.both("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", limit: 10)) == "0123456789")
        #expect(Self.both("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n", limit: 10) == .failure(.tooLarge(limit: 10)))
        #expect(Self.both("HTTP/1.1 200 OK\r\n\r\n" + String(repeating: "x", count: 11), limit: 10) == .failure(.tooLarge(limit: 10)))
        // The header section, its field count, and a line that never ends.
        let big = "HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: ResponseParser.maxHeadBytes) + "\r\n\r\n"
        #expect(Self.parse(big) == .failure(.malformed("the header section is larger than \(ResponseParser.maxHeadBytes) bytes")))
        let endless = "HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: 2 * ResponseParser.maxHeadBytes)
        #expect(Self.parse(endless, piece: 4096) == .failure(.malformed("the header section is larger than \(ResponseParser.maxHeadBytes) bytes")))
        let fields = (0...ResponseParser.maxFields).map { "X-\($0): v\r\n" }.joined()
        #expect(Self.parse("HTTP/1.1 200 OK\r\n\(fields)\r\n") == .failure(.malformed("more than \(ResponseParser.maxFields) header fields")))
        let trailers = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + String(repeating: "T: " + String(repeating: "t", count: 1000) + "\r\n", count: 70)
        #expect(Self.parse(trailers) == .failure(.malformed("the trailer section is too large")))
    }
}

extension Result {
    var isFailure: Bool { if case .failure = self { true } else { false } }
}
