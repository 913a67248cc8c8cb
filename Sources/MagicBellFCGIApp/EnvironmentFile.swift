/// A systemd `EnvironmentFile=` (systemd.exec(5)), read as systemd reads
/// it, so that `check-config --env-file` checks what the service gets.
///
/// The rules are those of systemd's env-file parser (`parse_env_file_internal`
/// in src/basic/env-file.c, as in Debian 12's systemd 252): `KEY=VALUE`
/// lines; lines starting with `#` or `;` are comments (a comment line that
/// ends in `\` swallows the next line, as 252 does); whitespace around keys
/// and unquoted values is dropped; a value may be made of unquoted, `'single'`
/// and `"double"` quoted parts, quotes counting only where a part starts; in
/// single quotes every byte is literal; in double quotes `\` escapes only
/// `"`, `\`, `` ` `` and `$` (other pairs are kept as they are); unquoted,
/// `\` makes the next byte literal; `\` before a newline continues the value
/// on the next line, quoted or not. No variable is expanded. A line without
/// `=` is ignored; a later assignment replaces an earlier one; a name that
/// is not a valid variable name is ignored with a warning (systemd logs it
/// and drops it). A name or a value that is not UTF-8 refuses the whole file:
/// 252's `check_utf8ness_and_warn` logs "ignoring" but returns an error,
/// which fails the `EnvironmentFile=` and so the service's start.
public enum EnvironmentFile {
    public struct Parsed: Equatable {
        /// In file order, each name once (its last value).
        public var variables: [(name: String, value: String)] = []
        /// What systemd would log and ignore, one line each.
        public var ignored: [String] = []
        /// Why systemd would refuse the whole file (the service does not
        /// start), or nil. The assignments after it are not read.
        public var refused: String?

        public static func == (lhs: Parsed, rhs: Parsed) -> Bool {
            lhs.variables.map(\.name) == rhs.variables.map(\.name) && lhs.variables.map(\.value) == rhs.variables.map(\.value)
                && lhs.ignored == rhs.ignored && lhs.refused == rhs.refused
        }

        public var dictionary: [String: String] {
            Dictionary(variables.map { ($0.name, $0.value) }) { $1 }
        }
    }

    private enum State {
        case preKey, key, preValue, value, valueEscape, singleQuoted, doubleQuoted, doubleQuotedEscape, comment, commentEscape
    }

    public static func parse(_ bytes: [UInt8]) -> Parsed {
        var parsed = Parsed()
        var state = State.preKey
        var key: [UInt8] = [], value: [UInt8] = []
        // Where trailing whitespace of the key, and of an unquoted value, starts.
        var keyWhitespace: Int?, valueWhitespace: Int?
        var line = 1

        func push() {
            if let cut = keyWhitespace { key.removeSubrange(cut...) }
            record(key, value, line: line, into: &parsed)
            key = []
            value = []
        }
        func endLine() {
            push()
            line += 1
        }
        func isNewline(_ byte: UInt8) -> Bool { byte == 0x0A || byte == 0x0D }

        // systemd reads the file as a C string: a NUL byte ends it.
        for byte in bytes.prefix(while: { $0 != 0 }) {
            // A newline ends the line in these three states alike.
            if isNewline(byte), state == .key || state == .preValue || state == .value {
                if state == .key {
                    key = [] // no `=`: not an assignment
                    line += 1
                } else {
                    if state == .value, let cut = valueWhitespace { value.removeSubrange(cut...) }
                    endLine()
                }
                state = .preKey
                continue
            }
            switch state {
            case .preKey:
                if byte == UInt8(ascii: "#") || byte == UInt8(ascii: ";") {
                    state = .comment
                } else if !Self.isWhitespace(byte) {
                    state = .key
                    keyWhitespace = nil
                    key.append(byte)
                }
            case .key:
                if byte == UInt8(ascii: "=") {
                    state = .preValue
                    valueWhitespace = nil
                } else {
                    Self.append(byte, to: &key, trailingWhitespace: &keyWhitespace)
                }
            case .preValue:
                if byte == UInt8(ascii: "'") {
                    state = .singleQuoted
                } else if byte == UInt8(ascii: "\"") {
                    state = .doubleQuoted
                } else if byte == UInt8(ascii: "\\") {
                    state = .valueEscape
                } else if !Self.isWhitespace(byte) {
                    state = .value
                    value.append(byte)
                }
            case .value:
                if byte == UInt8(ascii: "\\") {
                    state = .valueEscape
                    valueWhitespace = nil
                } else {
                    Self.append(byte, to: &value, trailingWhitespace: &valueWhitespace)
                }
            case .valueEscape:
                state = .value
                if !isNewline(byte) { value.append(byte) } // an escaped newline continues the line
            case .singleQuoted:
                if byte == UInt8(ascii: "'") { state = .preValue } else { value.append(byte) }
            case .doubleQuoted:
                if byte == UInt8(ascii: "\"") {
                    state = .preValue
                } else if byte == UInt8(ascii: "\\") {
                    state = .doubleQuotedEscape
                } else {
                    value.append(byte)
                }
            case .doubleQuotedEscape:
                state = .doubleQuoted
                if [UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "`"), UInt8(ascii: "$")].contains(byte) {
                    value.append(byte)
                } else if byte != 0x0A {
                    value.append(contentsOf: [UInt8(ascii: "\\"), byte]) // kept, as a shell keeps it
                }
            case .comment:
                if byte == UInt8(ascii: "\\") {
                    state = .commentEscape
                } else if isNewline(byte) {
                    state = .preKey
                    line += 1
                }
            case .commentEscape:
                state = .comment // systemd 252: the escaped byte, a newline too, stays in the comment
            }
        }
        switch state {
        case .preValue, .value, .valueEscape, .singleQuoted, .doubleQuoted, .doubleQuotedEscape:
            if state == .value, let cut = valueWhitespace { value.removeSubrange(cut...) }
            push() // the last line, without its newline
        case .preKey, .key, .comment, .commentEscape:
            break
        }
        return parsed
    }

    /// systemd's WHITESPACE: space, tab, newline, carriage return.
    private static func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }

    /// Appends `byte`, keeping where the run of whitespace at the end starts
    /// (systemd drops it from keys and unquoted values).
    private static func append(_ byte: UInt8, to buffer: inout [UInt8], trailingWhitespace start: inout Int?) {
        if !isWhitespace(byte) { start = nil } else if start == nil { start = buffer.count }
        buffer.append(byte)
    }

    private static func record(_ key: [UInt8], _ value: [UInt8], line: Int, into parsed: inout Parsed) {
        guard parsed.refused == nil else { return }  // systemd stopped reading there
        let refusal = "systemd refuses the whole file, and the service does not start"
        guard let name = String(validating: key, as: UTF8.self) else {
            parsed.refused = "line \(line): a name is not UTF-8; \(refusal)"
            return
        }
        guard let text = String(validating: value, as: UTF8.self) else {
            parsed.refused = "line \(line): the value of \(isValidName(name) ? name : "a variable") is not UTF-8; \(refusal)"
            return
        }
        guard isValidName(name) else {
            parsed.ignored.append("line \(line): \"\(String(name.prefix(64)))\" is not a variable name; systemd ignores it")
            return
        }
        parsed.variables.removeAll { $0.name == name }
        parsed.variables.append((name, text))
    }

    /// As systemd's `env_name_is_valid`: letters, digits and `_`, not
    /// starting with a digit.
    static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
        }
    }
}
