import Glibc
import Foundation
import Testing

/// What the docs say about the files the project ships agrees with the files
/// (issue 20 §2: docs that work when pasted).
@Suite struct ShippedTextTests {
    /// One socket path everywhere: what nginx/, examples/, docs/ and the
    /// README name under /run/magicbell-fcgi/ is the socket unit's ListenStream;
    /// and one binary path, the package's.
    @Test func everyShippedFileNamesTheSocketUnitsPath() throws {
        #expect(Docs.socketPath.hasPrefix("/run/magicbell-fcgi/"), "\(Docs.socketPath)")
        let fm = FileManager.default
        var checked = 0
        for top in ["nginx", "examples", "docs", "README.md"] {
            let path = Project.root.appendingPathComponent(top).path
            let files = fm.subpaths(atPath: path).map { $0.map { "\(top)/\($0)" } } ?? [top]
            for file in files {
                guard let text = try? Docs.text(file) else { continue } // a directory
                checked += 1
                for named in Docs.runPaths(in: text) where named != Docs.socketPath {
                    Issue.record("\(file) names \(named), the socket unit listens on \(Docs.socketPath)")
                }
                // One binary path too: the package's (fcgiwrap answered 403 for a location naming another),
                // but where deployment.md says to remove the old one.
                let migration = file == "docs/deployment.md" ? try Docs.section(file, "### Moving from scripts/install") : ""
                #expect(!text.replacingOccurrences(of: migration, with: "").contains("/usr/local/bin/magicbell-fcgi"),
                        "\(file) names /usr/local/bin/magicbell-fcgi, the package installs /usr/bin/magicbell-fcgi")
            }
        }
        #expect(checked > 20, "read \(checked) files")
    }

    /// docs/deployment.md's table of nginx/: a row for each file (a row may
    /// name several with a glob, `auth/*.conf`), each row a file that is
    /// there, and no count in the words before it that differs from the rows.
    @Test func deploymentListsExactlyTheFilesOfNginx() throws {
        let section = try Docs.section("docs/deployment.md", "## nginx")
        // The first table of the section (the subsections' tables are of other things).
        let table = section.split(separator: "\n", omittingEmptySubsequences: false)
            .drop { !$0.hasPrefix("|") }.prefix { $0.hasPrefix("|") }
        let rows = table.filter { $0.hasPrefix("| `") }
            .compactMap { $0.split(separator: "`", omittingEmptySubsequences: false).dropFirst().first.map(String.init) }
        #expect(!rows.isEmpty, "no table of nginx/ under docs/deployment.md's ## nginx")
        let directory = Project.root.appendingPathComponent("nginx").path
        let files = (FileManager.default.subpaths(atPath: directory) ?? []).filter { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: "\(directory)/\(path)", isDirectory: &isDirectory) && !isDirectory.boolValue
        }.sorted()
        func matches(_ row: String, _ file: String) -> Bool { fnmatch(row, file, FNM_PATHNAME) == 0 }
        for file in files {
            #expect(rows.contains { matches($0, file) }, "nginx/\(file) has no row in docs/deployment.md's table")
        }
        for row in rows {
            #expect(files.contains { matches(row, $0) }, "docs/deployment.md's table names \(row), which is not in nginx/")
        }

        // "Four files in `nginx/`" over six rows: a count, if the text gives one, is the rows'.
        let words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
        let intro = section.prefix { $0 != "|" }.lowercased()
        for (index, word) in words.enumerated() where intro.contains("\(word) files") || intro.contains("\(index + 1) files") {
            #expect(index + 1 == rows.count, "docs/deployment.md says \(word) files in nginx/ above a table of \(rows.count)")
        }
    }

    /// Who runs each shell block of the operator docs, as written (issue 20
    /// §2): the block's file, its heading, how many blocks it has, and the
    /// runner, which must name the file and the heading. A block added
    /// without a runner, or a runner that stopped naming its block, fails
    /// here, so no pasted command goes untested.
    static let shellBlockRunners: [(doc: String, heading: String, blocks: Int, runners: [String])] = [
        ("docs/deployment.md", "Install the package", 3, ["scripts/package-test"]),
        ("docs/deployment.md", "Moving from scripts/install", 1, ["scripts/package-test"]),
        ("docs/deployment.md", "Building the package", 1, ["scripts/package-test"]),
        ("docs/deployment.md", "Running under systemd", 1, ["scripts/package-test"]),
        ("docs/deployment.md", "Running under spawn-fcgi", 1, ["Tests/IntegrationTests/ReadmeCommandsTests.swift"]),
        ("docs/servers.md", "FastCGI: mod_proxy_fcgi", 1, ["scripts/package-test"]),
        ("docs/servers.md", "Servers that do not run as www-data", 1, ["scripts/package-test"]),
        ("docs/servers.md", "CGI: mod_cgid", 1, ["Tests/IntegrationTests/ReadmeCommandsTests.swift"]),
        ("docs/servers.md", "nginx + fcgiwrap", 1, ["Tests/IntegrationTests/ReadmeCommandsTests.swift"]),
        ("docs/operations.md", "Logs", 1, ["scripts/package-test"]),
        ("docs/operations.md", "Metrics", 1, ["scripts/package-test"]),
        ("docs/operations.md", "Health check", 1, ["scripts/package-test"]),
        ("docs/operations.md", "Rotating secrets", 1, ["scripts/package-test"]),
        ("docs/operations.md", "Troubleshooting", 1, ["scripts/package-test", "Tests/IntegrationTests/ReadmeCommandsTests.swift"]),
    ]

    @Test func everyShellBlockOfTheOperatorDocsHasARunner() throws {
        for doc in ["docs/deployment.md", "docs/servers.md", "docs/operations.md"] {
            // Each ```sh block under the nearest heading above it.
            var found: [String: Int] = [:]
            var heading = "", fenced = false
            for line in try Docs.text(doc).split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix("```") {
                    if !fenced && line == "```sh" { found[heading, default: 0] += 1 }
                    fenced.toggle()
                } else if !fenced, line.hasPrefix("#") {
                    heading = String(line.drop { $0 == "#" }.drop { $0 == " " })
                }
            }
            let registered = Self.shellBlockRunners.filter { $0.doc == doc }
            for (heading, count) in found {
                guard let entry = registered.first(where: { $0.heading == heading }) else {
                    Issue.record("\(doc), \"\(heading)\": \(count) sh block(s) that no test runs (add a runner, then a row here)")
                    continue
                }
                #expect(entry.blocks == count, "\(doc), \"\(heading)\": \(count) sh blocks, \(entry.blocks) registered")
                for runner in entry.runners {
                    let text = try Docs.text(runner)
                    #expect(text.contains(doc) && text.contains(heading), "\(runner) does not run \(doc), \"\(heading)\"")
                }
            }
            for entry in registered where found[entry.heading] == nil {
                Issue.record("\(doc) has no sh block under \"\(entry.heading)\" any more")
            }
        }
    }
}
