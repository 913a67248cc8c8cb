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

    /// docs/operations.md, "Troubleshooting": the cgi-fcgi command as
    /// written (only the socket's path differs), run as root, which is who
    /// troubleshoots. Returns the token's claims.
    static func askWithTheTroubleshootingCommand(socket: String) throws -> [String: Any] {
        let block = try Docs.block("docs/operations.md", "### Troubleshooting", containing: "cgi-fcgi")
        let asked = try runProcess("/bin/bash", ["-c", try Docs.substituting(block, [(Docs.socketPath, socket)])],
                                   environment: ProcessInfo.processInfo.environment)
        #expect(asked.status == 0, "\(asked.stderr)")
        #expect(asked.output.hasPrefix("Status: 200 OK"), "\(asked.output) \(asked.stderr)")
        let body = try #require(asked.output.components(separatedBy: "\r\n\r\n").last)
        let token = try #require((try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["token"] as? String,
                                 "\(asked.output)")
        return try PyJWT.decode(token)
    }

    /// The shipped unit runs `serve --peer-uid www-data`: the documented
    /// command must be one that responder answers, though root runs it.
    @Test(.enabled(if: geteuid() == 0, "the command switches to www-data, as root does"))
    func theTroubleshootingCommandIsAnsweredByAResponderThatAdmitsOnlyWwwData() throws {
        let scratch = try Scratch()
        chmod(scratch.path, 0o755) // www-data reaches the socket, as it does /run/magicbell-fcgi
        let socket = scratch.file("fcgi.sock")
        let responder = try Responder(scratch: scratch, arguments: ["serve", "--socket", socket, "--socket-mode", "0666",
                                                                    "--workers", "2", "--peer-uid", "www-data"])
        let claims = try withExtendedLifetime(responder) { try Self.askWithTheTroubleshootingCommand(socket: socket) }
        #expect(claims["user_email"] as? String == "a@example.com")
    }

    /// docs/servers.md's CGI recipes put the secret key in place with one
    /// pasted block. Pasted as is, with SECRET unset or empty, it writes
    /// nothing; it never replaces a key that is there; with SECRET set it
    /// writes the key, root:www-data 0640 in a 0750 directory, as the
    /// program reads it. Run as written (the Apache block's a2enmod and cp
    /// too), under a private /etc.
    @Test(.enabled(if: geteuid() == 0, "install -o root and unshare need root, as in CI"),
          arguments: ["### CGI: mod_cgid", "### nginx + fcgiwrap"])
    func theCGISecretBlockWritesAKeyOnlyWhenGivenOneAndNeverReplacesOne(_ heading: String) throws {
        let scratch = try Scratch()
        let etc = try PrivateEtc(scratch: scratch)
        let block = try Docs.block("docs/servers.md", heading, containing: "/etc/magicbell-fcgi/secret-key")
        let key = etc.file("/etc/magicbell-fcgi/secret-key")

        for unset in [[:], ["SECRET": ""]] {
            let refused = try etc.run(block, environment: unset)
            #expect(refused.status != 0, "SECRET \(unset.isEmpty ? "unset" : "empty"): \(refused.stderr)")
            #expect(!FileManager.default.fileExists(atPath: key), "SECRET \(unset.isEmpty ? "unset" : "empty"): a key was written")
            #expect(refused.stderr.contains("SECRET"), "the refusal names the variable: \(refused.stderr)")
        }

        let written = try etc.run(block, environment: ["SECRET": Project.secret])
        #expect(written.status == 0, "\(written.stderr)")
        #expect(readText(key) == Project.secret + "\n")
        let www = try #require(getpwnam("www-data")).pointee.pw_gid
        for (path, mode) in [(key, 0o640), (etc.file("/etc/magicbell-fcgi"), 0o750)] {
            var info = stat()
            #expect(stat(path, &info) == 0 && info.st_mode & 0o7777 == mode && info.st_uid == 0 && info.st_gid == www,
                    "\(path): \(String(info.st_mode & 0o7777, radix: 8)) \(info.st_uid):\(info.st_gid)")
        }
        let checked = try runProcess(Project.binary, ["check-config"], environment: [
            "MAGICBELL_API_KEY": Project.apiKey, "MAGICBELL_SECRET_KEY_FILE": key])
        #expect(checked.status == 0, "the key as the program reads it: \(checked.stderr)")

        let again = try etc.run(block, environment: ["SECRET": "another-key"])
        #expect(again.status != 0 && again.stderr.contains("cannot overwrite"), "\(again.stderr)")
        #expect(readText(key) == Project.secret + "\n", "the existing key is kept")
    }

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
