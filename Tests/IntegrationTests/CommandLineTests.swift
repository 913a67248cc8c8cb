import Foundation
import Testing
import TestSupport

/// `mint`, `verify`, `check-config`, `--help`, `--version` on the real binary.
@Suite struct CommandLineTests {
    static func run(_ arguments: [String], environment: [String: String] = Responder.environment(),
                    stdin: String? = nil) throws -> ProcessResult {
        try runProcess(Project.binary, arguments, environment: environment, stdin: stdin)
    }

    @Test func mintPrintsATokenThatVerifyAndPyJWTAccept() throws {
        let minted = try Self.run(["mint", "--external-id", "cli-user", "--email", "cli@example.com", "--ttl", "120"])
        #expect(minted.status == 0)
        let claims = try PyJWT.decode(minted.output)
        #expect(claims["user_external_id"] as? String == "cli-user")
        #expect(claims["user_email"] as? String == "cli@example.com")
        #expect((claims["exp"] as? Int).map { $0 - (claims["iat"] as? Int ?? 0) } == 120)

        let verified = try Self.run(["verify", minted.output])
        #expect(verified.status == 0)
        let printed = try JSONSerialization.jsonObject(with: Data(verified.output.utf8)) as? [String: Any]
        #expect(printed?["user_external_id"] as? String == "cli-user")

        let fromStdin = try Self.run(["verify", "-"], stdin: minted.output + "\n")
        #expect(fromStdin.status == 0)
    }

    @Test func mintNeedsAnIdentity() throws {
        let run = try Self.run(["mint"])
        #expect(run.status == 64)
        #expect(run.stderr.contains("--external-id"))
    }

    @Test(arguments: [["--log-format", "xml"], ["--log-format", "JSON"], ["--log-level", "loud"], ["--io-timeout", "0"]])
    func serveRefusesABadOptionWith64(_ option: [String]) throws {
        let run = try Self.run(["serve", "--socket", "/nonexistent/never-used.sock"] + option)
        #expect(run.status == 64)
        #expect(run.stderr.contains(option[0]))
    }

    @Test func checkConfigRefusesWhatServeRefuses() throws {
        // The rules that depend on --workers live in one place; check-config
        // (the unit's ExecStartPre=) applies them for the same --workers.
        for (variable, value) in [("MAGICBELL_ADMIN_MAX_CONCURRENT", "4"), ("MAGICBELL_MINT_MAX_CONCURRENT", "4")] {
            let env = Responder.environment([variable: value])
            let check = try runProcess(Project.binary, ["check-config", "--workers", "4"], environment: env)
            #expect(check.status == 78, "\(variable): \(check.stderr)")
            #expect(check.stderr.contains("\(variable) (4) must be less than --workers (4)"), "\(check.stderr)")
            let serve = try runProcess(Project.binary, ["serve", "--socket", "/nonexistent/never.sock", "--workers", "4"], environment: env)
            #expect(serve.status == 78)
            #expect(serve.stderr == check.stderr, "one rule, one message")
            #expect(try runProcess(Project.binary, ["check-config", "--workers", "5"], environment: env).status == 0)
        }
        for workers in ["0", "1025"] {
            let bad = try runProcess(Project.binary, ["check-config", "--workers", workers], environment: Responder.environment())
            #expect(bad.status == 64, "--workers \(workers)")
            #expect(bad.stderr.contains("--workers must be from 1 to 1024"))
        }
    }

    @Test(arguments: [["--socket-mode", "0999"], ["--socket-mode", "0440"], ["--listen", "localhost"], ["--listen", "1.2.3.4:0"],
                      ["--peer-uid", "no-such-user-here"]])
    func serveRefusesABadValueWith64NamingTheOption(_ option: [String]) throws {
        let run = try Self.run(["serve"] + option)
        #expect(run.status == 64)
        #expect(run.stderr.contains(option[0]), "\(run.stderr)")
    }

    @Test func mintJSONIsTheEndpointAnswer() throws {
        let run = try Self.run(["mint", "--email", "a@example.com", "--json"])
        let json = try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any]
        #expect(Set(json?.keys ?? [:].keys) == ["token", "expires_at", "expires_in"])
        #expect(json?["expires_in"] as? Int == 600)
    }

    /// `mint` applies the endpoint's identity rules: a value over 1024
    /// bytes is refused, naming it, and nothing is printed on stdout.
    @Test func mintRefusesAnIdentityTheEndpointWouldRefuse() throws {
        let run = try Self.run(["mint", "--external-id", String(repeating: "x", count: 1025)])
        #expect(run.status == 1)
        #expect(run.output.isEmpty)
        #expect(run.stderr.contains("MAGICBELL_USER_EXTERNAL_ID"), "\(run.stderr)")
    }

    /// `mint` signs here with the secret key, whatever MAGICBELL_MINT says
    /// (it never calls MagicBell), and says so when the endpoint would not.
    @Test func mintSignsLocallyEvenInApiModeAndSaysSo() throws {
        let environment = Responder.environment(["MAGICBELL_MINT": "api", "MAGICBELL_PROJECT_TOKEN": Canary.secret("project-token"),
                                                 "MAGICBELL_API_URL": "https://127.0.0.1:9/v2"])
        let run = try Self.run(["mint", "--external-id", "local"], environment: environment)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try PyJWT.decode(run.output)["user_external_id"] as? String == "local")
        #expect(run.stderr.contains("MAGICBELL_MINT=api"), "\(run.stderr)")
    }

    @Test func verifyRejectsTamperedForeignAndAlgNoneTokens() throws {
        let token = try Self.run(["mint", "--external-id", "u"]).output
        let parts = token.split(separator: ".").map(String.init)

        let foreign = try Self.run(["verify", token], environment: Responder.environment(["MAGICBELL_SECRET_KEY": Canary.secret("other")]))
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
        let token = try runProcess("python3", ["-c", script, Project.secret]).output
        let run = try Self.run(["verify", token])
        #expect(run.status == 1)
        #expect(run.stderr.contains("expired"))
    }

    @Test func checkConfigSummarizesWithoutTheSecret() throws {
        let ok = try Self.run(["check-config"])
        #expect(ok.status == 0)
        #expect(ok.output.contains(Project.apiKey))
        #expect(ok.output.contains("configuration OK"))
        #expect(!ok.output.contains(Project.secret) && !ok.stderr.contains(Project.secret))

        let both = try Self.run(["check-config"], environment: Responder.environment(["MAGICBELL_SECRET_KEY_FILE": "/etc/hostname"]))
        #expect(both.status == 78)
        #expect(both.stderr.contains("MAGICBELL_SECRET_KEY"))
        #expect(!both.stderr.contains(Project.secret))
    }

    /// A MAGICBELL_API_URL port outside 1...65535 stops check-config and
    /// serve, naming the variable, instead of reaching another port.
    @Test func aPortOutsideTheTCPRangeIsRefusedAtStart() throws {
        for port in ["0", "65536", "99999"] {
            let env = Responder.environment(["MAGICBELL_API_URL": "https://api.magicbell.com:\(port)/v2"])
            let check = try Self.run(["check-config"], environment: env)
            #expect(check.status == 78 && check.stderr.contains("MAGICBELL_API_URL"), "\(port): \(check.status) \(check.stderr)")
            let serve = try Self.run(["serve", "--socket", "/nonexistent/never.sock"], environment: env)
            #expect(serve.status == 78 && serve.stderr == check.stderr, "\(port): \(serve.status) \(serve.stderr)")
        }
        for port in ["1", "65535"] {
            let check = try Self.run(["check-config"], environment: Responder.environment(["MAGICBELL_API_URL": "https://api.magicbell.com:\(port)/v2"]))
            #expect(check.status == 0 && check.output.contains("https://api.magicbell.com:\(port)/v2"), "\(port): \(check.stderr)")
        }
    }

    @Test func helpListsSubcommandsAndVariables() throws {
        let help = try Self.run(["--help"])
        #expect(help.status == 0)
        for word in ["serve", "mint", "verify", "check-config", "MAGICBELL_API_KEY", "MAGICBELL_SECRET_KEY_FILE", "MAGICBELL_TOKEN_TTL"] {
            #expect(help.output.contains(word), "\(word)")
        }
        let serveHelp = try Self.run(["serve", "--help"])
        for word in ["--socket", "--socket-mode", "--listen", "--workers"] { #expect(serveHelp.output.contains(word)) }
        // A test build is not a release build: scripts/build-release sets the
        // version and commit (scripts/package-test checks the package's).
        let version = try Self.run(["--version"])
        #expect(version.status == 0 && version.output.trimmingCharacters(in: .whitespacesAndNewlines) == "dev (commit unknown)", "\(version.output)")
    }

    /// Issue 20 §3: `check-config --env-file` reads the unit's
    /// EnvironmentFile= as systemd does (quotes, comments, continuations;
    /// its values override the environment's), and warns, exit 0, about a
    /// misspelt variable and a secret under 32 bytes (RFC 7518 §3.2).
    @Test func checkConfigReadsAnEnvironmentFileAndWarnsWithoutFailing() throws {
        let scratch = try Scratch()
        let file = scratch.file("magicbell-fcgi.env")
        try """
        # As /etc/magicbell-fcgi/magicbell-fcgi.env might say.
        ; another comment
          MAGICBELL_API_KEY = "pk_from_the_file"
        MAGICBELL_SECRET_KEY='short'
        MAGICBELL_TOKEN_TTL=12\
        00
        MAGICBELL_SECERT_KEY=typo
        MAGICBELL_ROUTE=token
        FCGI_WEB_SERVER_ADDRS=127.0.0.1

        """.write(toFile: file, atomically: true, encoding: .utf8)
        let run = try Self.run(["check-config", "--env-file", file])
        #expect(run.status == 0, "warnings only: \(run.stderr)")
        #expect(run.output.contains("pk_from_the_file") && !run.output.contains(Project.apiKey), "the file's values win")
        #expect(run.output.contains("5 bytes") && run.output.contains("1200 s"), "\(run.output)")
        #expect(run.output.contains("FCGI_WEB_SERVER_ADDRS 1 address(es)"))
        let warnings = run.stderr.split(separator: "\n").map(String.init)
        #expect(warnings.contains("magicbell-fcgi: warning: unknown variable MAGICBELL_SECERT_KEY; did you mean MAGICBELL_SECRET_KEY?"),
                "\(warnings)")
        #expect(warnings.contains { $0.hasPrefix("magicbell-fcgi: warning: MAGICBELL_ROUTE is a request param") })
        #expect(warnings.contains { $0.contains("MAGICBELL_SECRET_KEY holds a 5-byte key") && $0.contains("RFC 7518 §3.2") })
        #expect(warnings.count == 3, "\(warnings)")

        let missing = try Self.run(["check-config", "--env-file", scratch.file("nonexistent.env")])
        #expect(missing.status == 78 && missing.stderr.contains("no such file"), "\(missing.stderr)")
        // A value systemd cannot read (not UTF-8) fails the unit's start: so does check-config.
        let latin1 = scratch.file("latin1.env")
        try Data(Array("MAGICBELL_API_KEY=pk_caf".utf8) + [0xE9, 0x0A]).write(to: URL(fileURLWithPath: latin1))
        let refused = try Self.run(["check-config", "--env-file", latin1])
        #expect(refused.status == 78 && refused.stderr.contains("line 1: the value of MAGICBELL_API_KEY is not UTF-8"),
                "\(refused.status) \(refused.stderr)")
        // The environment alone: the process's misspelling is warned about too.
        let typo = try Self.run(["check-config"], environment: Responder.environment(["MAGICBELL_TOKEN_TLL": "60"]))
        #expect(typo.status == 0 && typo.stderr.contains("did you mean MAGICBELL_TOKEN_TTL?"), "\(typo.stderr)")
    }

    /// The same warnings from `serve`, one log line each at warning: what
    /// the journal shows (`journalctl -p warning`).
    @Test func serveWarnsAtStartAboutAMisspeltVariableAndAShortSecret() throws {
        let scratch = try Scratch()
        let responder = try Responder(scratch: scratch, environment: Responder.environment([
            "MAGICBELL_SECRET_KEY": "short-secret", "MAGICBELL_SECERT_KEY": "typo"]))
        responder.child.signal(SIGTERM)
        #expect(responder.child.waitForExit() == 0)
        let warnings = try responder.child.stderr.split(separator: "\n").compactMap {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }.filter { $0["level"] as? String == "warning" }.compactMap { $0["message"] as? String }
        #expect(warnings == ["unknown variable MAGICBELL_SECERT_KEY; did you mean MAGICBELL_SECRET_KEY?",
                             "MAGICBELL_SECRET_KEY holds a 12-byte key; an HS256 key should be at least 32 bytes (256 bits, RFC 7518 §3.2)"])
    }

    /// check-config runs as the unit's ExecStartPre=, with stderr the
    /// journal: its warnings are filed at warning and its refusal at error
    /// (sd-daemon(3) prefixes), as serve's lines are; elsewhere, no prefix.
    @Test func checkConfigUnderTheJournalPrefixesItsLinesWithTheirPriority() throws {
        let script = #"JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$0" check-config"#
        let warned = try runProcess("/bin/sh", ["-c", script, Project.binary],
                                    environment: Responder.environment(["MAGICBELL_SECERT_KEY": "x"]))
        #expect(warned.status == 0)
        #expect(warned.stderr == "<4>magicbell-fcgi: warning: unknown variable MAGICBELL_SECERT_KEY; did you mean MAGICBELL_SECRET_KEY?\n",
                "\(warned.stderr)")
        let refused = try runProcess("/bin/sh", ["-c", script, Project.binary],
                                     environment: Responder.environment(["MAGICBELL_TOKEN_TTL": "5"]))
        #expect(refused.status == 78 && refused.stderr.hasPrefix("<3>magicbell-fcgi: MAGICBELL_TOKEN_TTL"), "\(refused.stderr)")
        let elsewhere = try Self.run(["check-config"], environment: Responder.environment(["MAGICBELL_SECERT_KEY": "x",
                                                                                          "JOURNAL_STREAM": "1:1"]))
        #expect(elsewhere.stderr.hasPrefix("magicbell-fcgi: warning:"), "\(elsewhere.stderr)")
    }
}
