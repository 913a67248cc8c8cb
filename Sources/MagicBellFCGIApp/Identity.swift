import FastCGIServer
import MagicBellJWT

/// Who the user is, taken only from the params the web server sets with
/// `fastcgi_param` in the protected location, and checked once.
///
/// Nothing else is identity: not `HTTP_*` params (client headers) and not
/// `REMOTE_USER`, which Debian's `fastcgi_params` fills from any
/// `Authorization: Basic` header even where `auth_basic` is off.
enum Identity {
    static let externalIDParam: StaticString = "MAGICBELL_USER_EXTERNAL_ID"
    static let emailParam: StaticString = "MAGICBELL_USER_EMAIL"
    /// Longer identities are refused with 400.
    static let maxBytes = 1024

    /// The identity `request` carries, or nil if it has none (empty values
    /// count as absent). A value that is too long or not UTF-8 is a 400
    /// naming its param.
    static func of(_ request: some RequestParameters) throws(EndpointError) -> UserIdentity? {
        UserIdentity(email: try value(request, emailParam), externalID: try value(request, externalIDParam))
    }

    private static func value(_ request: some RequestParameters,
                              _ name: StaticString) throws(EndpointError) -> UserIdentity.Value? {
        try check(request.param(name), as: name)
    }

    /// One identity value, by the rules of the param `name` (the command
    /// line's identities too: `CommandLineMint`).
    static func check(_ bytes: UnsafeBufferPointer<UInt8>?, as name: StaticString) throws(EndpointError) -> UserIdentity.Value? {
        if let bytes, bytes.count > maxBytes { throw .identityTooLong("\(name)") }
        switch UserIdentity.check(bytes) {
        case .absent: return nil
        case .present(let value): return value
        case .invalidUTF8: throw .invalidIdentity("\(name)")
        }
    }
}

extension UserIdentity.Value {
    /// For logs and MagicBell's API; the bytes are checked UTF-8.
    var string: String { String(decoding: bytes, as: UTF8.self) }
}
