import FastCGIServer

/// Request params held in memory: what unit tests and the fuzz targets
/// build requests from.
public final class ParameterList: RequestParameters, RequestBodyReader {
    private var storage: [String: UnsafeMutableBufferPointer<UInt8>] = [:]
    private let body: [UInt8]

    public init(_ params: [String: String], body: [UInt8] = []) {
        self.body = body
        for (name, value) in params { set(name, Array(value.utf8)) }
    }

    /// Raw bytes, for values that are not valid UTF-8.
    public init(bytes params: [String: [UInt8]], body: [UInt8] = []) {
        self.body = body
        for (name, value) in params { set(name, value) }
    }

    private func set(_ name: String, _ value: [UInt8]) {
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(value.count, 1))
        _ = buffer.initialize(from: value)
        storage[name] = UnsafeMutableBufferPointer(rebasing: buffer[..<value.count])
    }

    deinit {
        for buffer in storage.values { buffer.deallocate() }
    }

    public func readBody(limit: Int) -> RequestBody {
        body.count > limit ? .tooLarge : .complete(body)
    }

    public func param(_ name: StaticString) -> UnsafeBufferPointer<UInt8>? {
        storage["\(name)"].map { UnsafeBufferPointer($0) }
    }
}

extension StringProtocol {
    /// Without leading and trailing whitespace (what a person may type
    /// around a list item in an environment variable or a media type).
    package var trimmingWhitespace: String {
        guard let first = firstIndex(where: { !$0.isWhitespace }),
              let last = lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(self[first...last])
    }
}
