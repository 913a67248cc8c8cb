import Glibc
import Foundation
import TestSupport
import Testing

/// `magicbell-fcgi serve`: sockets, signals and configuration errors, on the real binary.
@Suite(.serialized) struct ServeLifecycleTests {
    static let tokenRequest: [(String, String)] = [
        ("REQUEST_METHOD", "GET"), ("DOCUMENT_URI", "/magicbell-token"), ("MAGICBELL_ROUTE", "token"), ("MAGICBELL_USER_EXTERNAL_ID", "fcgi-user"),
    ]

    @Test(arguments: [SIGTERM, SIGINT])
    func aStopSignalExitsZeroAndRemovesTheSocketFile(_ signal: Int32) throws {
        let scratch = try Scratch()
        let responder = try Responder(scratch: scratch)
        let path = try #require(responder.socketPath)
        #expect(FileManager.default.fileExists(atPath: path))
        responder.child.signal(signal)
        #expect(responder.child.waitForExit() == 0)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func sigintStopsItEvenWhenStartedWithSigintIgnored() throws {
        // A background job of a non-interactive shell (`serve &` in a script)
        // starts with SIGINT ignored; Ctrl-C on the terminal must still stop it.
        // (It does because the signals are blocked and read from a signalfd:
        // Linux queues a blocked signal even when its disposition is ignore.)
        let scratch = try Scratch()
        let path = scratch.file("fcgi.sock")
        let child = try Child("/bin/bash", ["-c", "trap '' INT HUP; exec \"$0\" serve --socket \"$1\"", Project.binary, path],
                              environment: Responder.environment(), stderrPath: scratch.file("r.log"))
        #expect(Sockets.waitUntil { FileManager.default.fileExists(atPath: path) })
        usleep(100_000)
        child.signal(SIGHUP) // not a stop signal: it must survive it
        usleep(100_000)
        #expect(child.isRunning)
        child.signal(SIGINT)
        #expect(child.waitForExit() == 0)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func idleKeptConnectionsHoldNoWorker() throws {
        // One worker, two connections nginx keeps alive, used in turns: with a
        // worker pinned to its idle connection, the second would never be read.
        let scratch = try Scratch()
        let responder = try Responder(scratch: scratch, arguments: ["serve", "--socket", scratch.file("fcgi.sock"), "--workers", "1"])
        let a = try Sockets.connectUnix(path: responder.socketPath!, timeout: 5)
        let b = try Sockets.connectUnix(path: responder.socketPath!, timeout: 5)
        defer { close(a); close(b) }
        func ask(_ fd: Int32, _ user: String) throws -> String {
            let params = [("REQUEST_METHOD", "GET"), ("DOCUMENT_URI", "/magicbell-token"), ("MAGICBELL_ROUTE", "token"), ("MAGICBELL_USER_EXTERNAL_ID", user)]
            try Sockets.writeAll(fd, FastCGIClient.begin(keepConnection: true)
                + FastCGIClient.record(FastCGIClient.params, FastCGIClient.encodeParams(params))
                + FastCGIClient.record(FastCGIClient.params, []) + FastCGIClient.record(FastCGIClient.stdin, []))
            return String(decoding: try FastCGIClient.readResponse(fd), as: UTF8.self)
        }
        for round in 0..<3 {
            #expect(try ask(a, "a\(round)").hasPrefix("Status: 200 OK"))
            #expect(try ask(b, "b\(round)").hasPrefix("Status: 200 OK"))
        }
    }

    @Test func aKeptConnectionSurvivesAnUnreadBody() throws {
        // A body the responder does not read (here: a token POST) must not be
        // taken for the next request on the same connection.
        let scratch = try Scratch()
        let responder = try Responder(scratch: scratch)
        let fd = try Sockets.connectUnix(path: responder.socketPath!, timeout: 5)
        defer { close(fd) }
        let params = [("REQUEST_METHOD", "POST"), ("DOCUMENT_URI", "/magicbell-token"), ("MAGICBELL_ROUTE", "token"), ("MAGICBELL_USER_EXTERNAL_ID", "u"),
                      ("CONTENT_LENGTH", "40000")]
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: 20000)
        for _ in 0..<2 {
            try Sockets.writeAll(fd, FastCGIClient.begin(keepConnection: true)
                + FastCGIClient.record(FastCGIClient.params, FastCGIClient.encodeParams(params))
                + FastCGIClient.record(FastCGIClient.params, [])
                + FastCGIClient.record(FastCGIClient.stdin, body) + FastCGIClient.record(FastCGIClient.stdin, body)
                + FastCGIClient.record(FastCGIClient.stdin, []))
            #expect(String(decoding: try FastCGIClient.readResponse(fd), as: UTF8.self).hasPrefix("Status: 200 OK"))
        }
    }

    @Test func aRequestWaitingOnAKeptConnectionIsServedAfterSIGTERM() throws {
        // One worker busy with a half-sent request on A; SIGTERM; then a full
        // request on B, a kept connection that was idle. Both must be answered.
        let scratch = try Scratch()
        let responder = try Responder(scratch: scratch, arguments: ["serve", "--socket", scratch.file("fcgi.sock"), "--workers", "1"])
        let path = responder.socketPath!
        let b = try Sockets.connectUnix(path: path, timeout: 5)
        defer { close(b) }
        func kept(_ user: String) -> [UInt8] {
            let params = [("REQUEST_METHOD", "GET"), ("DOCUMENT_URI", "/magicbell-token"), ("MAGICBELL_ROUTE", "token"), ("MAGICBELL_USER_EXTERNAL_ID", user)]
            return FastCGIClient.begin(keepConnection: true) + FastCGIClient.record(FastCGIClient.params, FastCGIClient.encodeParams(params))
                + FastCGIClient.record(FastCGIClient.params, []) + FastCGIClient.record(FastCGIClient.stdin, [])
        }
        try Sockets.writeAll(b, kept("b0"))
        #expect(String(decoding: try FastCGIClient.readResponse(b), as: UTF8.self).hasPrefix("Status: 200 OK")) // B now idle, kept
        // (libfcgi drops a unix connection that sends nothing for 2 s after
        // accept, so A connects only now, with its first bytes.)
        let a = try Sockets.connectUnix(path: path, timeout: 5)
        defer { close(a) }
        let requestA = kept("a")
        try Sockets.writeAll(a, Array(requestA.prefix(20)))
        usleep(200_000) // the only worker now waits for the rest of A
        responder.child.signal(SIGTERM)
        #expect(Sockets.waitUntil { !FileManager.default.fileExists(atPath: path) })
        usleep(100_000)
        try Sockets.writeAll(b, kept("b1"))
        try Sockets.writeAll(a, Array(requestA.dropFirst(20)))
        #expect(String(decoding: try FastCGIClient.readResponse(a), as: UTF8.self).hasPrefix("Status: 200 OK"))
        #expect(String(decoding: try FastCGIClient.readResponse(b), as: UTF8.self).hasPrefix("Status: 200 OK"))
        #expect(responder.child.waitForExit() == 0)
    }

    @Test func anInFlightRequestIsFinishedAfterSIGTERM() throws {
        let scratch = try Scratch()
        let responder = try Responder(scratch: scratch)
        let fd = try Sockets.connectUnix(path: responder.socketPath!)
        defer { close(fd) }
        // Half a request: a worker has accepted it and waits for the rest.
        let whole = FastCGIClient.request(Self.tokenRequest)
        try Sockets.writeAll(fd, Array(whole.prefix(20)))
        usleep(200_000)
        responder.child.signal(SIGTERM)
        usleep(200_000)
        #expect(responder.child.isRunning, "the responder must wait for the in-flight request")
        try Sockets.writeAll(fd, Array(whole.dropFirst(20)))
        let answer = String(decoding: try FastCGIClient.readResponse(fd), as: UTF8.self)
        #expect(answer.hasPrefix("Status: 200 OK\r\n"))
        #expect(answer.contains("\"token\":\"ey"))
        #expect(responder.child.waitForExit() == 0)
    }

    @Test func aStaleSocketFileIsReplaced() throws {
        let scratch = try Scratch()
        let path = scratch.file("fcgi.sock")
        // A socket file whose listener is gone, as a crash leaves it.
        close(try Sockets.bindUnix(path: path))
        #expect(FileManager.default.fileExists(atPath: path))

        let responder = try Responder(scratch: scratch)
        let fd = try Sockets.connectUnix(path: path)
        defer { close(fd) }
        try Sockets.writeAll(fd, FastCGIClient.request(Self.tokenRequest))
        #expect(String(decoding: try FastCGIClient.readResponse(fd), as: UTF8.self).hasPrefix("Status: 200 OK"))
        _ = responder
    }

    @Test func aLiveSocketIsRefusedAndKeepsServing() throws {
        let scratch = try Scratch()
        let first = try Responder(scratch: scratch)
        let second = try Child(Project.binary, ["serve", "--socket", first.socketPath!], environment: Responder.environment(),
                               stderrPath: scratch.file("second.log"))
        #expect(second.waitForExit() == 1)
        #expect(second.stderr.contains("another process is listening on \(first.socketPath!)"))
        let fd = try Sockets.connectUnix(path: first.socketPath!)
        defer { close(fd) }
        try Sockets.writeAll(fd, FastCGIClient.request(Self.tokenRequest))
        #expect(String(decoding: try FastCGIClient.readResponse(fd), as: UTF8.self).hasPrefix("Status: 200 OK"))
    }

    @Test func aFileThatIsNotASocketIsNeverReplaced() throws {
        let scratch = try Scratch()
        let path = scratch.file("fcgi.sock")
        try "precious".write(toFile: path, atomically: true, encoding: .utf8)
        let child = try Child(Project.binary, ["serve", "--socket", path], environment: Responder.environment(),
                              stderrPath: scratch.file("r.log"))
        #expect(child.waitForExit() == 1)
        #expect(child.stderr.contains("is not a socket"))
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "precious")
    }

    @Test func theSocketModeIsApplied() throws {
        let scratch = try Scratch()
        let path = scratch.file("fcgi.sock")
        let responder = try Responder(scratch: scratch, arguments: ["serve", "--socket", path, "--socket-mode", "0600"])
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        _ = responder
        let defaultScratch = try Scratch()
        let defaulted = try Responder(scratch: defaultScratch)
        #expect(try FileManager.default.attributesOfItem(atPath: defaulted.socketPath!)[.posixPermissions] as? Int == 0o660)
    }

    @Test func theListenSocketCanBeInheritedOnFdZero() throws {
        // What spawn-fcgi and systemd's StandardInput=socket do: a listening
        // socket as fd 0, and no --socket or --listen.
        let scratch = try Scratch()
        let path = scratch.file("inherited.sock")
        let listener = try Sockets.bindUnix(path: path)
        #expect(listen(listener, 16) == 0)
        let child = try Child(Project.binary, ["serve", "--workers", "2"], environment: Responder.environment(),
                              stderrPath: scratch.file("r.log"), standardInput: FileHandle(fileDescriptor: listener, closeOnDealloc: true))
        let fd = try Sockets.connectUnix(path: path)
        defer { close(fd) }
        try Sockets.writeAll(fd, FastCGIClient.request(Self.tokenRequest))
        #expect(String(decoding: try FastCGIClient.readResponse(fd), as: UTF8.self).hasPrefix("Status: 200 OK"))
        child.signal(SIGTERM)
        #expect(child.waitForExit() == 0)
        // The inherited socket belongs to whoever passed it: it stays.
        #expect(FileManager.default.fileExists(atPath: path))
    }

    @Test func withoutASocketOnFdZeroServeExplainsWhatToDo() throws {
        let scratch = try Scratch()
        let child = try Child(Project.binary, ["serve"], environment: Responder.environment(), stderrPath: scratch.file("r.log"))
        #expect(child.waitForExit() == 1)
        #expect(child.stderr.contains("--socket"))
    }

    @Test func badConfigurationExits78WithOneLineAndNoSecret() throws {
        let scratch = try Scratch()
        let cases: [([String: String], String)] = [
            (Responder.environment(["MAGICBELL_TOKEN_TTL": "5"]), "MAGICBELL_TOKEN_TTL"),
            (Responder.environment(["MAGICBELL_API_KEY": ""]), "MAGICBELL_API_KEY"),
            (Responder.environment(["MAGICBELL_SECRET_KEY_FILE": "/nonexistent"]), "MAGICBELL_SECRET_KEY"),
            (Responder.environment(["MAGICBELL_ADMIN_MAX_CONCURRENT": "8"]), "MAGICBELL_ADMIN_MAX_CONCURRENT"), // = workers
            (Responder.environment(["MAGICBELL_PROJECT_TOKEN": Project.secret + "x", "MAGICBELL_API_URL": "http://example.com"]), "MAGICBELL_API_URL"),
        ]
        for (index, (env, variable)) in cases.enumerated() {
            let child = try Child(Project.binary, ["serve", "--socket", scratch.file("s\(index).sock"), "--workers", "8"], environment: env,
                                  stderrPath: scratch.file("c\(index).log"))
            #expect(child.waitForExit() == 78, "\(variable)")
            let lines = child.stderr.split(separator: "\n")
            #expect(lines.count == 1, "\(child.stderr)")
            #expect(child.stderr.contains(variable))
            #expect(!child.stderr.contains(Project.secret))
            #expect(!FileManager.default.fileExists(atPath: scratch.file("s\(index).sock")), "must fail before listening")
        }
    }
}
