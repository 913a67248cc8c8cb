import Foundation
import Testing
import TestSupport

/// Whose certificate passes for MagicBell's: the name check on the HTTPS
/// call, through the real binary (CGI mode, the admin route) against an
/// HTTPS fake MagicBell whose test CA is the whole of SSL_CERT_FILE, so that
/// these hold whichever HTTP client carries the call. The rules are
/// libcurl's (RFC 6125 §6.4.4, §6.4.3): the subject's CN is not consulted
/// when the certificate has a DNS or IP subjectAltName, and `*` matches only
/// as the whole leftmost label. Each refusal has a control that passes
/// through the same setup, so a 502 is the name check and nothing else.
@Suite struct UpstreamTLSTests {
    /// The admin route's answer when MagicBell is `apiURL`, served by `fake`.
    func list(_ apiURL: String, _ fake: FakeMagicBell, trusting authority: TestCertificates.Authority,
              hosts: String? = nil) throws -> CGIModeTests.Answer {
        var environment = CGIModeTests.listProjectTokens(fake)
        environment["MAGICBELL_API_URL"] = apiURL
        environment["SSL_CERT_FILE"] = authority.certificate
        return try CGIModeTests().cgi(environment, hosts: hosts)
    }

    func expectRefused(_ answer: CGIModeTests.Answer, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(answer.status == 502 && answer.errorCode == "upstream_unreachable",
                "\(answer.status) \(answer.body) \(answer.stderr)", sourceLocation: sourceLocation)
    }

    @Test func theCommonNameDoesNotCountOnceTheCertificateHasASubjectAltName() throws {
        let authority = try TestCertificates.authority()
        let ipOnly = try FakeMagicBell(tls: try authority.issue(commonName: "localhost", subjectAltName: "IP:127.0.0.1"))
        let named = try FakeMagicBell(tls: try authority.issue(commonName: "localhost", subjectAltName: "DNS:localhost"))
        // Controls: the CA is trusted, localhost resolves, and each certificate passes for the name its SAN holds.
        let byAddress = try list("https://127.0.0.1:\(ipOnly.port)/v2", ipOnly, trusting: authority)
        #expect(byAddress.status == 200, "\(byAddress.body) \(byAddress.stderr)")
        let byName = try list("https://localhost:\(named.port)/v2", named, trusting: authority)
        #expect(byName.status == 200, "\(byName.body) \(byName.stderr)")
        // CN=localhost, but the SANs name only 127.0.0.1.
        expectRefused(try list("https://localhost:\(ipOnly.port)/v2", ipOnly, trusting: authority))
        // Without any SAN the CN still counts, as with libcurl: a change of client changes nothing.
        let cnOnly = try FakeMagicBell(tls: try authority.issue(commonName: "localhost", subjectAltName: nil))
        let byCN = try list("https://localhost:\(cnOnly.port)/v2", cnOnly, trusting: authority)
        #expect(byCN.status == 200, "\(byCN.body) \(byCN.stderr)")
    }

    @Test func aPartialWildcardMatchesNothing() throws {
        let scratch = try Scratch()
        let hosts = scratch.file("hosts")
        try "127.0.0.1 localhost foo.example.com\n".write(toFile: hosts, atomically: true, encoding: .utf8)
        let authority = try TestCertificates.authority()
        let partial = try FakeMagicBell(tls: try authority.issue(commonName: "partial wildcard", subjectAltName: "DNS:f*.example.com"))
        let whole = try FakeMagicBell(tls: try authority.issue(commonName: "whole wildcard", subjectAltName: "DNS:*.example.com"))
        // The control: foo.example.com resolves to the fake, and a whole-label wildcard passes for it.
        let control = try list("https://foo.example.com:\(whole.port)/v2", whole, trusting: authority, hosts: hosts)
        #expect(control.status == 200, "\(control.body) \(control.stderr)")
        expectRefused(try list("https://foo.example.com:\(partial.port)/v2", partial, trusting: authority, hosts: hosts))
    }

    /// Issue 21: MAGICBELL_API_URL with an internationalized host (libcurl
    /// looks it up, and checks the certificate, as punycode) or a trailing
    /// dot (the name's absolute form, the certificate's name without it).
    @Test func anIDNHostAndATrailingDotWork() throws {
        let scratch = try Scratch()
        let hosts = scratch.file("hosts")
        // glibc's files lookup matches names as written: the absolute form is
        // listed too, as DNS would answer it.
        try "127.0.0.1 localhost xn--bcher-kva.example magicbell.test magicbell.test.\n".write(toFile: hosts, atomically: true, encoding: .utf8)
        let authority = try TestCertificates.authority()
        let idn = try FakeMagicBell(tls: try authority.issue(commonName: "idn", subjectAltName: "DNS:xn--bcher-kva.example"))
        let byIDN = try list("https://bücher.example:\(idn.port)/v2", idn, trusting: authority, hosts: hosts)
        #expect(byIDN.status == 200, "\(byIDN.body) \(byIDN.stderr)")
        let plain = try FakeMagicBell(tls: try authority.issue(commonName: "dot", subjectAltName: "DNS:magicbell.test"))
        let byDot = try list("https://magicbell.test.:\(plain.port)/v2", plain, trusting: authority, hosts: hosts)
        #expect(byDot.status == 200, "\(byDot.body) \(byDot.stderr)")
        // The control: a name the certificate does not hold is still refused.
        expectRefused(try list("https://localhost:\(idn.port)/v2", idn, trusting: authority, hosts: hosts))
    }
}
