import Testing
@testable import MagicBellFCGIApp

/// `check-config --env-file` reads an EnvironmentFile= as systemd does.
///
/// Each expected value is what Debian 12's systemd 252 made of the same
/// line: its environment.d generator
/// (/usr/lib/systemd/user-environment-generators/30-systemd-environment-d-generator)
/// reads files with the same parser as EnvironmentFile= (`parse_env_file_internal`),
/// then expands `$` references, which no line here has. PID 1 is not
/// systemd where the tests run, so no unit could be started to read them.
@Suite struct EnvironmentFileTests {
    static let table: [(line: String, name: String, value: String?)] = [
        ("A=plain\n", "A", "plain"),
        ("B=  spaced value  \n", "B", "spaced value"),
        ("  C  =  leading\n", "C", "leading"),
        ("# comment\nD=after-comment\n", "D", "after-comment"),
        ("; semicolon comment\nE=after-semicolon\n", "E", "after-semicolon"),
        ("F=value # not a comment\n", "F", "value # not a comment"),
        (#"G="double \"quoted\" back\\slash \n kept""# + "\n", "G", #"double "quoted" back\slash \n kept"#),
        (#"H='single \" \\ raw'"# + "\n", "H", #"single \" \\ raw"#),
        (#"I=unquoted\ escaped\"x"# + "\n", "I", #"unquoted escaped"x"#),
        ("J=continued\\\nline\n", "J", "continuedline"),
        ("K=\"quoted\\\ncontinued\"\n", "K", "quotedcontinued"),
        ("L=\"multi\nline\"\n", "L", "multi\nline"),
        ("N=a\"b c\"d  \n", "N", "a\"b c\"d"),
        ("# comment ending in backslash \\\nO=swallowed-by-the-comment\n", "O", nil),
        ("P=tab\there\t\n", "P", "tab\there"),
        ("Q=crlf\r\n", "Q", "crlf"),
        ("R='a'  'b'\n", "R", "ab"),
        ("NOEQUALS\n", "NOEQUALS", nil),
        ("S=one\nS=two\n", "S", "two"),
        ("T=last-no-newline", "T", "last-no-newline"),
        ("M=\n", "M", ""),
    ]

    @Test(arguments: table.indices) func aLineReadsAsSystemdReadsIt(_ index: Int) {
        let (line, name, value) = Self.table[index]
        let parsed = EnvironmentFile.parse(Array(line.utf8))
        #expect(parsed.dictionary[name] == value, "\(line.debugDescription)")
    }

    @Test func theWholeFileAtOnceGivesTheSameValuesInOrder() {
        let parsed = EnvironmentFile.parse(Array(Self.table.map(\.line).joined().utf8))
        // T has no newline: in one file it runs into the next line, M.
        let expected = Self.table.filter { $0.value != nil && $0.name != "T" && $0.name != "M" && $0.name != "S" }.map(\.name)
            + ["S", "T"]
        #expect(parsed.variables.map(\.name) == expected)
        #expect(parsed.dictionary["T"] == "last-no-newlineM=")
        #expect(parsed.ignored.isEmpty)
    }

    @Test func invalidNamesAreIgnoredWithAReason() {
        let parsed = EnvironmentFile.parse(Array("export MAGICBELL_API_KEY=pk\n1X=a\nGOOD=yes\n".utf8))
        #expect(parsed.variables.map(\.name) == ["GOOD"])
        #expect(parsed.ignored.count == 2)
        #expect(parsed.ignored[0].hasPrefix(#"line 1: "export MAGICBELL_API_KEY" is not a variable name"#), "\(parsed.ignored)")
        #expect(parsed.refused == nil)
    }

    /// systemd 252's check_utf8ness_and_warn (env-file.c) logs "ignoring"
    /// but returns an error, which fails the whole EnvironmentFile= and so
    /// the service's start: a name or a value that is not UTF-8 refuses the file.
    @Test func aNameOrValueThatIsNotUTF8RefusesTheWholeFile() {
        let value = EnvironmentFile.parse(Array("GOOD=yes\n".utf8) + [0x42, 0x3D, 0xFF, 0x0A] + Array("LATER=1\n".utf8))
        #expect(value.refused?.hasPrefix("line 2: the value of B is not UTF-8") == true, "\(String(describing: value.refused))")
        let name = EnvironmentFile.parse([0x41, 0xC3, 0x3D, 0x31, 0x0A])
        #expect(name.refused?.hasPrefix("line 1: a name is not UTF-8") == true, "\(String(describing: name.refused))")
        #expect(EnvironmentFile.parse(Array("A=é\n".utf8)).refused == nil, "UTF-8 beyond ASCII is fine")
    }

    @Test func aNULByteEndsTheFileAsInC() {
        let parsed = EnvironmentFile.parse(Array("A=1\n".utf8) + [0] + Array("B=2\n".utf8))
        #expect(parsed.dictionary == ["A": "1"])
    }
}
