import FastCGIServer
@testable import MagicBellFCGIApp
import Testing

@Suite struct HTTPResponseTests {
    @Test func serializesStatusHeadersAndContentLength() {
        var response = HTTPResponse()
        response.setStatus(404)
        response.addHeader("Content-Type", "application/json")
        response.body = Array("{}".utf8)
        var wire: [UInt8] = []
        response.serialize(into: &wire)
        #expect(String(decoding: wire, as: UTF8.self) ==
            "Status: 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
    }

    /// RFC 9110 §9.3.2 and §8.6: the answer to HEAD is the head alone,
    /// without the length of a body it does not send.
    @Test func anAnswerToHEADHasNoBodyAndNoContentLength() {
        var response = HTTPResponse()
        response.setStatus(405)
        response.addHeader("Allow", "GET, POST")
        response.body = Array(#"{"error":{}}"#.utf8)
        response.omitBody()
        var wire: [UInt8] = []
        response.serialize(into: &wire)
        #expect(String(decoding: wire, as: UTF8.self) == "Status: 405 Method Not Allowed\r\nAllow: GET, POST\r\n\r\n")
        response.reset()
        response.serialize(into: &wire)
        #expect(String(decoding: wire, as: UTF8.self).hasSuffix("Content-Length: 0\r\n\r\n"), "reset forgets HEAD")
    }

    @Test func dynamicHeaderValuesCannotInjectLines() {
        var response = HTTPResponse()
        response.addHeader("X-Test", string: "a\r\nSet-Cookie: x=1\u{0}")
        var wire: [UInt8] = []
        response.serialize(into: &wire)
        #expect(String(decoding: wire, as: UTF8.self).contains("X-Test: aSet-Cookie: x=1\r\n"))
    }

    @Test func resetKeepsNothingOfThePreviousResponse() {
        var response = HTTPResponse()
        response.setStatus(500)
        response.addHeader("X-A", "1")
        response.body = [1, 2, 3]
        response.reset()
        var wire: [UInt8] = []
        response.serialize(into: &wire)
        #expect(String(decoding: wire, as: UTF8.self) == "Status: 200 OK\r\nContent-Length: 0\r\n\r\n")
    }

    @Test func tcpListenAddressesParse() {
        #expect(ListenAddress.parseTCP("127.0.0.1:9000") == .tcp(host: "127.0.0.1", port: 9000))
        #expect(ListenAddress.parseTCP("localhost:1") == .tcp(host: "localhost", port: 1))
        for bad in ["127.0.0.1", ":9000", "127.0.0.1:0", "127.0.0.1:65536", "::1:9000", "h:p"] {
            #expect(ListenAddress.parseTCP(bad) == nil, "\(bad)")
        }
    }
}

/// MagicBell's Retry-After is passed on only if it is what RFC 9110
/// §10.2.3 allows: a hostile value must not become a header of ours.
@Suite struct RetryAfterTests {
    @Test func onlyDelaySecondsOrAnHTTPDateIsPassedOn() {
        for good in ["0", "7", "120", "Fri, 31 Dec 1999 23:59:59 GMT"] {
            #expect(RetryAfter.checked(good) == good)
        }
        for bad in [nil, "", "-1", "12345678901", "7\r\nSet-Cookie: a=b", "<script>", "1.5", String(repeating: "A", count: 41), "über"] {
            #expect(RetryAfter.checked(bad) == nil, "\(String(describing: bad))")
        }
        #expect(RetryAfter.passedOn("7", status: 429) == "7" && RetryAfter.passedOn("7", status: 503) == "7")
        #expect(RetryAfter.passedOn("7", status: 500) == nil && RetryAfter.passedOn("7", status: 401) == nil)
    }
}
