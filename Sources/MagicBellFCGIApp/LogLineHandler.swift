import Glibc
import Logging
import MagicBellJWT

/// swift-log handler writing one line per entry to stderr, in one write(2),
/// so lines from concurrent workers never interleave.
///
/// JSON (`--log-format json`): one object per line, `{"time", "level",
/// "message", …metadata}`, metadata keys at the top level (sorted), numbers
/// and booleans as JSON numbers and booleans, nested metadata as objects and
/// arrays; the line is ASCII (non-ASCII is `\u`-escaped). Text: `time level
/// label: message key=value…`, control characters escaped, so one entry is
/// still one line.
///
/// With `journal`, each line starts with its syslog priority, `<4>` for a
/// warning (sd-daemon(3)): journald strips the prefix and files the line
/// under that priority, so `journalctl -p warning` filters.
public struct LogLineHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let format: LogFormat
    private let label: String
    private let journal: Bool
    private let write: @Sendable ([UInt8]) -> Void

    static let reservedKeys: Set<String> = ["time", "level", "message"]

    public init(format: LogFormat = .json, label: String = "magicbell-fcgi", journal: Bool = false,
                write: @escaping @Sendable ([UInt8]) -> Void = LogLineHandler.standardError) {
        self.format = format
        self.label = label
        self.journal = journal
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// sd-daemon(3)'s prefixes: SD_DEBUG `<7>` … SD_CRIT `<2>` (syslog(3)'s
    /// LOG_DEBUG … LOG_CRIT). swift-log has no emergency or alert, and its
    /// trace is finer than debug, which is the lowest syslog has.
    static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    // swift-log 1.16's entry point (the flat log(level:message:...) is deprecated there).
    public func log(event: LogEvent) {
        let level = event.level, message = event.message
        var fields = metadata
        if let explicit = event.metadata { fields.merge(explicit) { $1 } }
        var out: [UInt8] = []
        out.reserveCapacity(256)
        if journal {
            out.append(UInt8(ascii: "<"))
            out.append(UInt8(ascii: "0") + UInt8(Self.syslogPriority(level)))
            out.append(UInt8(ascii: ">"))
        }
        switch format {
        case .json: Self.appendJSON(level, message, fields, to: &out)
        case .text: appendText(level, message, fields, to: &out)
        }
        out.append(UInt8(ascii: "\n"))
        write(out)
    }

    private static func appendJSON(_ level: Logger.Level, _ message: Logger.Message, _ fields: Logger.Metadata,
                                   to out: inout [UInt8]) {
        out.append(contentsOf: #"{"time":""#.utf8)
        appendTime(to: &out)
        out.append(contentsOf: #"","level":""#.utf8)
        out.append(contentsOf: level.rawValue.utf8)
        out.append(contentsOf: #"","message":"#.utf8)
        appendString(message.description, to: &out)
        for key in fields.keys.sorted() {
            out.append(UInt8(ascii: ","))
            // A metadata key never replaces one of the line's own fields.
            appendString(reservedKeys.contains(key) ? key + "_" : key, to: &out)
            out.append(UInt8(ascii: ":"))
            append(fields[key]!, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    private func appendText(_ level: Logger.Level, _ message: Logger.Message, _ fields: Logger.Metadata,
                            to out: inout [UInt8]) {
        Self.appendTime(to: &out)
        out.append(UInt8(ascii: " "))
        out.append(contentsOf: level.rawValue.utf8)
        out.append(UInt8(ascii: " "))
        Self.appendPlain(label, to: &out)
        out.append(contentsOf: ": ".utf8)
        Self.appendPlain(message.description, to: &out)
        for key in fields.keys.sorted() {
            out.append(UInt8(ascii: " "))
            Self.appendPlain(key, to: &out)
            out.append(UInt8(ascii: "="))
            if case .string(let text) = fields[key]! {
                Self.appendPlain(text, to: &out)
            } else {
                Self.append(fields[key]!, to: &out) // numbers as they are, the rest as JSON
            }
        }
    }

    /// Text as it is, but for control characters (`\n` would start a second
    /// line, a second journal entry): written as `\xHH`.
    static func appendPlain(_ text: String, to out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        for byte in text.utf8 {
            if byte < 0x20 || byte == 0x7F {
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "x"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            } else {
                out.append(byte)
            }
        }
    }

    static func append(_ value: Logger.Metadata.Value, to out: inout [UInt8]) {
        switch value {
        case .string(let text):
            appendString(text, to: &out)
        case .stringConvertible(let convertible):
            // Any integer type (a signal number is an Int32, a FastCGI request id a UInt16).
            switch convertible {
            case let number as any BinaryInteger: out.append(contentsOf: "\(number)".utf8)
            case let number as Double where number.isFinite: out.append(contentsOf: "\(number)".utf8)
            case let flag as Bool: out.append(contentsOf: (flag ? "true" : "false").utf8)
            default: appendString(convertible.description, to: &out)
            }
        case .dictionary(let dictionary):
            out.append(UInt8(ascii: "{"))
            for (index, key) in dictionary.keys.sorted().enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                appendString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                append(dictionary[key]!, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        case .array(let array):
            out.append(UInt8(ascii: "["))
            for (index, element) in array.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                append(element, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
    }

    static func appendString(_ text: String, to out: inout [UInt8]) {
        try? ClaimsJSON.appendString(text, to: &out) // a String is always valid UTF-8
    }

    /// UTC, to the millisecond: `2026-11-23T13:45:07.123Z`.
    static func appendTime(to out: inout [UInt8]) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func digits(_ value: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
                divisor /= 10
            }
        }
        digits(Int(parts.tm_year) + 1900, 4); out.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2); out.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2); out.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2); out.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2); out.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2); out.append(UInt8(ascii: "."))
        digits(now.tv_nsec / 1_000_000, 3); out.append(UInt8(ascii: "Z"))
    }

    public static let standardError: @Sendable ([UInt8]) -> Void = { line in
        line.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(2, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 { if errno == EINTR { continue }; return }
                offset += written
            }
        }
    }
}

/// Whether stderr is the journal.
public enum Journal {
    /// systemd.exec(5), `$JOURNAL_STREAM`: when stdout or stderr is
    /// connected to the journal, systemd sets it to the stream's device and
    /// inode, in decimal, as `DEV:INODE`. The variable is inherited by
    /// whatever the unit starts, and a program started with its stderr
    /// elsewhere (spawn-fcgi's child, a shell redirect) must not write
    /// prefixes into a file, so fd 2 itself is compared with it, as
    /// sd-daemon(3) recommends.
    public static func isStream(_ descriptor: Int32, named journalStream: String?) -> Bool {
        guard let journalStream else { return false }
        let parts = journalStream.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return false }
        return UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode
    }

    /// Whether this process's stderr is the journal.
    public static var isStandardError: Bool {
        isStream(2, named: getenv("JOURNAL_STREAM").map { String(cString: $0) })
    }
}

/// How `serve` writes its log lines.
public enum LogFormat: String, CaseIterable, Sendable {
    case json, text

    /// JSON unless stderr is a terminal (journald, files and pipes get JSON).
    public static var automatic: LogFormat { isatty(2) == 1 ? .text : .json }

    /// Installs the process's log handler; call once, before any logging.
    public func bootstrap(level: Logger.Level) {
        let format = self
        let journal = Journal.isStandardError
        LoggingSystem.bootstrap { label in
            var handler = LogLineHandler(format: format, label: label, journal: journal)
            handler.logLevel = level
            return handler
        }
    }
}
