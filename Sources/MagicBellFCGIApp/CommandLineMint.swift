import Glibc
import MagicBellJWT

/// `magicbell-fcgi mint`: the endpoint's answer for an identity given on the
/// command line, from the minter itself, with the endpoint's identity
/// rules. No request is made up and no answer parsed back. It always signs
/// here, with the secret key: under `MAGICBELL_MINT=api` too, where the
/// endpoint would ask MagicBell (`signsUnlikeTheEndpoint`).
public enum CommandLineMint {
    public struct Minted {
        /// The bare token, and the endpoint's JSON answer around it.
        public let token: String
        public let answer: String
    }

    /// Whether the endpoint, under `configuration`, gets its tokens elsewhere.
    public static func signsUnlikeTheEndpoint(_ configuration: Configuration) -> Bool {
        configuration.mintMode == .api
    }

    public static func mint(_ configuration: Configuration, email: String?, externalID: String?,
                            now: Int = Int(time(nil))) throws -> Minted {
        let minter = try UserTokenMinter(apiKey: configuration.apiKey, secret: configuration.secret, ttl: configuration.tokenTTL)
        let emailBytes = Array((email ?? "").utf8), externalIDBytes = Array((externalID ?? "").utf8)
        var answer: [UInt8] = []
        let token = try emailBytes.withUnsafeBufferPointer { emailBuffer throws(EndpointError) in
            try externalIDBytes.withUnsafeBufferPointer { idBuffer throws(EndpointError) in
                guard let user = UserIdentity(email: try Identity.check(emailBuffer, as: Identity.emailParam),
                                              externalID: try Identity.check(idBuffer, as: Identity.externalIDParam)) else {
                    throw .unauthenticated
                }
                return TokenEndpoint.writeAnswer(minter: minter, user: user, issuedAt: now, userKey: configuration.userKey,
                                                 into: &answer)
            }
        }
        return Minted(token: String(decoding: answer[token], as: UTF8.self), answer: String(decoding: answer, as: UTF8.self))
    }
}
