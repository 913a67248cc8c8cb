import Glibc
import Foundation
import Testing
import TestSupport

/// scripts/install into a DESTDIR, then --uninstall.
@Suite struct InstallTests {
    static let script = Project.root.appendingPathComponent("scripts/install").path

    func mode(_ path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int
    }

    @Test func installPutsEachFileInPlaceAndUninstallKeepsOnlyTheConfiguration() throws {
        let scratch = try Scratch()
        let root = scratch.file("root")
        // The man page's content is scripts/man --check's (in scripts/test); here, only where it goes.
        try ".TH MAGICBELL-FCGI 8\n".write(toFile: scratch.file("magicbell-fcgi.8"), atomically: true, encoding: .utf8)
        let env = ["DESTDIR": root, "BINARY": Project.binary, "MANPAGE": scratch.file("magicbell-fcgi.8"),
                   "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        let installed = try runProcess(Self.script, [], environment: env)
        #expect(installed.status == 0, "\(installed.stderr)")
        let expected = [
            "/usr/local/bin/magicbell-fcgi": 0o755, "/usr/local/share/man/man8/magicbell-fcgi.8": 0o644,
            "/etc/nginx/snippets/magicbell-token.conf": 0o644, "/etc/nginx/snippets/magicbell-fastcgi.conf": 0o644,
            "/etc/nginx/snippets/magicbell-admin.conf": 0o644, "/etc/nginx/snippets/magicbell-metrics.conf": 0o644,
            "/etc/nginx/snippets/magicbell-auth/basic.conf": 0o644,
            "/etc/nginx/snippets/magicbell-auth/oauth2-proxy.conf": 0o644, "/etc/nginx/snippets/magicbell-auth/app-session.conf": 0o644,
            "/etc/nginx/conf.d/magicbell-upstream.conf": 0o644,
            "/etc/systemd/system/magicbell-fcgi.socket": 0o644, "/etc/systemd/system/magicbell-fcgi.service": 0o644,
            "/etc/magicbell-fcgi/magicbell-fcgi.env": 0o600, "/etc/magicbell-fcgi": 0o700,
        ]
        for (path, wanted) in expected {
            #expect(mode(root + path) == wanted, "\(path)")
        }
        // The service runs what was installed, where the unit says.
        let unit = try String(contentsOfFile: root + "/etc/systemd/system/magicbell-fcgi.service", encoding: .utf8)
        #expect(unit.contains("ExecStart=/usr/local/bin/magicbell-fcgi serve"))
        #expect(try runProcess(root + "/usr/local/bin/magicbell-fcgi", ["--version"]).status == 0)

        // A second install keeps the edited configuration.
        try "MAGICBELL_API_KEY=edited\n".write(toFile: root + "/etc/magicbell-fcgi/magicbell-fcgi.env", atomically: false, encoding: .utf8)
        #expect(try runProcess(Self.script, [], environment: env).status == 0)
        #expect(try String(contentsOfFile: root + "/etc/magicbell-fcgi/magicbell-fcgi.env", encoding: .utf8) == "MAGICBELL_API_KEY=edited\n")

        let removed = try runProcess(Self.script, ["--uninstall"], environment: env)
        #expect(removed.status == 0)
        #expect(removed.stdout.contains("kept"))
        for path in expected.keys where !path.hasPrefix("/etc/magicbell-fcgi") {
            #expect(!FileManager.default.fileExists(atPath: root + path), "\(path) is left")
        }
        #expect(FileManager.default.fileExists(atPath: root + "/etc/magicbell-fcgi/magicbell-fcgi.env"))
    }

    @Test func withoutABuildItSaysWhatToRun() throws {
        let scratch = try Scratch()
        let result = try runProcess(Self.script, [], environment: ["DESTDIR": scratch.file("root"), "BINARY": "/nonexistent",
                                                                    "PATH": "/usr/bin:/bin"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("swift build -c release"))
    }
}
