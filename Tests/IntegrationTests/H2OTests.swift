import Foundation
import Testing
import TestSupport

/// What is particular to h2o 2.2 (Debian's h2o) and examples/h2o/; the
/// checks every recipe shares are in ServerRecipeTests.
@Suite(.serialized) struct H2OTests {
    @Test func theAdminRouteKnowsTheSitesOwnOrigin() throws {
        let stack = try ServerRecipeTests.FastCGI.h2o.start()
        let origin = "http://127.0.0.1:\(stack.server.port)"
        let same = try stack.server.admin("POST", "jwt/project", json: #"{"name":"origin"}"#, headers: [("Origin", origin)])
        #expect(same.status == 201, "a same-origin POST: \(same.text)")
        let foreign = try stack.server.admin("POST", "jwt/project", json: #"{"name":"origin"}"#,
                                             headers: [("Origin", "https://evil.example")])
        #expect(foreign.status == 403 && foreign.errorCode == "cross_origin")
    }

    @Test func onlyTheRightPasswordGetsAToken() throws {
        let stack = try ServerRecipeTests.FastCGI.h2o.start()
        let right = try stack.server.get("/magicbell-token", headers: [HTTP.basic("alice", "alice")])
        #expect(right.status == 200, "\(right.text) \(stack.server.errorLog)")
        let claims = try PyJWT.decode(try #require(right.json?["token"] as? String))
        #expect(claims["user_external_id"] as? String == "alice")
        // The last byte, the first byte, a prefix, nothing, more.
        for wrong in ["alicf", "blice", "alic", "", "alicealice"] {
            let answer = try stack.server.get("/magicbell-token", headers: [HTTP.basic("alice", wrong)])
            #expect(answer.status == 401 && answer.json?["token"] == nil, "alice:\(wrong): \(answer.status)")
            #expect(answer.header("WWW-Authenticate") == #"Basic realm="MagicBell""#)
        }
        #expect(try stack.server.get("/magicbell-token", headers: [HTTP.basic("nobody", "alice")]).status == 401)
        #expect(try stack.server.get("/magicbell-token", headers: [("Authorization", "Bearer alice")]).status == 401)
        #expect(try stack.server.get("/magicbell-admin/metrics", headers: [HTTP.basic("prometheus", "prometheus")]).status == 200)
        #expect(try stack.server.get("/magicbell-admin/metrics", headers: [HTTP.basic("prometheus", "prometheuz")]).status == 401)
    }

    /// Behaviour cannot show a constant-time compare, so this reads the
    /// recipe: it must not hand the password check to h2o's Htpasswd, whose
    /// validate compares the hashes with `==` (htpasswd.rb: `return encoded
    /// == hash`), nor compare a password or hash with anything that stops at
    /// the first difference.
    @Test func theRecipeComparesNoPasswordOrHashWithAnEarlyExit() throws {
        let text = try String(contentsOfFile: Project.root.appendingPathComponent("examples/h2o/magicbell-auth.rb").path, encoding: .utf8)
        let code = text.split(separator: "\n").map(String.init)
            .filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("#") }
            .map { $0.components(separatedBy: " # ")[0] }
        for call in ["Htpasswd.new", "@htpasswd", ".validate(", ".lookup(", "Htpasswd.validate"] {
            #expect(!code.contains { $0.contains(call) }, "magicbell-auth.rb checks passwords with h2o's Htpasswd (\(call)), which compares with ==")
        }
        let comparisons = ["==", "!=", "eql?", "equal?", "start_with?", "end_with?", "casecmp", "<=>", "include?", "=~"]
        let secrets = ["pass", "hash", "digest", "secret", "crypt", "stored", "expected", "given", "token68", "encoded"]
        for line in code where comparisons.contains(where: line.contains) {
            #expect(!secrets.contains { line.lowercased().contains($0) }, "compares a secret with an early exit: \(line)")
        }
        #expect(code.contains { $0.contains("MagicBellAuth.same_bytes?(") }, "the constant-time compare is called")
    }
}
