import FastCGIServer
import Foundation
import Logging
import MagicBellJWT
import Testing
import TestSupport
@testable import MagicBellFCGIApp

/// Counting, across workers, and the Prometheus text exposition.
@Suite struct MetricsTests {
    static func context(_ metrics: Metrics) -> AppContext {
        let config = Configuration(apiKey: "pk_test_1", secret: SecretKey(Array("unit-secret".utf8)), tokenTTL: 900)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return AppContext(configuration: config, logger: logger, metrics: metrics)
    }

    static func ask(_ responder: MagicBellResponder, _ params: [String: String]) -> HTTPResponse {
        var response = HTTPResponse()
        responder.handle(ParameterList(params), &response)
        return response
    }


    /// A health check is not a token request: a load balancer's probes,
    /// answered or refused, have their own counter, and no refusal of theirs
    /// counts as a token refusal.
    @Test func healthChecksHaveTheirOwnCounter() throws {
        let metrics = Metrics()
        let first = try MagicBellResponder(context: Self.context(metrics))
        let second = try MagicBellResponder(context: Self.context(metrics))
        let health = ["REQUEST_METHOD": "GET", "DOCUMENT_URI": "/magicbell-health", "MAGICBELL_ROUTE": "health"]
        #expect(Self.ask(first, health).status == 200)
        #expect(Self.ask(second, health.merging(["REQUEST_METHOD": "HEAD"]) { $1 }).status == 200)
        #expect(Self.ask(second, health.merging(["REQUEST_METHOD": "POST"]) { $1 }).status == 405)
        let samples = prometheusSamples(metrics.render())
        #expect(samples["magicbell_fcgi_health_checks_total"] == 3)
        #expect(samples[#"magicbell_fcgi_token_refusals_total{reason="method_not_allowed"}"#] == 0)
        #expect(samples["magicbell_fcgi_tokens_minted_total"] == 0)
    }

    @Test func tokensAndRefusalsAreCountedOverAllWorkersAndSurviveANewContext() throws {
        let metrics = Metrics()
        let first = try MagicBellResponder(context: Self.context(metrics))
        let second = try MagicBellResponder(context: Self.context(metrics)) // as after a reload
        let token = ["REQUEST_METHOD": "GET", "DOCUMENT_URI": "/magicbell-token", "MAGICBELL_ROUTE": "token", "MAGICBELL_USER_EXTERNAL_ID": "u1"]
        for _ in 0..<3 { #expect(Self.ask(first, token).status == 200) }
        #expect(Self.ask(second, token).status == 200)
        #expect(Self.ask(second, ["REQUEST_METHOD": "GET", "DOCUMENT_URI": "/magicbell-token", "MAGICBELL_ROUTE": "token"]).status == 401)
        #expect(Self.ask(first, token.merging(["REQUEST_METHOD": "PUT"]) { $1 }).status == 405)
        #expect(Self.ask(first, ["REQUEST_METHOD": "GET", "DOCUMENT_URI": "/elsewhere"]).status == 404)

        let samples = prometheusSamples(metrics.render())
        #expect(samples["magicbell_fcgi_tokens_minted_total"] == 4)
        #expect(samples[#"magicbell_fcgi_token_refusals_total{reason="unauthenticated"}"#] == 1)
        #expect(samples[#"magicbell_fcgi_token_refusals_total{reason="method_not_allowed"}"#] == 1)
        #expect(samples[#"magicbell_fcgi_token_refusals_total{reason="not_found"}"#] == 1)
        #expect(samples[#"magicbell_fcgi_token_refusals_total{reason="other"}"#] == 0)
    }

    @Test func adminCallsAndUpstreamLatenciesHaveLabelsAndCumulativeBuckets() {
        let metrics = Metrics()
        metrics.countAdmin(operation: "createProjectJwt", status: 201)
        metrics.countAdmin(operation: "createProjectJwt", status: 201)
        metrics.countAdmin(operation: "none", status: 403)
        metrics.observeUpstream(operation: "createProjectJwt", seconds: 0.003)
        metrics.observeUpstream(operation: "createProjectJwt", seconds: 0.2)
        metrics.observeUpstream(operation: "createProjectJwt", seconds: 99)
        let samples = prometheusSamples(metrics.render())
        #expect(samples[#"magicbell_fcgi_admin_requests_total{operation="createProjectJwt",status="201"}"#] == 2)
        #expect(samples[#"magicbell_fcgi_admin_requests_total{operation="none",status="403"}"#] == 1)
        let bucket = #"magicbell_fcgi_upstream_request_duration_seconds_bucket{operation="createProjectJwt",le="#
        #expect(samples[bucket + #""0.005"}"#] == 1)
        #expect(samples[bucket + #""0.1"}"#] == 1)
        #expect(samples[bucket + #""0.25"}"#] == 2)
        #expect(samples[bucket + #""30.0"}"#] == 2)
        #expect(samples[bucket + #""+Inf"}"#] == 3)
        #expect(samples[#"magicbell_fcgi_upstream_request_duration_seconds_count{operation="createProjectJwt"}"#] == 3)
        #expect(abs((samples[#"magicbell_fcgi_upstream_request_duration_seconds_sum{operation="createProjectJwt"}"#] ?? 0) - 99.203) < 1e-9)
    }

    @Test func everyFamilyHasHelpAndTypeAndEverySampleLineIsWellFormed() throws {
        let metrics = Metrics(activity: WorkerActivity(eventLoops: 2, workers: 3))
        metrics.countAdmin(operation: "metrics", status: 200)
        let text = metrics.render()
        #expect(text.hasSuffix("\n"))
        let sample = try Regex(#"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-z_]+="[^"\\\n]*"(,[a-z_]+="[^"\\\n]*")*\})? [0-9.e+-]+$"#)
        var typed = Set<String>()
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") { typed.insert(String(line.split(separator: " ")[2])) ; continue }
            if line.hasPrefix("# HELP ") { continue }
            #expect(line.wholeMatch(of: sample) != nil, "\(line)")
            let name = String(line.prefix { $0 != "{" && $0 != " " })
            let family = ["_bucket", "_sum", "_count"].reduce(name) { $0.hasSuffix($1) && !typed.contains($0) ? String($0.dropLast($1.count)) : $0 }
            #expect(typed.contains(family), "\(name) has a # TYPE line before it")
        }
        let samples = prometheusSamples(text)
        #expect(samples["magicbell_fcgi_event_loops"] == 2 && samples["magicbell_fcgi_workers"] == 3 && samples["magicbell_fcgi_workers_busy"] == 0)
        #expect(samples[#"magicbell_fcgi_build_info{version="\#(MagicBellFCGIVersion.current)",commit="\#(MagicBellFCGIVersion.commit)"}"#] == 1)
    }
}

extension MetricsTests {
    @Test func metricsAreServedToTheMetricsAndAdminRoutesOnly() throws {
        let metrics = Metrics()
        let responder = try MagicBellResponder(context: Self.context(metrics))
        let path = ["REQUEST_METHOD": "GET", "REQUEST_URI": "/magicbell-admin/metrics", "DOCUMENT_URI": "/magicbell-admin/metrics"]
        #expect(Self.ask(responder, path).status == 404) // no route declared
        let asToken = Self.ask(responder, path.merging(["MAGICBELL_ROUTE": "token"]) { $1 })
        #expect(asToken.status == 401) // a token location serves tokens, whatever the path
        for route in ["metrics", "admin"] {
            let served = Self.ask(responder, path.merging(["MAGICBELL_ROUTE": route]) { $1 })
            #expect(served.status == 200)
            #expect(String(decoding: served.body, as: UTF8.self).contains("magicbell_fcgi_tokens_minted_total 0"))
        }
        // The metrics route serves metrics and nothing else, whatever the path.
        let elsewhere = ["REQUEST_METHOD": "GET", "REQUEST_URI": "/magicbell-admin/jwt/project",
                         "DOCUMENT_URI": "/magicbell-admin/jwt/project", "MAGICBELL_ROUTE": "metrics"]
        let scraped = Self.ask(responder, elsewhere)
        #expect(scraped.status == 200)
        #expect(String(decoding: scraped.body, as: UTF8.self).contains("magicbell_fcgi_tokens_minted_total"))
        #expect(Self.ask(responder, elsewhere.merging(["REQUEST_METHOD": "DELETE"]) { $1 }).status == 405)
        // Metrics need no project token; MagicBell's operations do. A path
        // that is neither is not found, configured or not.
        let other = Self.ask(responder, ["REQUEST_METHOD": "GET", "DOCUMENT_URI": "/magicbell-admin/jwt/project", "MAGICBELL_ROUTE": "admin"])
        #expect(other.status == 503)
        let unknown = Self.ask(responder, ["REQUEST_METHOD": "GET", "DOCUMENT_URI": "/magicbell-admin/metrics/", "MAGICBELL_ROUTE": "admin"])
        #expect(unknown.status == 404)
    }
}
