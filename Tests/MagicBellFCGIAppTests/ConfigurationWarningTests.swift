import Foundation
import Testing
@testable import MagicBellFCGIApp

/// What check-config and serve warn about without refusing (issue 20 §3).
@Suite struct ConfigurationWarningTests {
    @Test func aMisspeltVariableNamesTheClosestKnownOne() {
        #expect(Configuration.warnings(about: ["MAGICBELL_SECERT_KEY": "x"])
                == ["unknown variable MAGICBELL_SECERT_KEY; did you mean MAGICBELL_SECRET_KEY?"])
        #expect(Configuration.warnings(about: ["MAGICBELL_SECRET_KEY_FLIE": "x"])
                == ["unknown variable MAGICBELL_SECRET_KEY_FLIE; did you mean MAGICBELL_SECRET_KEY_FILE?"])
        #expect(Configuration.warnings(about: ["MAGICBELL_TOKEN_TLL": "x"])
                == ["unknown variable MAGICBELL_TOKEN_TLL; did you mean MAGICBELL_TOKEN_TTL?"])
        #expect(Configuration.warnings(about: ["MAGICBELL_COLOUR": "x"])
                == ["unknown variable MAGICBELL_COLOUR; magicbell-fcgi --help lists the variables it reads"], "nothing close")
    }

    @Test func knownVariablesAndOtherNamesAreNotWarnedAbout() {
        var environment = Dictionary(uniqueKeysWithValues: Configuration.knownVariables.map { ($0, "x") })
        environment["PATH"] = "/usr/bin"
        environment["MAGICBELLISH"] = "x"
        #expect(Configuration.warnings(about: environment).isEmpty)
    }

    @Test func requestParamsInTheEnvironmentAreSaidToBeRequestParams() {
        let warnings = Configuration.warnings(about: ["MAGICBELL_ROUTE": "token", "MAGICBELL_USER_EMAIL": "a@example.com",
                                                      "MAGICBELL_USER_EXTERNAL_ID": "a", "MAGICBELL_SITE_ORIGIN": "https://a"])
        #expect(warnings.count == 4)
        #expect(warnings.allSatisfy { $0.contains("is a request param") }, "\(warnings)")
    }

    /// The one list is every variable Configuration reads: each name its
    /// source spells is in it (scripts/man --check greps the same file).
    @Test func theKnownListIsEveryVariableConfigurationReads() throws {
        let source = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/MagicBellFCGIApp/Configuration.swift"), encoding: .utf8)
        let spelt = Set(source.matches(of: /"(MAGICBELL_[A-Z_]+)"/).map { String($0.1) })
        #expect(spelt.count > 10)
        #expect(spelt.subtracting(Configuration.knownVariables).isEmpty, "\(spelt.subtracting(Configuration.knownVariables))")
    }

    @Test func editDistanceCountsASwapAsOneEdit() {
        #expect(Configuration.editDistance("SECERT", "SECRET") == 1)
        #expect(Configuration.editDistance("", "ABC") == 3)
        #expect(Configuration.editDistance("KITTEN", "SITTING") == 3)
    }

    /// RFC 7518 §3.2: a key of at least 256 bits. Shorter still loads.
    @Test func aSecretUnder32BytesIsAWarningNotAnError() throws {
        let short = try Configuration.load(from: ["MAGICBELL_API_KEY": "pk", "MAGICBELL_SECRET_KEY": "12345"])
        #expect(short.warnings == ["MAGICBELL_SECRET_KEY holds a 5-byte key; an HS256 key should be at least 32 bytes (256 bits, RFC 7518 §3.2)"])
        let fromFile = try Configuration.load(from: ["MAGICBELL_API_KEY": "pk", "MAGICBELL_SECRET_KEY_FILE": "/k"]) { _ in
            Array(String(repeating: "k", count: 31).utf8) + [0x0A]
        }
        #expect(fromFile.warnings.count == 1 && fromFile.warnings[0].hasPrefix("MAGICBELL_SECRET_KEY_FILE (/k) holds a 31-byte key"))
        let enough = try Configuration.load(from: ["MAGICBELL_API_KEY": "pk", "MAGICBELL_SECRET_KEY": String(repeating: "k", count: 32)])
        #expect(enough.warnings.isEmpty)
    }
}
