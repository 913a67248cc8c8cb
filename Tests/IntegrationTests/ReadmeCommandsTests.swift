import Glibc
import Foundation
import Testing
import TestSupport

/// The README's commands for hosts without systemd, run as written (only the
/// paths, and spawn-fcgi's user switch, which needs real users, differ).
@Suite struct ReadmeCommandsTests {
    /// A file's text. An empty file is not read: Foundation's
    /// String(contentsOfFile:) leaks its 4 KiB buffer on one (LeakSanitizer
    /// found 20 of them while this test waited for spawn-fcgi's output).
    static func contents(_ path: String) -> String { readText(path) }

    /// README, "Running under spawn-fcgi": the plain one-liner, and the form
    /// that keeps the logs. Then README, "Troubleshooting": cgi-fcgi.
    @Test(arguments: [false, true])
    func theSpawnFcgiOneLinerServesAndCgiFcgiAsksIt(keepingLogs: Bool) throws {
        let scratch = try Scratch()
        let secret = scratch.file("secret")
        try Project.secret.write(toFile: secret, atomically: true, encoding: .utf8)
        let socket = scratch.file("magicbell-fcgi.sock")
        let logFile = scratch.file("magicbell-fcgi.log")
        let command = keepingLogs
            ? "/bin/sh -c 'exec \(Project.binary) serve 2>>\(logFile)'"
            : "\(Project.binary) serve"
        // Not runProcess, and not waiting for the shell's exit: the daemon
        // spawn-fcgi leaves behind inherits a descriptor of this test process
        // through which Foundation watches the shell, so neither would return.
        let spawned = try Child("/bin/sh", ["-c", """
            MAGICBELL_API_KEY=\(Project.apiKey) MAGICBELL_SECRET_KEY_FILE=\(secret) \
              spawn-fcgi -s \(socket) -M 0660 -- \(command) >"\(scratch.file("spawn.log"))" 2>&1
            """], environment: ProcessInfo.processInfo.environment, stderrPath: scratch.file("sh.stderr"))
        _ = spawned
        // "spawn-fcgi: child spawned successfully: PID: 1234".
        var log = ""
        #expect(Sockets.waitUntil(timeout: 10) {
            log = Self.contents(scratch.file("spawn.log"))
            return log.contains("PID:")
        })
        let line = try #require(log.split(separator: "\n").first { $0.contains("PID:") }, "\(log)")
        let pid = try #require(Int32(line.split(separator: " ").last ?? ""), "\(line)")
        defer { kill(pid, SIGKILL) }

        var mode = stat()
        #expect(stat(socket, &mode) == 0 && mode.st_mode & 0o777 == 0o660)

        let asked = try runProcess("/bin/sh", ["-c", """
            MAGICBELL_ROUTE=token REQUEST_METHOD=GET DOCUMENT_URI=/magicbell-token MAGICBELL_USER_EMAIL=a@example.com \
              cgi-fcgi -bind -connect \(socket)
            """], environment: ProcessInfo.processInfo.environment)
        #expect(asked.status == 0)
        #expect(asked.output.hasPrefix("Status: 200 OK"), "\(asked.output)")
        let body = try #require(asked.output.components(separatedBy: "\r\n\r\n").last)
        let token = try #require((try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["token"] as? String)
        #expect(try PyJWT.decode(token)["user_email"] as? String == "a@example.com")

        kill(pid, SIGTERM)
        // The socket is spawn-fcgi's: it stays, and nothing answers on it any more.
        #expect(Sockets.waitUntil(timeout: 10) {
            guard let fd = try? Sockets.connectUnix(path: socket) else { return true }
            close(fd)
            return false
        }, "SIGTERM stops it")
        if keepingLogs {
            let kept = Self.contents(logFile)
            #expect(kept.contains(#""message":"listening""#) && kept.contains(#""message":"stopped""#), "\(kept)")
        }
    }
}
