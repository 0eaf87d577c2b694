import Foundation
import JWTKit

/// The claims of a Cairn access token.
///
/// jwt-kit checks the signature only; the time and audience claims are checked by
/// ``verifyStandardClaims(now:issuer:audience:)``, which every verification path calls with the
/// server clock (jwt-kit would otherwise accept an expired token).
struct AccessTokenPayload: JWTPayload, Equatable {
    /// The user id.
    var sub: SubjectClaim
    var iss: IssuerClaim
    var aud: AudienceClaim
    var exp: ExpirationClaim
    var nbf: NotBeforeClaim
    var iat: IssuedAtClaim
    var jti: IDClaim
    /// Token purpose; always `access` (a refresh token is not a JWT at all).
    var typ: String

    func verify(using algorithm: some JWTAlgorithm) async throws {
        // Deliberately empty: claims depend on the injected server clock and are checked in
        // `verifyStandardClaims`, which `TokenService.verify` always calls.
    }

    /// Checks `exp`, `nbf`, `iat`, `iss`, `aud` and `typ` against the server clock.
    func verifyStandardClaims(now: Date, issuer: String, audience: String, leeway: TimeInterval = 30) throws {
        try self.exp.verifyNotExpired(currentDate: now.addingTimeInterval(-leeway))
        try self.nbf.verifyNotBefore(currentDate: now.addingTimeInterval(leeway))
        guard self.iat.value <= now.addingTimeInterval(leeway) else { throw TokenRejected() }
        guard self.iss.value == issuer else { throw TokenRejected() }
        try self.aud.verifyIntendedAudience(includes: audience)
        guard self.aud.value.count == 1, self.typ == "access", !self.sub.value.isEmpty else { throw TokenRejected() }
    }
}

/// A token failed verification; the reason is deliberately not surfaced.
struct TokenRejected: Error {}
