/// The project's secret key: the HS256 signing key for User JWTs.
///
/// Its description never shows the bytes, so a key that ends up in string
/// interpolation, a log line or an error message leaks nothing.
public struct SecretKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public let bytes: [UInt8]

    public init<Bytes: Collection>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        self.bytes = Array(bytes)
    }

    public var count: Int { bytes.count }
    public var description: String { "SecretKey(<redacted>, \(bytes.count) bytes)" }
    public var debugDescription: String { description }
}
