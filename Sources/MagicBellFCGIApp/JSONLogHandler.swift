import Glibc
import Logging
import MagicBellJWT

/// swift-log handler writing one JSON object per line to stderr:
/// `{"time", "level", "message", …metadata}`, metadata keys at the top level
/// (sorted), integers and doubles as JSON numbers, nested metadata as
/// objects and arrays. The line is ASCII (non-ASCII is `\u`-escaped) and
/// goes out in one write(2), so lines from concurrent workers never interleave.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let write: @Sendable ([UInt8]) -> Void

    static let reservedKeys: Set<String> = ["time", "level", "message"]

    public init(write: @escaping @Sendable ([UInt8]) -> Void = JSONLogHandler.standardError) {
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?,
                    source: String, file: String, function: String, line: UInt) {
        var fields = metadata
        if let explicit { fields.merge(explicit) { $1 } }
        var out: [UInt8] = []
        out.reserveCapacity(256)
        out.append(contentsOf: #"{"time":""#.utf8)
        Self.appendTime(to: &out)
        out.append(contentsOf: #"","level":""#.utf8)
        out.append(contentsOf: level.rawValue.utf8)
        out.append(contentsOf: #"","message":"#.utf8)
        Self.appendString(message.description, to: &out)
        for key in fields.keys.sorted() {
            out.append(UInt8(ascii: ","))
            // A metadata key never replaces one of the line's own fields.
            Self.appendString(Self.reservedKeys.contains(key) ? key + "_" : key, to: &out)
            out.append(UInt8(ascii: ":"))
            Self.append(fields[key]!, to: &out)
        }
        out.append(contentsOf: "}\n".utf8)
        write(out)
    }

    static func append(_ value: Logger.Metadata.Value, to out: inout [UInt8]) {
        switch value {
        case .string(let text):
            appendString(text, to: &out)
        case .stringConvertible(let convertible):
            switch convertible {
            case let number as Int: out.append(contentsOf: String(number).utf8)
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

/// How `serve` writes its log lines.
public enum LogFormat: String, CaseIterable, Sendable {
    case json, text

    /// JSON unless stderr is a terminal (journald, files and pipes get JSON).
    public static var automatic: LogFormat { isatty(2) == 1 ? .text : .json }

    /// Installs the process's log handler; call once, before any logging.
    public func bootstrap(level: Logger.Level) {
        let format = self
        LoggingSystem.bootstrap { label in
            switch format {
            case .json:
                var handler = JSONLogHandler()
                handler.logLevel = level
                return handler
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}
