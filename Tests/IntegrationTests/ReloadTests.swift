import Glibc
import Foundation
import MagicBellJWT
import Testing
import TestSupport

/// SIGHUP re-reads the configuration (rotated secret and project token
/// files) and swaps it in without failing a request.
@Suite(.serialized) struct ReloadTests {
    static func environment(secretFile: String, _ extra: [String: String] = [:]) -> [String: String] {
        var env = Responder.environment(extra)
        env["MAGICBELL_SECRET_KEY"] = nil
        env["MAGICBELL_SECRET_KEY_FILE"] = secretFile
        return env
    }

    /// Replaces a file the way a secrets manager does: write, then rename.
    static func rotate(_ path: String, to contents: String) throws {
        try contents.write(toFile: path + ".new", atomically: false, encoding: .utf8)
        guard rename(path + ".new", path) == 0 else { throw Sockets.Failure(description: "rename failed") }
    }

    static func token(_ response: HTTPResponse) -> String? { response.json?["token"] as? String }

    static func verifies(_ token: String, with secret: String) -> Bool {
        (try? TokenVerifier(secret: SecretKey(Array(secret.utf8))).verify(token, now: Int(Date().timeIntervalSince1970))) != nil
    }

    @Test func aRotatedSecretIsTakenUpUnderLoadWithoutAFailedRequest() throws {
        let scratch = try Scratch()
        let secretFile = scratch.file("secret")
        let (oldSecret, newSecret) = (Canary.secret("old-secret"), Canary.secret("new-secret"))
        try Self.rotate(secretFile, to: oldSecret + "\n")
        let socket = scratch.file("fcgi.sock")
        let responder = try Responder(scratch: scratch, arguments: ["serve", "--socket", socket, "--workers", "4"],
                                      environment: Self.environment(secretFile: secretFile))
        let nginx = try Nginx(scratch: scratch, authVariant: .file("basic.conf"), upstream: "unix:\(socket)")

        // Steady load from four clients for the whole test.
        let load = LoadCounter()
        let done = DispatchGroup()
        let port = nginx.port
        for _ in 0..<4 {
            done.enter()
            Thread {
                while !load.stopped {
                    let status = (try? HTTP.request(port: port, "GET", "/magicbell-token", headers: [HTTP.basic("demo", "demo")]))?.status ?? 0
                    load.record(status)
                }
                done.leave()
            }.start()
        }
        #expect(Sockets.waitUntil { load.total > 50 })
        let before = try #require(Self.token(try nginx.get("/magicbell-token", headers: [HTTP.basic("demo", "demo")])))
        #expect(Self.verifies(before, with: oldSecret))

        try Self.rotate(secretFile, to: newSecret + "\n")
        responder.child.signal(SIGHUP)
        #expect(Sockets.waitUntil { responder.child.stderr.contains("configuration reloaded") })
        let reloadedAt = load.total
        #expect(Sockets.waitUntil { load.total > reloadedAt + 50 }, "load continues after the reload")

        for _ in 0..<20 {
            let token = try #require(Self.token(try nginx.get("/magicbell-token", headers: [HTTP.basic("demo", "demo")])))
            #expect(Self.verifies(token, with: newSecret))
            #expect(!Self.verifies(token, with: oldSecret))
        }
        load.stop()
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(load.failures == 0, "\(load.failures) of \(load.total) requests failed")
        #expect(load.total > 100)
        #expect(responder.child.isRunning)
    }

    @Test func anInvalidNewConfigurationIsRefusedAndTheOldOneStays() throws {
        let scratch = try Scratch()
        let secretFile = scratch.file("secret")
        let secret = Canary.secret("kept-secret")
        try Self.rotate(secretFile, to: secret)
        let socket = scratch.file("fcgi.sock")
        let responder = try Responder(scratch: scratch, arguments: ["serve", "--socket", socket, "--workers", "2"],
                                      environment: Self.environment(secretFile: secretFile))
        let nginx = try Nginx(scratch: scratch, authVariant: .file("basic.conf"), upstream: "unix:\(socket)")

        try Self.rotate(secretFile, to: "\n") // empty: invalid
        responder.child.signal(SIGHUP)
        #expect(Sockets.waitUntil { responder.child.stderr.contains("configuration reload refused") })
        #expect(responder.child.stderr.contains("MAGICBELL_SECRET_KEY_FILE"))
        let token = try #require(Self.token(try nginx.get("/magicbell-token", headers: [HTTP.basic("demo", "demo")])))
        #expect(Self.verifies(token, with: secret))
        #expect(!responder.child.stderr.contains(secret))
    }

    @Test func aRotatedProjectTokenIsUsedForTheNextAdminCall() throws {
        let scratch = try Scratch()
        let fake = try FakeMagicBell()
        let tokenFile = scratch.file("project-token")
        try Self.rotate(tokenFile, to: Canary.secret("pt_expired") + "\n")
        let socket = scratch.file("fcgi.sock")
        let env = Responder.environment(["MAGICBELL_PROJECT_TOKEN_FILE": tokenFile, "MAGICBELL_API_URL": fake.baseURL.absoluteString])
        let responder = try Responder(scratch: scratch, arguments: ["serve", "--socket", socket, "--workers", "4"], environment: env)
        let nginx = try Nginx(scratch: scratch, authVariant: .file("basic.conf"), upstream: "unix:\(socket)",
                              serverExtra: "include snippets/magicbell-admin.conf;")
        #expect(try nginx.admin("GET", "jwt/project").status == 401) // MagicBell refuses the old token

        try Self.rotate(tokenFile, to: fake.token + "\n")
        responder.child.signal(SIGHUP)
        #expect(Sockets.waitUntil { responder.child.stderr.contains("configuration reloaded") })
        #expect(try nginx.admin("GET", "jwt/project").status == 200)
        #expect(try fake.requests().last?["authorization"] as? String == "Bearer \(fake.token)")
        #expect(!responder.child.stderr.contains(fake.token))
    }
}

/// Request outcomes counted from several threads.
final class LoadCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var counts = (total: 0, failures: 0)
    private var stopFlag = false
    func record(_ status: Int) { lock.withLock { counts.total += 1; if status != 200 { counts.failures += 1 } } }
    func stop() { lock.withLock { stopFlag = true } }
    var stopped: Bool { lock.withLock { stopFlag } }
    var total: Int { lock.withLock { counts.total } }
    var failures: Int { lock.withLock { counts.failures } }
}
