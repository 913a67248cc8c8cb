#if canImport(Glibc)
import Glibc
#endif
import FastCGIServer
import MagicBellJWT

/// `GET|POST …/magicbell-token` → `{"token", "expires_at", "expires_in"}`.
///
/// The hot path: the minter writes the token straight into the response
/// body; nothing here allocates once the worker's buffers have grown.
final class TokenEndpoint {
    private let minter: UserTokenMinter
    private let clock: @Sendable () -> Int

    init(configuration: Configuration, clock: @escaping @Sendable () -> Int) throws {
        minter = try UserTokenMinter(apiKey: configuration.apiKey, secret: configuration.secret,
                                     ttl: configuration.tokenTTL)
        self.clock = clock
    }

    func respond(to request: some RequestParameters, with response: inout HTTPResponse) throws(APIError) {
        guard let method = request.param("REQUEST_METHOD"), Self.isGetOrPost(method) else {
            throw .methodNotAllowed
        }
        let identity = try Identity.of(request)

        response.body.append(contentsOf: #"{"token":""#.utf8)
        let expiresAt: Int
        do {
            expiresAt = try minter.mint(email: identity.email, externalID: identity.externalID,
                                        issuedAt: clock(), into: &response.body)
        } catch {
            switch error {
            case .invalidUTF8(let claim):
                throw .invalidIdentity(claim == "user_email" ? "\(Identity.emailParam)" : "\(Identity.externalIDParam)")
            case .noIdentity:
                throw .unauthenticated
            }
        }
        response.body.append(contentsOf: #"","expires_at":"#.utf8)
        ClaimsJSON.appendInteger(expiresAt, to: &response.body)
        response.body.append(contentsOf: #","expires_in":"#.utf8)
        ClaimsJSON.appendInteger(minter.ttl, to: &response.body)
        response.body.append(UInt8(ascii: "}"))
        response.addHeader("Content-Type", "application/json")
        APIError.addNoStoreHeaders(to: &response)
    }

    /// Exactly `GET` or `POST`: methods are case-sensitive (RFC 9110 §9.1).
    private static func isGetOrPost(_ method: UnsafeBufferPointer<UInt8>) -> Bool {
        switch method.count {
        case 3: return method[0] == 0x47 && method[1] == 0x45 && method[2] == 0x54 // GET
        case 4: return method[0] == 0x50 && method[1] == 0x4F && method[2] == 0x53 && method[3] == 0x54 // POST
        default: return false
        }
    }
}
