import Foundation
import Glibc
import Testing
@testable import MagicBellAPI
import TestSupport

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

@Suite(.serialized) struct ClientTests {
    @Test func theSixOperationsAgainstTheFake() async throws {
        let fake = try FakeMagicBell()
        let client = JWTServiceClient(projectToken: fake.token, baseURL: fake.baseURL, timeout: 5)

        let project = try await client.createProjectJwt(CreateProjectTokenRequest(name: "ci", expiry: 60))
        #expect(!project.token.isEmpty && project.expiresAt != nil)
        let projects = try await client.fetchProjectTokens(Pagination(limit: 10))
        #expect(projects.data.map(\.id) == [project.tokenID])
        let discarded = try await client.discardProjectJwt(tokenID: project.tokenID)
        #expect(discarded.tokenID == project.tokenID)

        let user = try await client.createUserJwt(CreateUserTokenRequest(externalID: "u 1/2", name: "web"))
        let users = try await client.fetchUserTokens(userID: "u 1/2", Pagination(pageSize: 5))
        #expect(users.data.map(\.id) == [user.tokenID])
        _ = try await client.discardUserJwt(tokenID: user.tokenID)

        let seen = try fake.requests()
        #expect(seen.map { "\($0["method"]!) \($0["path"]!)" } == [
            "POST /v2/jwt/project", "GET /v2/jwt/project", "DELETE /v2/jwt/project/\(project.tokenID)",
            "POST /v2/jwt/user", "GET /v2/jwt/user/u%201%2F2", "DELETE /v2/jwt/user/\(user.tokenID)",
        ])
        #expect(seen.allSatisfy { $0["authorization"] as? String == "Bearer \(fake.token)" })
        #expect(seen[1]["query"] as? String == "limit=10")
        #expect(seen[4]["query"] as? String == "page%5Bsize%5D=5")
        #expect(seen[0]["content_type"] as? String == "application/json")
    }

    @Test func errorsCarryTheStatusAndRawBody() async throws {
        let fake = try FakeMagicBell()
        let client = JWTServiceClient(projectToken: "wrong", baseURL: fake.baseURL, timeout: 5)
        let error = await #expect(throws: MagicBellAPIError.self) { try await client.fetchProjectTokens() }
        guard case .http(let status, let body, _) = error else { Issue.record("\(String(describing: error))"); return }
        #expect(status == 401)
        #expect(String(decoding: body, as: UTF8.self).contains("Invalid project token"))
    }

    @Test func timeoutGarbageDropAndRedirect() throws {
        let fake = try FakeMagicBell()
        let client = JWTServiceClient(projectToken: fake.token, baseURL: fake.baseURL, timeout: 1)
        let list = APIRequest(operation: JwtService.fetchProjectTokens.operation)

        _ = try fake.control("misbehave", #"{"mode":"hang"}"#)
        let start = Date()
        #expect(throws: MagicBellAPIError.timeout(seconds: 1)) { try client.send(list) }
        #expect(Date().timeIntervalSince(start) < 2)

        _ = try fake.control("misbehave", #"{"mode":"garbage"}"#)
        let garbage = try client.send(list)
        #expect(garbage.status == 200 && garbage.body.starts(with: Array("<html>".utf8)))

        // A dropped kept connection: libcurl sends a list (a GET, idempotent)
        // again on a new connection; a POST, right after a successful call on
        // the same host, goes on a fresh connection, and its drop is an error,
        // never a second create. (A drop on a fresh connection is an error
        // for a GET too: CurlHTTPTests.)
        _ = try fake.control("misbehave", #"{"mode":"drop"}"#)
        #expect(try client.send(list).status == 200)
        _ = try fake.control("misbehave", #"{"mode":"drop"}"#)
        let create = APIRequest(operation: JwtService.createProjectJwt.operation, body: Array(#"{"name":"once"}"#.utf8))
        #expect(throws: MagicBellAPIError.self) { try client.send(create) }

        _ = try fake.control("misbehave", #"{"mode":"redirect"}"#)
        #expect(try client.send(list).status == 302) // not followed
        let seen = try fake.requests().map { "\($0["method"]!)" }
        #expect(seen == ["GET", "GET", "GET", "GET", "POST", "GET"], "the create exactly once")

        let refused = JWTServiceClient(projectToken: "t", baseURL: URL(string: "http://127.0.0.1:9/v2")!, timeout: 2)
        #expect(throws: MagicBellAPIError.unreachable(.unreachable(.refused))) { try refused.send(list) }
    }

    /// The fake is as strict as the published models (magicbell-jwt-openapi.json),
    /// so that a test passing against it means MagicBell would take what was sent.
    @Test func theFakeRefusesWhatThePublishedModelsRefuse() throws {
        let fake = try FakeMagicBell()
        let client = JWTServiceClient(projectToken: fake.token, baseURL: fake.baseURL, timeout: 5)
        let long = String(repeating: "x", count: 256)
        let refused: [(JwtOperation, String)] = [
            (JwtService.createProjectJwt.operation, "{}"), (JwtService.createProjectJwt.operation, #"{"expiry":60}"#),
            (JwtService.createProjectJwt.operation, #"{"name":"\#(long)"}"#), (JwtService.createProjectJwt.operation, #"{"name":7}"#),
            (JwtService.createProjectJwt.operation, #"{"name":"a","expiry":1.5}"#), (JwtService.createProjectJwt.operation, #"{"name":"a","expiry":0}"#),
            (JwtService.createProjectJwt.operation, #"{"name":"a","expiry":true}"#), (JwtService.createUserJwt.operation, #"{"external_id":"u","expiry":"60"}"#),
            (JwtService.createUserJwt.operation, #"{"email":"\#(long)"}"#), (JwtService.createUserJwt.operation, #"{"external_id":"u","name":"\#(long)"}"#),
        ]
        for (operation, body) in refused {
            #expect(try client.send(APIRequest(operation: operation, body: Array(body.utf8))).status == 422, "\(body)")
        }
        let accepted: [(JwtOperation, String)] = [
            (JwtService.createProjectJwt.operation, #"{"name":"\#(String(long.dropLast()))","expiry":3600.0}"#),
            (JwtService.createUserJwt.operation, #"{"external_id":"u"}"#), (JwtService.createUserJwt.operation, #"{"email":"e@example.com","name":null,"expiry":null}"#),
        ]
        for (operation, body) in accepted {
            #expect(try client.send(APIRequest(operation: operation, body: Array(body.utf8))).status == 201, "\(body)")
        }
    }

    @Test func typedCallsCheckTheAnswerAgainstTheModel() throws {
        let fake = try FakeMagicBell()
        let client = JWTServiceClient(projectToken: fake.token, baseURL: fake.baseURL, timeout: 2)
        let created = try client.perform(JwtService.createProjectJwt.call(body: CreateProjectTokenRequest(name: "typed")))
        #expect(created.status == 201 && created.value.tokenID.count > 0)
        #expect(try JSONDecoder().decode(CreatedToken.self, from: Data(created.body)) == created.value, "the bytes as sent")

        _ = try fake.control("misbehave", #"{"mode":"garbage"}"#)
        let garbage = #expect(throws: MagicBellAPIError.self) { try client.perform(JwtService.fetchProjectTokens.call()) }
        guard case .undecodable(200, let body) = garbage else { Issue.record("\(String(describing: garbage))"); return }
        #expect(body.starts(with: Array("<html>".utf8)), "the bytes are kept")
        _ = try fake.control("misbehave", #"{"mode":"redirect"}"#)
        #expect(throws: MagicBellAPIError.invalidResponse(.status(302))) { try client.perform(JwtService.fetchProjectTokens.call()) }
        let wrong = JWTServiceClient(projectToken: "wrong", baseURL: fake.baseURL, timeout: 2)
        do {
            _ = try wrong.perform(JwtService.discardUserJwt.call(pathValue: "x"))
            Issue.record("expected an error")
        } catch {
            guard case .http(401, _, _) = error else { Issue.record("\(error)"); return }
        }
    }

    @Test func theAsyncSurfaceHasTheSameDeadlineAndStopsWhenCancelledBeforeItSends() async throws {
        let fake = try FakeMagicBell()
        let client = JWTServiceClient(projectToken: fake.token, baseURL: fake.baseURL, timeout: 1)
        _ = try fake.control("misbehave", #"{"mode":"hang"}"#)
        var start = Date()
        await #expect(throws: MagicBellAPIError.timeout(seconds: 1)) { try await client.fetchProjectTokens() }
        // The fake never answers: ending at all proves the deadline. The bound only catches a deadline
        // in the wrong unit; it is loose because the awaiting task resumes on the cooperative pool (two
        // threads on a 2-core machine), which other suites' blocking tests hold for seconds under ASan
        // (CI measured 5.15 s here).
        #expect(Date().timeIntervalSince(start) < 15)

        // Cancelled before the request is out (here: connecting to a port that never answers): at once.
        let (dead, keep) = try Blackhole.listener()
        defer { keep.forEach { close($0) } }
        let unreachable = JWTServiceClient(projectToken: fake.token, baseURL: URL(string: "http://127.0.0.1:\(dead)/v2")!, timeout: 30)
        start = Date()
        let connecting = Task { try await unreachable.fetchProjectTokens() }
        try await Task.sleep(for: .milliseconds(300))
        connecting.cancel()
        await #expect(throws: MagicBellAPIError.cancelled) { try await connecting.value }
        #expect(Date().timeIntervalSince(start) < 15, "cancelled, not timed out at 30 s")

        // Cancelled after the request is out: MagicBell may have acted on it (a create's token is
        // only in the answer), so the answer is waited for and returned.
        let slow = JWTServiceClient(projectToken: fake.token, baseURL: fake.baseURL, timeout: 30)
        try fake.misbehave("slow", seconds: 1)
        start = Date()
        let creating = Task { try await slow.createProjectJwt(CreateProjectTokenRequest(name: "kept")) }
        // Cancelled once the fake has the request (a fixed delay raced a busy CI machine, where the
        // request was not out yet and the call was, rightly, cancelled before it was sent).
        let sentBy = Date().addingTimeInterval(10)
        while try !fake.requests().contains(where: { $0["method"] as? String == "POST" }) && Date() < sentBy {
            try await Task.sleep(for: .milliseconds(20))
        }
        creating.cancel()
        let created = try await creating.value
        #expect(!created.tokenID.isEmpty && Date().timeIntervalSince(start) >= 0.9)

        // A task already cancelled sends nothing: a create must not reach MagicBell for a caller that has gone.
        try fake.control("reset", "{}")
        let gone = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await slow.createProjectJwt(CreateProjectTokenRequest(name: "never"))
        }
        await #expect(throws: MagicBellAPIError.cancelled) { try await gone.value }
        #expect(try fake.requests().isEmpty)
    }
}
