import FastCGIServer

/// Who the user is, taken only from the params nginx sets with
/// `fastcgi_param` in the protected location.
///
/// Nothing else is identity: not `HTTP_*` params (client headers) and not
/// `REMOTE_USER`, which Debian's `fastcgi_params` fills from any
/// `Authorization: Basic` header even where `auth_basic` is off.
public struct Identity {
    public static let externalIDParam: StaticString = "MAGICBELL_USER_EXTERNAL_ID"
    public static let emailParam: StaticString = "MAGICBELL_USER_EMAIL"
    /// Longer identities are refused with 400.
    public static let maxBytes = 1024

    public let email: UnsafeBufferPointer<UInt8>?
    public let externalID: UnsafeBufferPointer<UInt8>?

    /// The identity of `request`; an empty value counts as absent.
    public static func of(_ request: some RequestParameters) throws(EndpointError) -> Identity {
        let email = try value(request, emailParam)
        let externalID = try value(request, externalIDParam)
        guard email != nil || externalID != nil else { throw .unauthenticated }
        return Identity(email: email, externalID: externalID)
    }

    private static func value(_ request: some RequestParameters,
                              _ name: StaticString) throws(EndpointError) -> UnsafeBufferPointer<UInt8>? {
        guard let value = request.param(name), !value.isEmpty else { return nil }
        guard value.count <= maxBytes else { throw .identityTooLong("\(name)") }
        return value
    }
}
