import Glibc
import FastCGIServer
import FoundationEssentials
import MagicBellAPI
import MagicBellJWT

/// `GET|POST …/magicbell-token` → `{"token", "expires_at", "expires_in"}`,
/// and `"user_key"` with `MAGICBELL_USER_KEY=on`.
///
/// With `MAGICBELL_MINT=local` (the hot path) the minter writes the token
/// straight into the response body; nothing here allocates once the worker's
/// buffers have grown. With `MAGICBELL_MINT=api` each token is created by
/// MagicBell (createUserJwt), so it can be listed and revoked.
final class TokenEndpoint {
    private let minter: UserTokenMinter
    private let context: AppContext
    private let clock: @Sendable () -> Int
    /// `MAGICBELL_USER_KEY=on`.
    private let userKey: Bool
    /// Set in api mode.
    private let api: (client: JWTServiceClient, tokenName: String)?

    init(context: AppContext) throws {
        let configuration = context.configuration
        minter = try UserTokenMinter(apiKey: configuration.apiKey, secret: configuration.secret,
                                     ttl: configuration.tokenTTL)
        self.context = context
        clock = context.clock
        userKey = configuration.userKey
        if configuration.mintMode == .api, let client = context.client {
            api = (client, configuration.mintTokenName)
        } else {
            api = nil
        }
    }

    /// `MAGICBELL_MINT=api`: each token waits on MagicBell.
    var mintsOnMagicBell: Bool { api != nil }

    /// `user` is the request's checked identity (its method is checked too).
    func respond(to request: MagicBellRequest<some RequestParameters & RequestBodyReader>, for user: UserIdentity,
                 with response: inout HTTPResponse) throws(EndpointError) {
        if let api {
            try respondFromMagicBell(user, api.client, tokenName: api.tokenName, with: &response)
            return
        }
        _ = Self.writeAnswer(minter: minter, user: user, issuedAt: clock(), userKey: userKey, into: &response.body)
        Self.addAnswerHeaders(&response)
    }

    /// The local answer, `{"token":"…","expires_at":…,"expires_in":…}`
    /// (and `"user_key":"…"` when asked), appended to `body`; returns where
    /// the token is in it. The endpoint and `magicbell-fcgi mint`
    /// (`CommandLineMint`) both write it here.
    static func writeAnswer(minter: UserTokenMinter, user: UserIdentity, issuedAt: Int, userKey: Bool,
                            into body: inout [UInt8]) -> Range<Int> {
        body.append(contentsOf: #"{"token":""#.utf8)
        let start = body.count
        let expiresAt = minter.mint(user, issuedAt: issuedAt, into: &body)
        let token = start..<body.count
        body.append(UInt8(ascii: "\""))
        appendRest(expiresAt: expiresAt, expiresIn: minter.ttl, userKey: userKey ? (minter, user) : nil, to: &body)
        return token
    }

    /// Appends `,"expires_at":…,"expires_in":…` after the token, then
    /// `,"user_key":"…"` when asked, and the closing brace.
    private static func appendRest(expiresAt: Int, expiresIn: Int, userKey: (UserTokenMinter, UserIdentity)?,
                                   to body: inout [UInt8]) {
        body.append(contentsOf: #","expires_at":"#.utf8)
        ClaimsJSON.appendInteger(expiresAt, to: &body)
        body.append(contentsOf: #","expires_in":"#.utf8)
        ClaimsJSON.appendInteger(expiresIn, to: &body)
        if let (minter, user) = userKey {
            // Standard base64 is JSON-safe as it is: letters, digits, + / =.
            body.append(contentsOf: #","user_key":""#.utf8)
            minter.appendUserKey(for: user, to: &body)
            body.append(UInt8(ascii: "\""))
        }
        body.append(UInt8(ascii: "}"))
    }

    private static func addAnswerHeaders(_ response: inout HTTPResponse) {
        response.addHeader("Content-Type", "application/json")
        EndpointError.addNoStoreHeaders(to: &response)
    }

    /// `MAGICBELL_MINT=api`: the token comes from createUserJwt. Never a
    /// silent local fallback: MagicBell's failure is the answer's failure.
    private func respondFromMagicBell(_ user: UserIdentity, _ client: JWTServiceClient, tokenName: String,
                                      with response: inout HTTPResponse) throws(EndpointError) {
        let body = CreateUserTokenRequest(email: user.email?.string, externalID: user.externalID?.string,
                                          name: tokenName, expiry: minter.ttl)
        guard context.mintGate.tryEnter() else {
            response.addHeader("Retry-After", "1")
            throw .mintBusy
        }
        defer { context.mintGate.leave() }
        let created: CreatedToken
        do {
            created = try context.perform(JwtService.createUserJwt.call(body: body), with: client).value
        } catch {
            throw EndpointError(upstream: error)
        }
        guard (1...8192).contains(created.token.utf8.count),
              created.token.utf8.allSatisfy({ PercentEncoding.isUnreserved($0) && $0 != UInt8(ascii: "~") }) else {
            throw .upstreamInvalid("not a created token")
        }
        warnIfRealtimeWouldRefuse(created.token)
        let now = clock()
        let expiresAt = created.expiresAt.flatMap { (try? CreatedExpiry.plain.parse($0)) ?? (try? CreatedExpiry.fractional.parse($0)) }
            .map { Int($0.timeIntervalSince1970) } ?? now + minter.ttl
        response.body.append(contentsOf: #"{"token":"#.utf8)
        try? ClaimsJSON.appendString(created.token, to: &response.body)
        Self.appendRest(expiresAt: expiresAt, expiresIn: max(0, expiresAt - now), userKey: userKey ? (minter, user) : nil,
                        to: &response.body)
        Self.addAnswerHeaders(&response)
    }
}

extension TokenEndpoint {
    /// MagicBell's realtime client reads `api_key` from the token's payload
    /// (`JSON.parse(atob(payload))` in magicbell-js's realtime.ts) and
    /// refuses a token without it; MagicBell's own examples show user tokens
    /// without one (RS256, the key under other claims). Read, not verified:
    /// the answer already came over TLS from MagicBell. Warned once per
    /// configuration, never per request.
    func warnIfRealtimeWouldRefuse(_ token: String) {
        guard !context.warnedAboutMissingAPIKey.load(ordering: .relaxed) else { return }
        let parts = token.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        let payload = parts.count == 3 ? Base64URL.decode(parts[1]).flatMap(JSONValue.parse) : nil
        guard payload?["api_key"]?.string == nil else { return }
        guard !context.warnedAboutMissingAPIKey.exchange(true, ordering: .relaxed) else { return }
        context.logger.warning("""
            MAGICBELL_MINT=api: the token MagicBell's createUserJwt returned has no top-level api_key claim; \
            MagicBell's realtime client reads api_key from the token and will refuse it (see docs/api.md, Mint modes)
            """)
    }
}

/// How MagicBell writes a created token's `expires_at`. Made on first use
/// (static lets are lazy): a format style costs a calendar and a time zone,
/// which a CGI process on the local mint path must not pay for.
private enum CreatedExpiry {
    static let plain = Date.ISO8601FormatStyle()
    static let fractional = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
}
