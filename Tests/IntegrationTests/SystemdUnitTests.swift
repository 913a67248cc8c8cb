import Foundation
import Testing
import TestSupport

/// examples/systemd/ must be units systemd accepts as they are.
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
                .replacingOccurrences(of: "/usr/local/bin/magicbell-fcgi", with: Project.binary)
            try text.write(toFile: scratch.file(name), atomically: true, encoding: .utf8)
            units.append(scratch.file(name))
        }
        // --man=no: the unit's Documentation= is the man page scripts/man
        // makes, installed by scripts/install, not on this machine.
        let result = try runProcess(analyze, ["verify", "--man=no"] + units)
        #expect(result.status == 0)
        // Warnings (unknown keys, …) count too.
        #expect(result.stdout.isEmpty && result.stderr.isEmpty, "systemd-analyze verify reported: \(result.stdout)\(result.stderr)")
        let service = try String(contentsOfFile: "\(source)/magicbell-fcgi.service", encoding: .utf8)
        #expect(service.contains("Documentation=man:magicbell-fcgi(8)\n"))
    }
}
