import Foundation
import TestSupport

/// The text the project ships to users (docs/, README.md, nginx/, examples/),
/// read as written, so that the tests run and check what users copy.
enum Docs {
    /// The responder's socket as shipped: the socket unit's `ListenStream=`.
    /// Every recipe and doc names this path and no other (issue 20: Apache
    /// answered 503 as pasted, its recipe naming another).
    static let socketPath: String = {
        let unit = (try? text("examples/systemd/magicbell-fcgi.socket")) ?? ""
        let line = unit.split(separator: "\n").first { $0.hasPrefix("ListenStream=") }
        return line.map { String($0.dropFirst("ListenStream=".count)) } ?? "(no ListenStream= in magicbell-fcgi.socket)"
    }()

    /// Every path under the socket's directory that `text` names.
    static func runPaths(in text: String) -> [String] {
        let directory = URL(fileURLWithPath: socketPath).deletingLastPathComponent().path
        let pattern = try! NSRegularExpression(pattern: NSRegularExpression.escapedPattern(for: directory) + "/[A-Za-z0-9._-]+")
        return pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { String(text[Range($0.range, in: text)!]) }
    }

    /// A file of the repository.
    static func text(_ path: String) throws -> String {
        try String(contentsOfFile: Project.root.appendingPathComponent(path).path, encoding: .utf8)
    }

    /// The part of a Markdown file under `heading` (the whole line, e.g.
    /// "### Running under spawn-fcgi"), up to the next heading of the same
    /// or a higher level.
    static func section(_ path: String, _ heading: String) throws -> String {
        let level = heading.prefix { $0 == "#" }.count
        var lines: [Substring] = []
        var inside = false, fenced = false
        for line in try text(path).split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") { fenced.toggle() }
            let depth = fenced ? 0 : line.prefix { $0 == "#" }.count  // a shell comment is no heading
            if inside, depth > 0, depth <= level, line.dropFirst(depth).hasPrefix(" ") { break }
            if line == heading { inside = true }
            if inside { lines.append(line) }
        }
        guard inside else { throw Sockets.Failure(description: "\(path) has no heading \(heading)") }
        return lines.joined(separator: "\n")
    }

    /// The fenced code blocks of a Markdown text in `language` (```sh), without their fences.
    static func codeBlocks(_ markdown: String, language: String = "sh") -> [String] {
        var blocks: [String] = []
        var current: [Substring]?
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            if current == nil {
                if line == "```\(language)" { current = [] }
            } else if line == "```" {
                blocks.append(current!.joined(separator: "\n") + "\n")
                current = nil
            } else {
                current!.append(line)
            }
        }
        return blocks
    }

    /// The one block of `language` under `heading` that contains `marker`.
    static func block(_ path: String, _ heading: String, containing marker: String, language: String = "sh") throws -> String {
        let found = codeBlocks(try section(path, heading), language: language).filter { $0.contains(marker) }
        guard found.count == 1 else {
            throw Sockets.Failure(description: "\(path), \(heading): \(found.count) \(language) blocks with \(marker), not one")
        }
        return found[0]
    }

    /// `text` with each key replaced by its value; each key must be in it
    /// (a doc that no longer names a path the test moves fails here).
    static func substituting(_ text: String, _ replacements: [(String, String)]) throws -> String {
        var result = text
        for (old, new) in replacements {
            guard result.contains(old) else { throw Sockets.Failure(description: "the block names no \(old):\n\(text)") }
            result = result.replacingOccurrences(of: old, with: new)
        }
        return result
    }
}

/// A doc's shell block run as written, as root, in a private mount namespace
/// (`unshare -m`) whose /etc is an overlay over the real one: what the block
/// writes there (users, /etc/magicbell-fcgi, /etc/apache2) lands in `upper`,
/// and the real /etc is never changed. The same `upper` serves every run, as
/// a second paste on the same host would find the first one's files.
final class PrivateEtc {
    let upper: String
    private let work: String

    init(scratch: Scratch) throws {
        upper = scratch.file("etc-upper")
        work = scratch.file("etc-work")
        for directory in [upper, work] { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
    }

    /// unshare's arguments: mount the overlay, run `prelude` (sh), then the
    /// block with bash (as a root shell on Debian would) in the repository's
    /// root, where the docs' `cp examples/…` lines expect to be.
    func arguments(_ block: String, prelude: String = "") -> [String] {
        let setup = """
        mount -t overlay overlay -o lowerdir=/etc,upperdir=\(upper),workdir=\(work) /etc || exit 97
        \(prelude)
        cd '\(Project.root.path)' && exec /bin/bash -c "$1"
        """
        return ["-m", "/bin/sh", "-c", setup, "sh", block]
    }

    /// Runs the block to its end (a block that leaves no daemon behind).
    func run(_ block: String, environment: [String: String] = [:]) throws -> ProcessResult {
        var env = environment
        env["PATH"] = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin"
        let result = try runProcess("/usr/bin/unshare", arguments(block), environment: env)
        guard result.status != 97 else { throw Sockets.Failure(description: "no overlay over /etc: \(result.stderr)") }
        return result
    }

    /// A file's path in the private /etc (`/etc/x` → `upper/x`).
    func file(_ path: String) -> String { upper + path.dropFirst("/etc".count) }
}
