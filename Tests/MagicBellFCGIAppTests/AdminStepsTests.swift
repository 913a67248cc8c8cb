import FastCGIServer
import Foundation
import Logging
import MagicBellJWT
import TestSupport
import Testing
@testable import MagicBellFCGIApp

/// The steps that wrap the admin and metrics routes' handlers: what the
/// audit line and the admin metrics say about refused requests.
@Suite struct AdminStepsTests {
    let lines = LoggingTests.Lines()
    let metrics = Metrics()
    let responder: MagicBellResponder

    init() throws {
        var config = Configuration(apiKey: "pk_test_1", secret: SecretKey(Array("unit-secret".utf8)), tokenTTL: 900)
        // Nothing is sent: every request below is refused before the call.
        config.projectToken = ProjectToken(value: "pt_unit", source: .environment)
        var logger = Logger(label: "test") { [lines] _ in lines.handler }
        logger.logLevel = .info
        responder = try MagicBellResponder(context: AppContext(configuration: config, logger: logger, metrics: metrics))
    }

    func ask(_ params: [String: String]) -> Int {
        var response = HTTPResponse()
        responder.handle(ParameterList(params), &response)
        return response.status
    }

    func auditLines() throws -> [[String: Any]] {
        try lines.all.indices.map { try lines.object($0) }.filter { $0["event"] as? String == "admin" }
    }

    @Test func aRefusedCallStillNamesItsTargetInTheAuditLine() throws {
        let status = ask(["REQUEST_METHOD": "DELETE", "DOCUMENT_URI": "/magicbell-admin/jwt/project/bad\u{1}id",
                          "MAGICBELL_ROUTE": "admin", "MAGICBELL_USER_EXTERNAL_ID": "alice"])
        #expect(status == 400)
        let line = try #require(try auditLines().last)
        #expect(line["operation"] as? String == "discardProjectJwt")
        #expect(line["target"] as? String == "bad\u{1}id")
        #expect(line["error"] as? String == "invalid_id")
        #expect(line["outcome"] as? String == "rejected")
        // A long one is cut: the line stays bounded.
        let long = String(repeating: "x", count: 5000)
        #expect(ask(["REQUEST_METHOD": "DELETE", "DOCUMENT_URI": "/magicbell-admin/jwt/project/" + long, "MAGICBELL_ROUTE": "admin"]) == 400)
        let cut = try #require(try auditLines().last?["target"] as? String)
        #expect(cut.unicodeScalars.count == AdminRequest.maxIDLength + 1 && cut.hasSuffix("…"))
    }

    @Test func theMetricsRoutesRefusalsAreCountedUnderMetrics() {
        #expect(ask(["REQUEST_METHOD": "GET", "DOCUMENT_URI": "/metrics", "MAGICBELL_ROUTE": "metrics",
                     "HTTP_SEC_FETCH_SITE": "cross-site"]) == 403)
        let samples = prometheusSamples(metrics.render())
        #expect(samples[#"magicbell_fcgi_admin_requests_total{operation="metrics",status="403"}"#] == 1)
        #expect(samples[#"magicbell_fcgi_admin_requests_total{operation="none",status="403"}"#] == nil)
    }
}
