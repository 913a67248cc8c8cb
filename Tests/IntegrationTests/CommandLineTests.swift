import Foundation
import Testing

/// `mint`, `verify`, `check-config`, `--help`, `--version` on the real binary.
@Suite struct CommandLineTests {
    struct Run {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    static func run(_ arguments: [String], environment: [String: String] = Responder.environment(), stdin: String? = nil) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Project.binary)
        process.arguments = arguments
        process.environment = environment
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
        let stderrData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus,
                   stdout: String(decoding: stdoutData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines),
                   stderr: String(decoding: stderrData, as: UTF8.self))
    }

    @Test func mintPrintsATokenThatVerifyAndPyJWTAccept() throws {
        let minted = try Self.run(["mint", "--external-id", "cli-user", "--email", "cli@example.com", "--ttl", "120"])
        #expect(minted.status == 0)
        let claims = try PyJWT.decode(minted.stdout)
        #expect(claims["user_external_id"] as? String == "cli-user")
        #expect(claims["user_email"] as? String == "cli@example.com")
        #expect((claims["exp"] as? Int).map { $0 - (claims["iat"] as? Int ?? 0) } == 120)

        let verified = try Self.run(["verify", minted.stdout])
        #expect(verified.status == 0)
        let printed = try JSONSerialization.jsonObject(with: Data(verified.stdout.utf8)) as? [String: Any]
        #expect(printed?["user_external_id"] as? String == "cli-user")

        let fromStdin = try Self.run(["verify", "-"], stdin: minted.stdout + "\n")
        #expect(fromStdin.status == 0)
    }

    @Test func mintNeedsAnIdentity() throws {
        let run = try Self.run(["mint"])
        #expect(run.status == 64)
        #expect(run.stderr.contains("--external-id"))
    }

    @Test func mintJSONIsTheEndpointAnswer() throws {
        let run = try Self.run(["mint", "--email", "a@example.com", "--json"])
        let json = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
        #expect(Set(json?.keys ?? [:].keys) == ["token", "expires_at", "expires_in"])
        #expect(json?["expires_in"] as? Int == 600)
    }

    @Test func verifyRejectsTamperedForeignAndAlgNoneTokens() throws {
        let token = try Self.run(["mint", "--external-id", "u"]).stdout
        let parts = token.split(separator: ".").map(String.init)

        let foreign = try Self.run(["verify", token], environment: Responder.environment(["MAGICBELL_SECRET_KEY": "other"]))
        #expect(foreign.status == 1)
        #expect(foreign.stderr.contains("bad signature"))
        #expect(foreign.stderr.split(separator: "\n").count == 1)

        let tamperedPayload = Data(#"{"user_email":null,"user_external_id":"admin","api_key":"x","iat":1,"exp":99999999999}"#.utf8)
            .base64EncodedString().replacingOccurrences(of: "=", with: "")
        let tampered = try Self.run(["verify", "\(parts[0]).\(tamperedPayload).\(parts[2])"])
        #expect(tampered.status == 1)

        let noneHeader = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
        let none = try Self.run(["verify", "\(noneHeader).\(parts[1])."])
        #expect(none.status == 1)
        #expect(none.stderr.contains("alg"))
    }

    @Test func verifyRejectsAnExpiredToken() throws {
        // Signed by Python's hmac with the same secret, expired an hour ago.
        let script = """
        import base64, hashlib, hmac, json, sys, time
        b = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
        head = b(b'{"alg":"HS256","typ":"JWT"}')
        body = b(json.dumps({"user_external_id": "u", "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}).encode())
        sig = b(hmac.new(sys.argv[1].encode(), (head + "." + body).encode(), hashlib.sha256).digest())
        print(head + "." + body + "." + sig)
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, Project.secret]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let token = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        process.waitUntilExit()
        let run = try Self.run(["verify", token])
        #expect(run.status == 1)
        #expect(run.stderr.contains("expired"))
    }

    @Test func checkConfigSummarizesWithoutTheSecret() throws {
        let ok = try Self.run(["check-config"])
        #expect(ok.status == 0)
        #expect(ok.stdout.contains(Project.apiKey))
        #expect(ok.stdout.contains("configuration OK"))
        #expect(!ok.stdout.contains(Project.secret) && !ok.stderr.contains(Project.secret))

        let both = try Self.run(["check-config"], environment: Responder.environment(["MAGICBELL_SECRET_KEY_FILE": "/etc/hostname"]))
        #expect(both.status == 78)
        #expect(both.stderr.contains("MAGICBELL_SECRET_KEY"))
        #expect(!both.stderr.contains(Project.secret))
    }

    @Test func helpListsSubcommandsAndVariables() throws {
        let help = try Self.run(["--help"])
        #expect(help.status == 0)
        for word in ["serve", "mint", "verify", "check-config", "MAGICBELL_API_KEY", "MAGICBELL_SECRET_KEY_FILE", "MAGICBELL_TOKEN_TTL"] {
            #expect(help.stdout.contains(word), "\(word)")
        }
        let serveHelp = try Self.run(["serve", "--help"])
        for word in ["--socket", "--socket-mode", "--listen", "--workers"] { #expect(serveHelp.stdout.contains(word)) }
        let version = try Self.run(["--version"])
        #expect(version.status == 0 && version.stdout.range(of: #"^\d+\.\d+\.\d+$"#, options: .regularExpression) != nil)
    }
}
