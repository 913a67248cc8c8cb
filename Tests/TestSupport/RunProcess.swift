import Foundation

/// What a finished program printed and how it exited.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String

    /// Standard output without the trailing newline.
    public var output: String { stdout.trimmingCharacters(in: .whitespacesAndNewlines) }
}

/// `environment` plus the sanitizer settings of the test run (ASAN_OPTIONS
/// and the like), so that a sanitized binary started by a test reports
/// where `scripts/sanitize` looks, whatever environment the test gives it.
public func withSanitizerOptions(_ environment: [String: String]) -> [String: String] {
    var merged = environment
    for (name, value) in ProcessInfo.processInfo.environment where name.hasSuffix("SAN_OPTIONS") && merged[name] == nil {
        merged[name] = value
    }
    return merged
}

/// Runs a program to completion, feeding `stdin`, and captures its output.
/// A bare name (`python3`, `openssl`) is looked up in PATH.
public func runProcess(_ program: String, _ arguments: [String], environment: [String: String]? = nil,
                       stdin: String? = nil) throws -> ProcessResult {
    let process = Process()
    if program.hasPrefix("/") {
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
    } else {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [program] + arguments
    }
    if let environment { process.environment = withSanitizerOptions(environment) }
    let out = Pipe(), err = Pipe(), input = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
    try input.fileHandleForWriting.close()
    // Read both pipes concurrently, so a chatty stderr cannot block stdout.
    nonisolated(unsafe) var errData = Data()
    let errDone = DispatchSemaphore(value: 0)
    let reader = Thread {
        errData = err.fileHandleForReading.readDataToEndOfFile()
        errDone.signal()
    }
    reader.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    errDone.wait()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus,
                         stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}
