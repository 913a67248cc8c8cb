import FastCGIServer
import TestSupport
import Testing

/// The header-block check that stands between the socket and libfcgi.
struct FastCGIPreflightTests {
    typealias F = FastCGIClient

    func check(_ bytes: [UInt8], limit: Int = FastCGIPreflight.defaultLimit) -> FastCGIPreflight.Verdict {
        bytes.withUnsafeBytes { FastCGIPreflight.check($0, limit: limit) }
    }

    static let pairs = F.encodeParams([
        ("REQUEST_METHOD", "GET"), ("DOCUMENT_URI", "/magicbell-token"), ("MAGICBELL_ROUTE", "token"),
        ("HTTP_COOKIE", String(repeating: "c", count: 300)), // four-byte value length
    ])

    /// nginx's shape, with the pairs split mid-length across two records
    /// and a padded record.
    static let valid: [UInt8] = {
        let split = 15 // inside the second pair's header
        var padded = F.record(F.params, Array(pairs[split...]))
        padded[6] = 3 // padding length
        padded += [0, 0, 0]
        return F.begin() + F.record(F.params, Array(pairs[..<split])) + padded + F.record(F.params, [])
    }()

    @Test func aWellFormedHeaderBlockIsReadyAndEveryPrefixIncomplete() {
        #expect(check(Self.valid) == .ready)
        #expect(check(Self.valid + F.record(F.stdin, [1, 2, 3])) == .ready) // the body may follow
        for end in 0..<Self.valid.count {
            #expect(check(Array(Self.valid[..<end])) == .incomplete, "prefix of \(end) bytes")
        }
    }

    @Test func eachHeaderFieldIsChecked() {
        var wrongVersion = Self.valid
        wrongVersion[0] = 2
        #expect(check(wrongVersion) == .invalid("FastCGI version 2, not 1"))

        let filter = F.record(F.beginRequest, [0, 3, 0, 0, 0, 0, 0, 0])
        #expect(check(filter) == .invalid("FastCGI role 3, not RESPONDER"))
        #expect(check(F.record(F.beginRequest, id: 0, [0, 1, 0, 0, 0, 0, 0, 0])) == .invalid("malformed BEGIN_REQUEST"))
        #expect(check(F.record(F.beginRequest, [0, 1, 0, 0])) == .invalid("malformed BEGIN_REQUEST"))

        // FCGI_GET_VALUES carries name-value pairs that libfcgi parses the same unchecked way.
        #expect(check(F.record(9, id: 0, F.encodeParams([("FCGI_MPXS_CONNS", "")]))) == .invalid("record type 9 where BEGIN_REQUEST belongs"))
        #expect(check(F.record(42, [])) == .invalid("record type 42 where BEGIN_REQUEST belongs"))
        #expect(check(F.begin() + F.record(F.stdin, [])) == .invalid("record type 5 before the params ended"))
        #expect(check(F.begin() + F.record(F.params, id: 2, [])) == .invalid("params for request 2 inside request 1"))
    }

    @Test func lengthsThatWouldOverflowLibfcgiAreRefused() {
        // The request that aborted the process before this check existed.
        let huge: [UInt8] = [0xFF, 0xFF, 0xFF, 0xF0, 0xFF, 0xFF, 0xFF, 0xF0] + [UInt8](repeating: 65, count: 100)
        #expect(check(F.begin() + F.record(F.params, huge)) == .invalid("a param of 2147483632 + 2147483632 bytes, over 131072"))
        // The same lengths split byte by byte across records.
        var oneByteRecords = F.begin()
        for byte in huge.prefix(8) { oneByteRecords += F.record(F.params, [byte]) }
        #expect(check(oneByteRecords) == .invalid("a param of 2147483632 + 2147483632 bytes, over 131072"))
        // A pair must fit in the limit even when it is not all there yet.
        #expect(check(F.begin() + F.record(F.params, [0x80, 0, 0x10, 0, 1]), limit: 4096) == .invalid("a param of 4096 + 1 bytes, over 4096"))
    }

    @Test func theBlockMustEndInsideTheLimitAndAtAPairBoundary() {
        #expect(check(Self.valid, limit: Self.valid.count) == .ready)
        #expect(check(Self.valid, limit: Self.valid.count - 1) == .invalid("header block over \(Self.valid.count - 1) bytes"))
        #expect(check(F.begin() + F.record(F.params, [5]) + F.record(F.params, [])) == .invalid("params end inside a name-value pair"))
        #expect(check(F.begin() + F.record(F.params, [1, 1, 65]) + F.record(F.params, [])) == .invalid("params end inside a name-value pair"))
        #expect(check(F.begin() + F.record(F.params, [0x81, 0]) + F.record(F.params, [])) == .invalid("params end inside a name-value pair"))
        #expect(check(F.begin() + F.record(F.params, [0, 0]) + F.record(F.params, [])) == .ready)
    }
}
