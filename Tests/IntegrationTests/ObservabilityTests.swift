import Glibc
import Foundation
import Testing
import TestSupport

/// Logs and metrics of the real binary behind real nginx.
@Suite(.serialized) struct ObservabilityTests {
    let demo = HTTP.basic("demo", "demo")

    /// Every stderr line of the responder, parsed; fails on a line that is not JSON.
    static func jsonLines(_ stack: Stack) throws -> [[String: Any]] {
        try stack.responder.child.stderr.split(separator: "\n").map { line in
            try #require(try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(line)")
        }
    }


    @Test func metricsCountTokensRefusalsAdminCallsAndUpstreamLatency() throws {
        let stack = try AdminRouteTests.stack()
        for _ in 0..<3 { #expect(try stack.nginx.get("/magicbell-token", headers: [demo]).status == 200) }
        #expect(try stack.nginx.get("/magicbell-token", "DELETE", headers: [demo]).status == 405)
        #expect(try stack.nginx.admin("POST", "jwt/project", json: #"{"name":"metrics"}"#).status == 201)
        #expect(try stack.nginx.admin("GET", "jwt/project?bogus=1").status == 400)
        let auditedBefore = stack.auditLines.count

        let scrape = try stack.nginx.admin("GET", "metrics")
        #expect(scrape.status == 200)
        #expect(scrape.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
        #expect(scrape.header("Cache-Control") == "no-store")
        let samples = prometheusSamples(scrape.text)
        #expect(samples["magicbell_fcgi_tokens_minted_total"] == 3)
        #expect(samples[#"magicbell_fcgi_token_refusals_total{reason="method_not_allowed"}"#] == 1)
        #expect(samples[#"magicbell_fcgi_admin_requests_total{operation="createProjectJwt",status="201"}"#] == 1)
        #expect(samples[#"magicbell_fcgi_admin_requests_total{operation="fetchProjectTokens",status="400"}"#] == 1)
        #expect(samples[#"magicbell_fcgi_upstream_request_duration_seconds_count{operation="createProjectJwt"}"#] == 1)
        #expect(samples[#"magicbell_fcgi_upstream_request_duration_seconds_count{operation="fetchProjectTokens"}"#] == nil,
                "a refused call never reached MagicBell")
        #expect(samples["magicbell_fcgi_workers"] == 4)
        #expect(samples["magicbell_fcgi_event_loops"] == Double(max(1, ProcessInfo.processInfo.activeProcessorCount / 2)), "half the CPUs by default")
        #expect(samples["magicbell_fcgi_workers_busy"] == 1, "the scrape itself: the admin route is answered on the pool")
        // Tokens and their refusals on the event loops; admin calls (this scrape too) on the pool.
        #expect(samples[#"magicbell_fcgi_fastcgi_requests_total{thread="event_loop"}"#] == 4, "3 tokens and the 405")
        #expect(samples[#"magicbell_fcgi_fastcgi_requests_total{thread="pool"}"#] == 3, "2 admin calls and this scrape")
        usleep(100_000)
        #expect(stack.auditLines.count == auditedBefore, "a successful scrape is not an audited action")

        // The next scrape counts the first.
        let again = prometheusSamples(try stack.nginx.admin("GET", "metrics").text)
        #expect(again[#"magicbell_fcgi_admin_requests_total{operation="metrics",status="200"}"#] == 1)
    }

    @Test func metricsNeedTheAdminRoleAndAGet() throws {
        let stack = try AdminRouteTests.stack()
        #expect(try stack.nginx.get("/magicbell-admin/metrics", headers: [demo]).status == 401, "nginx: not an admin")
        #expect(try stack.nginx.get("/magicbell-admin/metrics").status == 401)
        let posted = try stack.nginx.admin("POST", "metrics", json: "{}")
        #expect(posted.status == 405 && posted.errorCode == "method_not_allowed" && posted.header("Allow") == "GET")
        usleep(100_000)
        #expect(stack.auditLines.last?["operation"] as? String == "metrics", "a refused scrape is audited")
    }

    @Test func theMetricsSnippetLetsAScraperReadMetricsAndNothingElse() throws {
        let stack = try AdminRouteTests.stack(serverExtra: "include snippets/magicbell-metrics.conf;")
        let scraper = HTTP.basic("prometheus", "prometheus")
        let scrape = try stack.nginx.get("/magicbell-admin/metrics", headers: [scraper])
        #expect(scrape.status == 200 && scrape.text.contains("magicbell_fcgi_tokens_minted_total 0"))
        #expect(try stack.nginx.get("/magicbell-admin/jwt/project", headers: [scraper]).status == 401, "not an admin")
        #expect(try stack.nginx.get("/magicbell-admin/metrics", headers: [demo]).status == 401)
        #expect(try stack.nginx.admin("GET", "jwt/project").status == 200, "admins keep the rest")
    }

    @Test func everyLineIsJSONAndEveryRequestLineCarriesNginxsRequestID() throws {
        let stack = try AdminRouteTests.stack(arguments: ["--log-level", "debug"])
        let token = try stack.nginx.get("/magicbell-token", headers: [demo])
        let refused = try stack.nginx.get("/magicbell-token", "DELETE", headers: [demo])
        let created = try stack.nginx.admin("POST", "jwt/project", json: #"{"name":"logs"}"#)
        let ids = try [token, refused, created].map { try #require($0.header("X-Request-Id")) }
        #expect(ids.allSatisfy { $0.count == 32 && $0.allSatisfy(\.isHexDigit) }, "nginx's $request_id, echoed")
        #expect(Set(ids).count == 3)
        usleep(100_000)

        let lines = try Self.jsonLines(stack)
        #expect(lines.allSatisfy { $0["time"] is String && $0["level"] is String && $0["message"] is String })
        func about(_ id: String) -> [[String: Any]] { lines.filter { $0["request_id"] as? String == id } }
        // Debug: one line per request.
        for (id, status) in zip(ids, [200, 405, 201]) {
            let request = about(id).filter { $0["message"] as? String == "request" }
            #expect(request.count == 1 && request.first?["status"] as? Int == status && request.first?["level"] as? String == "debug")
        }
        // Info: one per error and per admin action.
        let refusal = about(ids[1]).filter { $0["level"] as? String == "info" }
        #expect(refusal.count == 1 && refusal.first?["code"] as? String == "method_not_allowed")
        let audit = about(ids[2]).filter { $0["event"] as? String == "admin" }
        #expect(audit.count == 1 && audit.first?["level"] as? String == "info")
        #expect(about(ids[0]).allSatisfy { $0["level"] as? String == "debug" }, "a token is not an event at info")
        #expect(!stack.responder.child.stderr.contains(try #require(token.json?["token"] as? String)))
    }

    @Test func infoLogsNothingForATokenAndTextFormatIsOnRequest() throws {
        let stack = try AdminRouteTests.stack(arguments: ["--log-format", "text"])
        let token = try stack.nginx.get("/magicbell-token", headers: [demo])
        #expect(token.status == 200)
        #expect(token.header("X-Request-Id") == nil, "no log line to point at, so no id")
        let refused = try stack.nginx.get("/magicbell-token", "DELETE", headers: [demo])
        #expect(refused.status == 405)
        let id = try #require(refused.header("X-Request-Id"))
        usleep(100_000)
        let lines = stack.responder.child.stderr.split(separator: "\n")
        #expect(lines.contains { $0.contains("info") && $0.contains("listening") })
        #expect(lines.allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) == nil }, "text, not JSON")
        #expect(lines.filter { $0.contains("request refused") && $0.contains("code=method_not_allowed") && $0.contains(id) }.count == 1)
        #expect(try stack.nginx.admin("GET", "jwt/project").header("X-Request-Id") != nil, "admin answers are audited: they carry it")
        #expect(!lines.contains { $0.contains("request_id") && !$0.contains("refused") }, "no line per token at info")
    }

    /// Issue 20 §3: under systemd, stderr is the journal and JOURNAL_STREAM
    /// names it (`DEV:INODE`, systemd.exec(5)); each line then starts with
    /// its syslog priority (sd-daemon(3)), so `journalctl -p warning`
    /// filters. Here stderr is a file, and the variable is computed from it
    /// as systemd computes it from its stream. A JOURNAL_STREAM naming
    /// another file (a unit whose program redirected stderr) adds nothing.
    @Test(arguments: [true, false]) func underTheJournalEachLineStartsWithItsPriority(_ stderrIsTheJournal: Bool) throws {
        let scratch = try Scratch()
        let socket = scratch.file("fcgi.sock")
        let other = scratch.file("elsewhere")
        _ = FileManager.default.createFile(atPath: other, contents: nil)
        // `stat -L /proc/self/fd/2`: the file the shell's (and so serve's) stderr is.
        let named = stderrIsTheJournal ? "/proc/self/fd/2" : other
        let script = #"JOURNAL_STREAM=$(stat -L -c %d:%i "$1") exec "$0" serve --socket "$2" --workers 1"#
        // A misspelt variable: one warning at start.
        let child = try Child("/bin/sh", ["-c", script, Project.binary, named, socket],
                              environment: Responder.environment(["MAGICBELL_SECERT_KEY": "x"]),
                              stderrPath: scratch.file("responder.log"))
        defer { child.stop() }
        #expect(Sockets.waitUntil { (try? Sockets.connectUnix(path: socket)).map { close($0); return true } ?? false })
        child.signal(SIGTERM)
        #expect(child.waitForExit() == 0)
        let lines = child.stderr.split(separator: "\n").map(String.init)
        #expect(lines.count >= 3, "\(lines)")
        let listening = try #require(lines.first { $0.contains(#""message":"listening""#) })
        let warning = try #require(lines.first { $0.contains("did you mean MAGICBELL_SECRET_KEY") })
        if stderrIsTheJournal {
            #expect(lines.allSatisfy { $0.range(of: #"^<[2-7]>\{"time":""#, options: .regularExpression) != nil }, "\(lines)")
            #expect(listening.hasPrefix("<6>") && warning.hasPrefix("<4>"))
        } else {
            #expect(lines.allSatisfy { $0.hasPrefix(#"{"time":""#) }, "\(lines)")
        }
        // Numbers are JSON numbers (they were strings: "workers":"1").
        let object = try #require(try JSONSerialization.jsonObject(with: Data(listening.drop { $0 != "{" }.utf8)) as? [String: Any])
        #expect(object["workers"] as? Int == 1, "\(listening)")
    }
}
