@testable import FastCGIServer
import TestSupport
import Testing

/// The record check every byte of a connection goes through
/// (`RequestIntake`), alone and as a connection takes records (`Connection`).
struct RequestIntakeTests {
    typealias F = FastCGIClient

    enum Verdict: Equatable { case ready, incomplete, invalid(String) }

    /// Takes `bytes` as a connection does: `.ready` once a request is whole.
    func check(_ bytes: [UInt8], limit: Int = FastCGIServer.defaultMaxHeaderBytes) -> Verdict {
        let connection = Connection(limits: RequestIntake.Limits(maxHeaderBytes: limit, maxBodyBytes: 1 << 20,
                                                                 values: ManagementValues(maxConnections: 1, maxRequests: 1)))
        return bytes.withUnsafeBytes { raw in
            var offset = 0
            while true {
                switch connection.take(raw, from: &offset, now: 0, ioTimeout: 10) {
                case .request: return .ready
                case .needMore, .close: return .incomplete
                case .invalid(let reason): return .invalid(reason.description)
                case .refused, .aborted: continue
                }
            }
        }
    }

    static let limits = RequestIntake.Limits(maxHeaderBytes: 4096, maxBodyBytes: 100,
                                             values: ManagementValues(maxConnections: 64, maxRequests: 4))

    /// Feeds whole records to an intake; returns each record's action.
    static func take(_ bytes: [UInt8], _ intake: inout RequestIntake) -> [RequestIntake.Action] {
        var actions: [RequestIntake.Action] = []
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset + 8 <= raw.count {
                let header = RecordHeader(UnsafeRawBufferPointer(rebasing: raw[offset...]))
                let content = UnsafeRawBufferPointer(rebasing: raw[(offset + 8)..<(offset + 8 + header.contentLength)])
                actions.append(intake.take(header, content))
                offset += header.recordLength
            }
        }
        return actions
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

    @Test func aRequestIsReadyOnceItsLastRecordIsWholeWhateverSurroundsIt() {
        let request = Self.valid + F.record(F.stdin, [1, 2, 3]) + F.record(F.stdin, [])
        #expect(check(request) == .ready)
        #expect(check(Self.valid + F.record(F.stdin, [])) == .ready)
        for end in 0..<request.count {
            #expect(check(Array(request[..<end])) == .incomplete, "prefix of \(end) bytes")
        }
        // Management records before or inside the request are answered on the way.
        #expect(check(F.record(F.getValues, id: 0, []) + request) == .ready)
        #expect(check(Self.valid + F.record(F.getValues, id: 0, []) + F.record(F.stdin, [])) == .ready)
        // A second request id while one is open is refused on the way; an abort ends the open one.
        #expect(check(Self.valid + F.begin(id: 2) + F.record(F.stdin, [])) == .ready)
        #expect(check(Self.valid + F.record(F.abortRequest, []) + F.record(F.stdin, [])) == .incomplete)
    }

    @Test func eachHeaderFieldIsChecked() {
        var wrongVersion = Self.valid
        wrongVersion[0] = 2
        #expect(check(wrongVersion) == .invalid("FastCGI version 2, not 1"))
        #expect(check(F.record(F.beginRequest, [0, 1, 0, 0])) == .invalid("malformed BEGIN_REQUEST"))
        #expect(check(F.record(42, [])) == .invalid("record type 42 for request 1, which was never begun"))
        #expect(check(F.begin() + F.record(F.stdin, [])) == .invalid("record type 5 inside request 1"))
        #expect(check(F.begin() + F.record(F.params, id: 2, [])) == .invalid("record type 4 for request 2, which was never begun"))
        #expect(check(F.begin() + F.begin()) == .invalid("request 1 begun twice"))
        #expect(check(Self.valid + F.record(F.params, [])) == .invalid("record type 4 inside request 1"))
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
        let request = Self.valid + F.record(F.stdin, [])
        #expect(check(request, limit: Self.valid.count) == .ready)
        #expect(check(request, limit: Self.valid.count - 1) == .invalid("header block over \(Self.valid.count - 1) bytes"))
        #expect(check(F.begin() + F.record(F.params, [5]) + F.record(F.params, [])) == .invalid("params end inside a name-value pair"))
        #expect(check(F.begin() + F.record(F.params, [1, 1, 65]) + F.record(F.params, [])) == .invalid("params end inside a name-value pair"))
        #expect(check(F.begin() + F.record(F.params, [0x81, 0]) + F.record(F.params, [])) == .invalid("params end inside a name-value pair"))
        #expect(check(F.begin() + F.record(F.params, [0, 0]) + F.record(F.params, []) + F.record(F.stdin, [])) == .ready)
    }

    @Test func getValuesIsAnsweredWithEachKnownVariableOnceInTheOrderAsked() {
        var intake = RequestIntake(limits: Self.limits)
        let asked = F.encodeParams([("FCGI_MAX_REQS", ""), ("FCGI_MAX_CONNS", ""), ("NOPE", ""), ("FCGI_MAX_REQS", "x"),
                                    ("FCGI_MPXS_CONNS", "")] + Array(repeating: ("FCGI_MAX_CONNS", ""), count: 50))
        let actions = Self.take(F.record(F.getValues, id: 0, asked), &intake)
        guard case .reply(let reply, nil) = actions.first else { Issue.record("\(actions)"); return }
        let content = Array(reply[8..<(8 + (Int(reply[4]) << 8 | Int(reply[5])))])
        #expect(F.decodeParams(content).map { "\($0.0)=\($0.1)" } == ["FCGI_MAX_REQS=4", "FCGI_MAX_CONNS=64", "FCGI_MPXS_CONNS=0"])
        #expect(Array(reply[0..<4]) == [1, F.getValuesResult, 0, 0])
        #expect(reply.count % 8 == 0, "padded to 8 bytes")
        #expect(intake.isIdle)
        // A malformed list ends at its first bad pair; the record is still answered.
        let cut = Self.take(F.record(F.getValues, id: 0, F.encodeParams([("FCGI_MPXS_CONNS", "")]) + [0x80, 0]), &intake)
        guard case .reply(let partial, nil) = cut.first else { Issue.record("\(cut)"); return }
        #expect(F.decodeParams(Array(partial[8..<(8 + Int(partial[5]))])).map(\.0) == ["FCGI_MPXS_CONNS"])
    }

    @Test func answersAreBoundedPerIntakeWhateverTheMix() {
        var intake = RequestIntake(limits: Self.limits)
        let actions = Self.take((0..<65).flatMap { _ in F.record(7, id: 0, []) }, &intake)
        #expect(actions.dropLast().allSatisfy { $0 == .reply(ManagementValues.unknownType(7), warning: nil) })
        #expect(actions.last == .invalid(.answersOver(64)))
        // Aborts and refusals count too, and an abort does not refill the budget.
        var looping = RequestIntake(limits: Self.limits)
        let loop = Self.take((0..<65).flatMap { _ in F.begin(keepConnection: true) + F.record(F.abortRequest, []) }, &looping)
        #expect(loop.last == .invalid(.answersOver(64)))
        #expect(loop.filter { if case .aborted = $0 { return true } else { return false } }.count == 64)
        var roles = RequestIntake(limits: Self.limits)
        let refused = Self.take((0..<65).flatMap { _ in F.record(F.beginRequest, [0, 2, 1, 0, 0, 0, 0, 0]) }, &roles)
        #expect(refused.last == .invalid(.answersOver(64)))
    }

    @Test func paddingThatLibfcgiWouldReadAsRecordsIsRefused() {
        // libfcgi does not skip the padding of BEGIN_REQUEST or of an empty
        // record: a GET_VALUES hidden there would reach its stack overflow.
        let hidden = F.record(F.getValues, id: 0, F.encodeParams(Array(repeating: ("FCGI_MAX_CONNS", ""), count: 8)))
        var paddedBegin = F.begin()
        paddedBegin[6] = UInt8(hidden.count)
        let viaBegin = paddedBegin + hidden + F.record(F.params, []) + F.record(F.stdin, [])
        #expect(check(viaBegin) == .invalid("padding on a BEGIN_REQUEST or an empty record"))
        var paddedEnd = F.record(F.params, [])
        paddedEnd[6] = UInt8(hidden.count)
        #expect(check(F.begin() + paddedEnd + hidden + F.record(F.stdin, [])) == .invalid("padding on a BEGIN_REQUEST or an empty record"))
        // Padding after content is libfcgi's ordinary case, and allowed.
        #expect(check(Self.valid + F.record(F.stdin, [])) == .ready)
    }

    @Test func aSecondRequestIsRefusedAndItsRecordsSkippedAnAbortEndsTheOpenOne() {
        var intake = RequestIntake(limits: Self.limits)
        let actions = Self.take(F.begin(keepConnection: true) + F.begin(id: 2) + F.record(F.params, id: 2, [1, 1, 65, 66])
                                + F.record(F.params, []) + F.record(F.stdin, [9]) + F.record(F.abortRequest, []), &intake)
        #expect(actions == [.request, .reply(ManagementValues.endRequest(2, FCGI.cantMultiplex), warning: nil), .skip,
                            .request, .request, .aborted(ManagementValues.endRequest(1, FCGI.requestComplete))])
        #expect(intake.isIdle && intake.keepConnection)
        // Over: what was still in flight for it, and a late abort, are skipped; the next request starts clean.
        #expect(Self.take(F.record(F.stdin, [1]) + F.record(F.abortRequest, []) + F.begin() + F.record(F.params, [])
                          + F.record(F.stdin, []), &intake) == [.skip, .skip, .request, .request, .request])
        #expect(intake.isComplete)
    }

    @Test func anUnknownRoleIsEndedAsTheSpecSaysAndTheBodyIsBounded() {
        var intake = RequestIntake(limits: Self.limits)
        let actions = Self.take(F.record(F.beginRequest, [0, 2, 0, 0, 0, 0, 0, 0]), &intake)
        #expect(actions == [.reply(ManagementValues.endRequest(1, FCGI.unknownRole), warning: .unsupportedRole(2))])
        var body = RequestIntake(limits: Self.limits)
        #expect(Self.take(F.begin() + F.record(F.params, []) + F.record(F.stdin, Array(repeating: 1, count: 100))
                          + F.record(F.stdin, [1]), &body).last == .invalid(.bodyOver(100)))
    }

    /// Issue 19 §2: a request answered before its body ended. Its id is
    /// inactive (§3.3): the rest of its STDIN is dropped, within the body
    /// limit, and its end, an ABORT_REQUEST or the next BEGIN_REQUEST ends it.
    @Test func anAnsweredRequestsBodyIsDroppedWithinTheLimitUntilItEnds() {
        var intake = RequestIntake(limits: Self.limits)
        _ = Self.take(Self.valid + F.record(F.stdin, [1, 2]), &intake)
        #expect(intake.phase == .stdin)
        intake.answered()
        #expect(Self.take(F.record(F.stdin, Array(repeating: 7, count: 50)), &intake) == [.skip])
        #expect(Self.take(F.record(F.getValues, id: 0, []), &intake).count == 1, "management records are still answered")
        #expect(Self.take(F.record(F.stdin, []), &intake) == [.skip])
        #expect(intake.isIdle)

        // Over the body limit (100 bytes here), answered or not.
        var over = RequestIntake(limits: Self.limits)
        _ = Self.take(Self.valid + F.record(F.stdin, Array(repeating: 1, count: 60)), &over)
        over.answered()
        #expect(Self.take(F.record(F.stdin, Array(repeating: 1, count: 41)), &over).first.map {
            if case .invalid = $0 { return true } else { return false }
        } == true)

        // A web server that gives up the body: ABORT_REQUEST, or the next request at once.
        var aborted = RequestIntake(limits: Self.limits)
        _ = Self.take(Self.valid, &aborted)
        aborted.answered()
        #expect(Self.take(F.record(F.abortRequest, []), &aborted) == [.skip])
        #expect(aborted.isIdle)
        var next = RequestIntake(limits: Self.limits)
        _ = Self.take(Self.valid, &next)
        next.answered()
        #expect(Self.take(Self.valid + F.record(F.stdin, []), &next).allSatisfy { $0 == .request })
        #expect(next.isComplete)
    }
}
