import Foundation
import Logging
import Synchronization
import Testing
@testable import MagicBellFCGIApp

/// The log formats: one valid JSON object per line, whatever the message;
/// journald's priority prefix when stderr is the journal.
@Suite struct LoggingTests {
    /// A handler that keeps its lines instead of writing them.
    final class Lines: Sendable {
        private let store = Mutex<[[UInt8]]>([])
        let format: LogFormat
        let journal: Bool
        init(format: LogFormat = .json, journal: Bool = false) {
            self.format = format
            self.journal = journal
        }
        var all: [[UInt8]] { store.withLock { $0 } }
        var handler: LogLineHandler {
            LogLineHandler(format: format, label: "test", journal: journal) { line in self.store.withLock { $0.append(line) } }
        }
        var text: [String] { all.map { String(decoding: $0, as: UTF8.self) } }

        func object(_ index: Int) throws -> [String: Any] {
            let line = all[index]
            #expect(line.last == UInt8(ascii: "\n") && line.dropLast().allSatisfy { $0 != UInt8(ascii: "\n") })
            return try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
        }
    }

    func logger(_ lines: Lines, level: Logger.Level = .info) -> Logger {
        var logger = Logger(label: "test") { _ in lines.handler }
        logger.logLevel = level
        return logger
    }

    @Test func aLineIsOneJSONObjectWithTimeLevelMessageAndTypedMetadata() throws {
        let lines = Lines()
        logger(lines).info("admin action", metadata: [
            "status": .stringConvertible(201), "duration_ms": .stringConvertible(3.5), "ok": .stringConvertible(true),
            "actor": ["external_id": "alice"], "ids": ["a", "b"], "request_id": "abc",
        ])
        let line = try lines.object(0)
        #expect(line["level"] as? String == "info" && line["message"] as? String == "admin action")
        #expect(line["status"] as? Int == 201 && line["duration_ms"] as? Double == 3.5 && line["ok"] as? Bool == true)
        #expect((line["actor"] as? [String: Any])?["external_id"] as? String == "alice")
        #expect(line["ids"] as? [String] == ["a", "b"] && line["request_id"] as? String == "abc")
        let time = try #require(line["time"] as? String)
        #expect(time.count == 24 && time.hasSuffix("Z"), "2026-11-23T13:45:07.123Z")
        let parsed = try #require(ISO8601DateFormatter.withMilliseconds.date(from: time))
        #expect(abs(parsed.timeIntervalSinceNow) < 5)
    }

    @Test func hostileTextStaysInsideItsStringAndTheLineIsASCII() throws {
        let lines = Lines()
        let nasty = "line\nbreak \"quoted\" \\ tab\t nul\u{0} é 🔔 </script>"
        logger(lines).warning("\(nasty)", metadata: [nasty: .string(nasty)])
        let line = try lines.object(0)
        #expect(line["message"] as? String == nasty && line[nasty] as? String == nasty)
        #expect(lines.all[0].allSatisfy { $0 < 0x80 })
    }

    @Test func metadataNeverReplacesTheLinesOwnFields() throws {
        let lines = Lines()
        logger(lines).error("real", metadata: ["message": "spoofed", "level": "debug", "time": "then"])
        let line = try lines.object(0)
        #expect(line["message"] as? String == "real" && line["level"] as? String == "error")
        #expect(line["message_"] as? String == "spoofed" && line["level_"] as? String == "debug" && line["time_"] as? String == "then")
    }

    @Test func levelsBelowTheThresholdWriteNothing() throws {
        let lines = Lines()
        let log = logger(lines, level: .notice)
        log.info("dropped")
        log.debug("dropped")
        log.notice("kept")
        #expect(lines.all.count == 1)
        #expect(try lines.object(0)["message"] as? String == "kept")
    }

    @Test func loggerMetadataIsMergedAndPerCallMetadataWins() throws {
        let lines = Lines()
        var log = logger(lines)
        log[metadataKey: "worker"] = "3"
        log[metadataKey: "request_id"] = "old"
        log.info("x", metadata: ["request_id": "new"])
        let line = try lines.object(0)
        #expect(line["worker"] as? String == "3" && line["request_id"] as? String == "new")
    }

    /// Integers of any width (a signal is an Int32, a FastCGI request id a
    /// UInt16) and doubles are JSON numbers, as docs/operations.md says.
    @Test func numbersOfEveryIntegerTypeAreJSONNumbers() throws {
        let lines = Lines()
        logger(lines).info("stopping", metadata: [
            "signal": .stringConvertible(Int32(15)), "fastcgi_request_id": .stringConvertible(UInt16(1)),
            "after_seconds": .stringConvertible(10.0), "infinite": .stringConvertible(Double.infinity),
        ])
        let text = String(decoding: lines.all[0], as: UTF8.self)
        #expect(text.contains(#""signal":15"#) && text.contains(#""fastcgi_request_id":1"#) && text.contains(#""after_seconds":10.0"#))
        #expect(try lines.object(0)["infinite"] as? String == "inf", "not a JSON number: a string")
    }

    /// sd-daemon(3): `<N>` before the line, N the syslog priority, for both formats.
    @Test(arguments: LogFormat.allCases) func journalLinesStartWithTheirSyslogPriority(_ format: LogFormat) throws {
        let lines = Lines(format: format, journal: true)
        let log = logger(lines, level: .trace)
        let levels: [(Logger.Level, String)] = [(.trace, "<7>"), (.debug, "<7>"), (.info, "<6>"), (.notice, "<5>"),
                                                (.warning, "<4>"), (.error, "<3>"), (.critical, "<2>")]
        for (level, _) in levels { log.log(level: level, "at \(level)", metadata: ["workers": .stringConvertible(8)]) }
        #expect(lines.text.count == levels.count)
        for ((level, prefix), line) in zip(levels, lines.text) {
            #expect(line.hasPrefix(prefix + (format == .json ? #"{"time":""# : "20")), "\(level): \(line)")
            #expect(line.contains("at \(level)") && line.hasSuffix("\n") && line.dropLast().allSatisfy { $0 != "\n" })
            if format == .json {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8.dropFirst(prefix.utf8.count)))
                #expect((object as? [String: Any])?["workers"] as? Int == 8)
            }
        }
    }

    @Test(arguments: LogFormat.allCases) func withoutTheJournalNoPrefix(_ format: LogFormat) throws {
        let lines = Lines(format: format, journal: false)
        logger(lines).warning("plain", metadata: ["workers": .stringConvertible(8), "who": "a\nb"])
        let line = try #require(lines.text.first)
        #expect(!line.hasPrefix("<"))
        if format == .text {
            #expect(line.contains(" warning test: plain ") && line.contains("workers=8") && line.contains(#"who=a\x0ab"#), "\(line)")
            #expect(line.dropLast().allSatisfy { $0 != "\n" }, "a newline in a value does not start a second entry")
        } else {
            #expect(try lines.object(0)["who"] as? String == "a\nb")
        }
    }

    /// systemd.exec(5): JOURNAL_STREAM is `DEV:INODE` of the journal's
    /// stream; only a descriptor that is that stream counts.
    @Test func theJournalIsTheStreamJournalStreamNames() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(getpid())-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let one = open(directory.appendingPathComponent("one").path, O_CREAT | O_WRONLY, 0o600)
        let other = open(directory.appendingPathComponent("other").path, O_CREAT | O_WRONLY, 0o600)
        defer { close(one); close(other) }
        var status = stat()
        #expect(fstat(one, &status) == 0)
        let named = "\(status.st_dev):\(status.st_ino)"
        #expect(Journal.isStream(one, named: named))
        #expect(!Journal.isStream(other, named: named), "another file: stderr redirected away from the journal")
        for value in [nil, "", "\(status.st_dev)", "\(status.st_dev):", ":\(status.st_ino)", "\(status.st_dev):\(status.st_ino):0",
                      "x:\(status.st_ino)", " \(status.st_dev):\(status.st_ino)"] {
            #expect(!Journal.isStream(one, named: value), "\(value ?? "unset")")
        }
        #expect(!Journal.isStream(-1, named: named), "a closed stderr")
    }

    @Test func logFormatsParse() {
        #expect(LogFormat(rawValue: "json") == .json && LogFormat(rawValue: "text") == .text && LogFormat(rawValue: "JSON") == nil)
    }
}

extension ISO8601DateFormatter {
    static var withMilliseconds: ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }
}
