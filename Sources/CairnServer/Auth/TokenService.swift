import Crypto
import Foundation
import JWTKit
import Synchronization

/// Issues and verifies access tokens (JWT HS256) and refresh tokens (opaque).
///
/// Access tokens live 15 minutes and are judged by the server clock only. Refresh tokens are
/// `rt_<id>.<mac>` where `mac` is HMAC-SHA256(refresh key, id): the server stores only a SHA-256
/// of the whole token, yet can re-derive a successor it already issued when a client retries a
/// refresh whose response it lost.
struct TokenService: Sendable {
    static let issuer = "cairn"
    static let audience = "cairn-api"
    static let keyID = "cairn-hs256-1"
    static let maximumTokenLength = 4096

    let keys: JWTKeyCollection
    let refreshKey: SymmetricKey
    let clock: ServerClock
    let accessTokenLifetime: TimeInterval
    /// Payloads whose signature and header were already checked, by the exact token text.
    let verified = VerifiedTokens()

    init(secrets: ServerSecrets, clock: ServerClock, accessTokenLifetime: TimeInterval = 15 * 60) async {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(key: SymmetricKey(data: secrets.jwtSigningKey)), digestAlgorithm: .sha256, kid: JWKIdentifier(string: Self.keyID))
        self.keys = keys
        self.refreshKey = SymmetricKey(data: secrets.refreshTokenKey)
        self.clock = clock
        self.accessTokenLifetime = accessTokenLifetime
    }

    // MARK: Access tokens

    /// A signed access token for `userId`. `validAfter` is the user's cut-off of a logout
    /// everywhere (whole seconds, one past the logout): a token issued in the same second as the
    /// logout is dated at the cut-off (at most a second ahead, within the verification leeway),
    /// so that signing in again right after a logout everywhere gives a token that works.
    func issueAccessToken(userId: String, validAfter: Int64 = 0) async throws -> String {
        let seconds = max(self.clock.now.timeIntervalSince1970.rounded(.down), Double(validAfter))
        let now = Date(timeIntervalSince1970: seconds)
        let payload = AccessTokenPayload(
            sub: SubjectClaim(value: userId),
            iss: IssuerClaim(value: Self.issuer),
            aud: AudienceClaim(value: [Self.audience]),
            exp: ExpirationClaim(value: now.addingTimeInterval(self.accessTokenLifetime)),
            nbf: NotBeforeClaim(value: now),
            iat: IssuedAtClaim(value: now),
            jti: IDClaim(value: Identifiers.uuid()),
            typ: "access"
        )
        var header = JWTHeader()
        header.typ = "JWT"
        return try await self.keys.sign(payload, kid: JWKIdentifier(string: Self.keyID), header: header)
    }

    /// The verified claims of `token`: signature, algorithm, key id and every time and audience
    /// claim. Throws for anything else.
    func verifyAccessToken(_ token: String) async throws -> (userId: String, issuedAt: Date, expiresAt: Date) {
        guard token.utf8.count <= Self.maximumTokenLength else { throw TokenRejected() }
        let known = self.verified.payload(of: token)
        let payload: AccessTokenPayload
        if let known {
            payload = known
        } else {
            try Self.checkHeader(of: token)
            payload = try await self.keys.verify(token, as: AccessTokenPayload.self)
        }
        // Time claims depend on the clock, so they are checked on every use, cached or not.
        try payload.verifyStandardClaims(now: self.clock.now, issuer: Self.issuer, audience: Self.audience)
        if known == nil { self.verified.remember(payload, for: token) }
        return (payload.sub.value, payload.iat.value, payload.exp.value)
    }

    /// Refuses any header but `{"alg":"HS256","kid":<ours>,"typ":"JWT"}`: no `none`, no other
    /// algorithm, no unknown key id (jwt-kit would fall back to the default key), no key URLs.
    static func checkHeader(of token: String) throws {
        let segments = token.split(separator: ".", omittingEmptySubsequences: false)
        guard segments.count == 3, !segments[2].isEmpty,
            let headerData = Data(base64URLEncoded: String(segments[0])),
            let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any],
            header["alg"] as? String == "HS256",
            header["kid"] as? String == Self.keyID
        else { throw TokenRejected() }
        guard header["typ"] as? String == "JWT", header.count == 3 else { throw TokenRejected() }
        let allowed: Set<String> = ["alg", "kid", "typ"]
        guard Set(header.keys).isSubset(of: allowed) else { throw TokenRejected() }
    }

    // MARK: Refresh tokens

    /// A new refresh token string for the token id `id`.
    func refreshToken(id: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data(id.utf8), using: self.refreshKey)
        return "rt_\(id).\(Data(mac).base64URLEncoded())"
    }

    /// The token id of a well-formed, authentic refresh token string; `nil` otherwise.
    func refreshTokenID(_ token: String) -> String? {
        guard token.utf8.count <= 256, token.hasPrefix("rt_") else { return nil }
        let body = token.dropFirst(3)
        let parts = body.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty else { return nil }
        let id = String(parts[0])
        let expected = self.refreshToken(id: id)
        guard constantTimeEquals(Array(expected.utf8), Array(token.utf8)) else { return nil }
        return id
    }
}

/// The payloads of access tokens whose header and signature were verified, keyed by the whole
/// token text, so that a client's next request with the same token skips the base64, JSON and
/// HMAC work (about a tenth of a small request's CPU, docs/benchmarks.md, session 6).
///
/// Only what cannot change is cached: the same bytes always carry the same signature and claims.
/// Expiry, not-before, audience and the user's state (disabled, logout everywhere) are still
/// checked on every request. Bounded: when full it is emptied, and tokens are verified afresh.
final class VerifiedTokens: Sendable {
    let capacity: Int
    private let entries = Mutex<[String: AccessTokenPayload]>([:])

    init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    func payload(of token: String) -> AccessTokenPayload? {
        self.entries.withLock { $0[token] }
    }

    func remember(_ payload: AccessTokenPayload, for token: String) {
        self.entries.withLock { entries in
            if entries.count >= self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[token] = payload
        }
    }

}
