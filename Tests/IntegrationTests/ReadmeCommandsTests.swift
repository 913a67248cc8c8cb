import Glibc
import Foundation
import Testing
import TestSupport

/// The docs' shell blocks, run as written: only the paths differ, and what
/// a block would write under /etc goes to a private overlay of it.
@Suite struct ReadmeCommandsTests {
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
        Self.expectOwned(etc.file("/etc/magicbell-fcgi"), mode: 0o750, uid: 0, gid: www)
        Self.expectOwned(key, mode: 0o640, uid: 0, gid: www)
        let checked = try runProcess(Project.binary, ["check-config"], environment: [
            "MAGICBELL_API_KEY": Project.apiKey, "MAGICBELL_SECRET_KEY_FILE": key])
        #expect(checked.status == 0, "the key as the program reads it: \(checked.stderr)")

        let again = try etc.run(block, environment: ["SECRET": "another-key"])
        #expect(again.status != 0 && again.stderr.contains("cannot overwrite"), "\(again.stderr)")
        #expect(readText(key) == Project.secret + "\n", "the existing key is kept")
    }

    /// A file's owner, group and mode are these.
    static func expectOwned(_ path: String, mode: mode_t, uid: uid_t, gid: gid_t) {
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o7777 == mode && info.st_uid == uid && info.st_gid == gid,
                "\(path): \(String(info.st_mode & 0o7777, radix: 8)) \(info.st_uid):\(info.st_gid)")
    }

    /// Stands in for journald's stdout socket (/run/systemd/journal/stdout,
    /// where systemd-cat connects): writes what each stream sends, its
    /// header (identifier, unit, priority, flags) included, to argv[2].
    static let fakeJournal = """
    import os, socket, sys, threading
    path, out = sys.argv[1], sys.argv[2]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o666)
    server.listen(8)
    def serve(connection):
        with connection, open(out, "ab", buffering=0) as log:
            while data := connection.recv(65536):
                log.write(data)
    while True:
        threading.Thread(target=serve, args=(server.accept()[0],), daemon=True).start()
    """

    /// docs/deployment.md, "Running under spawn-fcgi", the block as written,
    /// pasted into a root shell on Debian 12: with only the binary's path and
    /// /run/magicbell-fcgi moved to the scratch directory, under a private
    /// /etc (adduser makes a real system user there) and a private /run
    /// whose journald is `fakeJournal`. It serves the troubleshooting
    /// command as www-data; the PID spawn-fcgi prints is the responder
    /// itself (systemd-cat execs it), running as the new user, so SIGTERM on
    /// it stops the responder; and the responder's log reaches the journal.
    @Test(.enabled(if: geteuid() == 0, "adduser, unshare and spawn-fcgi's -u need root, as in CI"))
    func theSpawnFcgiBlockServesAsItsOwnUserAndLogsToTheJournal() throws {
        let scratch = try Scratch()
        chmod(scratch.path, 0o755) // the new user and www-data reach what is under it, as under /run
        let etc = try PrivateEtc(scratch: scratch)
        let block = try Docs.block("docs/deployment.md", "### Running under spawn-fcgi", containing: "spawn-fcgi -s")
        let script = try Docs.substituting(block, [("/usr/bin/magicbell-fcgi", Project.binary),
                                                   ("/run/magicbell-fcgi", scratch.file("run"))])
        let journal = scratch.file("journal.log"), journalPID = scratch.file("journal.pid")
        let prelude = """
        mount -t tmpfs tmpfs /run || exit 97
        python3 -c '\(Self.fakeJournal)' /run/systemd/journal/stdout \(journal) & echo $! >\(journalPID)
        i=0; while [ ! -S /run/systemd/journal/stdout ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
        exec 1>&2
        """
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin") + ":/usr/sbin:/sbin"
        // A sanitized responder, as magicbell-fcgi, cannot write where the
        // run's reports go: its reports go to its stderr, the journal, and
        // fail this test.
        var environment = ["PATH": path, "SECRET": Project.secret]
        for (name, value) in withSanitizerOptions([:]) {
            environment[name] = value.split(separator: ":").map { $0.hasPrefix("log_path=") ? "log_path=stderr" : String($0) }
                .joined(separator: ":")
        }
        // Not runProcess, and not waiting for the shell's exit: the daemon
        // spawn-fcgi leaves behind inherits a descriptor of this test process
        // through which Foundation watches the shell, so neither would return.
        let pasted = try Child("/usr/bin/unshare", etc.arguments(script, prelude: prelude), environment: environment,
                               stderrPath: scratch.file("pasted.log"))
        defer { if let fake = Int32(readText(journalPID).trimmingCharacters(in: .whitespacesAndNewlines)) { kill(fake, SIGKILL) } }
        // "spawn-fcgi: child spawned successfully: PID: 1234".
        var log = ""
        #expect(Sockets.waitUntil(timeout: 20) {
            log = pasted.stderr
            return log.contains("PID:")
        })
        let line = try #require(log.split(separator: "\n").first { $0.contains("PID:") }, "\(log)")
        let pid = try #require(Int32(line.split(separator: " ").last ?? ""), "\(line)")
        defer { kill(pid, SIGKILL) }

        // The user the block made, in the private /etc only.
        let passwd = readText(etc.file("/etc/passwd")).split(separator: "\n").first { $0.hasPrefix("magicbell-fcgi:") }
        let fields = try #require(passwd, "adduser made no magicbell-fcgi: \(log)").split(separator: ":")
        let (uid, gid) = (try #require(uid_t(fields[2])), try #require(gid_t(fields[3])))
        #expect(getpwnam("magicbell-fcgi") == nil, "the real /etc has no magicbell-fcgi")
        // (/proc's files have no size: not readText.)
        func proc(_ name: String) -> String { (try? String(contentsOfFile: "/proc/\(pid)/\(name)", encoding: .utf8)) ?? "" }
        #expect(uid != 0 && proc("status").contains("\nUid:\t\(uid)\t"), "the responder runs as magicbell-fcgi")
        #expect(proc("comm") == "magicbell-fcgi\n", "the PID spawn-fcgi printed is the responder's")
        Self.expectOwned(etc.file("/etc/magicbell-fcgi"), mode: 0o750, uid: 0, gid: gid)
        Self.expectOwned(etc.file("/etc/magicbell-fcgi/secret-key"), mode: 0o640, uid: 0, gid: gid)
        #expect(readText(etc.file("/etc/magicbell-fcgi/secret-key")) == Project.secret + "\n")

        let socket = scratch.file("run/magicbell-fcgi.sock")
        let www = try #require(getpwnam("www-data")).pointee
        Self.expectOwned(socket, mode: 0o660, uid: www.pw_uid, gid: www.pw_gid)
        let claims = try Self.askWithTheTroubleshootingCommand(socket: socket)
        #expect(claims["user_email"] as? String == "a@example.com")

        kill(pid, SIGTERM)
        #expect(Sockets.waitUntil(timeout: 15) { kill(pid, 0) != 0 }, "SIGTERM on the printed PID stops the responder")
        // The socket is spawn-fcgi's: it stays, and nothing answers on it any more.
        #expect((try? Sockets.connectUnix(path: socket, timeout: 1)).map { close($0) } == nil)
        var logged = ""
        #expect(Sockets.waitUntil(timeout: 5) {
            logged = readText(journal)
            return logged.contains(#""message":"stopped""#)
        }, "\(logged)")
        #expect(logged.hasPrefix("magicbell-fcgi\n"), "systemd-cat's identifier: \(logged.prefix(80))")
        #expect(logged.contains(#""message":"listening""#), "\(logged)")
        #expect(!logged.contains("Sanitizer"), "\(logged)")
    }
}
