import Foundation
import Logging
import Synchronization
import Testing
@testable import MagicBellFCGIApp

/// The JSON log format: one valid JSON object per line, whatever the message.
@Suite struct LoggingTests {
    /// A handler that keeps its lines instead of writing them.
    final class Lines: Sendable {
        private let store = Mutex<[[UInt8]]>([])
        var all: [[UInt8]] { store.withLock { $0 } }
        var handler: JSONLogHandler { JSONLogHandler { line in self.store.withLock { $0.append(line) } } }

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
