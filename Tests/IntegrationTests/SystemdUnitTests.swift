import Foundation
import Testing
import TestSupport

/// examples/systemd/ (the package's units) must be units systemd accepts as
/// they are. scripts/package-test verifies them installed, with the man page.
@Suite struct SystemdUnitTests {
    @Test func theUnitsPassSystemdAnalyzeVerify() throws {
        let analyze = "/usr/bin/systemd-analyze"
        try #require(FileManager.default.isExecutableFile(atPath: analyze), "systemd-analyze (Debian's systemd) is needed")
        let scratch = try Scratch()
        let source = Project.root.appendingPathComponent("examples/systemd").path
        var units: [String] = []
        for name in ["magicbell-fcgi.socket", "magicbell-fcgi.service"] {
            // The units name the installed binary; point them at the one under test.
            let text = try String(contentsOfFile: "\(source)/\(name)", encoding: .utf8)
                .replacingOccurrences(of: "/usr/bin/magicbell-fcgi", with: Project.binary)
            try text.write(toFile: scratch.file(name), atomically: true, encoding: .utf8)
            units.append(scratch.file(name))
        }
        // --man=no: the unit's Documentation= is the man page the package
        // installs, not on this machine.
        let result = try runProcess(analyze, ["verify", "--man=no"] + units)
        #expect(result.status == 0)
        // Warnings (unknown keys, …) count too.
        #expect(result.stdout.isEmpty && result.stderr.isEmpty, "systemd-analyze verify reported: \(result.stdout)\(result.stderr)")
        let service = try String(contentsOfFile: "\(source)/magicbell-fcgi.service", encoding: .utf8)
        #expect(service.contains("Documentation=man:magicbell-fcgi(8)\n"))
    }
}
