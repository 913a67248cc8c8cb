/// Who a token is for, checked once: each claim value is non-empty valid
/// UTF-8 (so it can be a JSON string), and at least one of the two is
/// present, as MagicBell requires. The minter signs it without checking
/// again. The bytes are borrowed: valid while the caller's buffer is.
public struct UserIdentity {
    /// One checked claim value; made only by `check`.
    public struct Value {
        public let bytes: UnsafeBufferPointer<UInt8>
        fileprivate init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }
    }

    /// What `check` found in one value.
    public enum Checked {
        /// nil or empty: an empty value counts as absent.
        case absent
        case present(Value)
        case invalidUTF8
    }

    public let email: Value?
    public let externalID: Value?

    /// nil when both are absent.
    public init?(email: Value?, externalID: Value?) {
        guard email != nil || externalID != nil else { return nil }
        self.email = email
        self.externalID = externalID
    }

    /// Strict UTF-8 (RFC 3629), with a fast path for ASCII.
    public static func check(_ bytes: UnsafeBufferPointer<UInt8>?) -> Checked {
        guard let bytes, !bytes.isEmpty else { return .absent }
        return ClaimsJSON.isValidUTF8(bytes) ? .present(Value(bytes)) : .invalidUTF8
    }
}
