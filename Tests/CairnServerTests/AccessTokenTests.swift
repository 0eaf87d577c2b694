import CairnCore
import Crypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import JWTKit
import Testing

@testable import CairnServer

/// Tokens minted with the server's own secret but bad claims, and tokens tampered with, all get
/// the same 401 body.
@Suite("Access tokens")
struct AccessTokenTests {
    struct Claims: JWTPayload {
        var sub: SubjectClaim
        var iss: IssuerClaim
        var aud: AudienceClaim
        var exp: ExpirationClaim
        var nbf: NotBeforeClaim
        var iat: IssuedAtClaim
        var jti: IDClaim
        var typ: String
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    static func mint(
        secret: Data, userId: String, issuer: String = TokenService.issuer, audience: [String] = [TokenService.audience],
        issuedAt: Date = Date(), expires: Date = Date().addingTimeInterval(900), notBefore: Date = Date(),
        typ: String = "access", kid: String = TokenService.keyID
    ) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(key: SymmetricKey(data: secret)), digestAlgorithm: .sha256, kid: JWKIdentifier(string: kid))
        var header = JWTHeader()
        header.typ = "JWT"
        return try await keys.sign(
            Claims(
                sub: SubjectClaim(value: userId), iss: IssuerClaim(value: issuer), aud: AudienceClaim(value: audience),
                exp: ExpirationClaim(value: expires), nbf: NotBeforeClaim(value: notBefore), iat: IssuedAtClaim(value: issuedAt),
                jti: IDClaim(value: UUID().uuidString), typ: typ
            ),
            kid: JWKIdentifier(string: kid), header: header
        )
    }

    static func base64URL(_ string: String) -> String { Data(string.utf8).base64URLEncoded() }

    @Test func validMintedTokenIsAccepted() async throws {
        try await withTestServer { client, components in
            let session = try await client.register("mint@example.com")
            let secret = try ServerSecrets.loadOrCreate(in: components.configuration.dataDirectory).jwtSigningKey
            // The control case: a token minted the same way with good claims works, so the
            // refusals below are due to the claim under test.
            let token = try await Self.mint(secret: secret, userId: session.user.id)
            #expect(try await client.get("/api/me", token: token).status == .ok)
        }
    }

    @Test func refusesEveryBadTokenWithTheSameBody() async throws {
        try await withTestServer { client, components in
            let session = try await client.register("tamper@example.com")
            let secret = try ServerSecrets.loadOrCreate(in: components.configuration.dataDirectory).jwtSigningKey
            let user = session.user.id
            let now = Date()
            let otherSecret = Data(repeating: 1, count: 32)
            let good = session.token
            let parts = good.split(separator: ".").map(String.init)

            var cases: [(String, String)] = [
                ("expired an hour ago", try await Self.mint(secret: secret, userId: user, issuedAt: now.addingTimeInterval(-4500), expires: now.addingTimeInterval(-3600), notBefore: now.addingTimeInterval(-4500))),
                ("expired past leeway", try await Self.mint(secret: secret, userId: user, issuedAt: now.addingTimeInterval(-1000), expires: now.addingTimeInterval(-31), notBefore: now.addingTimeInterval(-1000))),
                ("not yet valid", try await Self.mint(secret: secret, userId: user, issuedAt: now, expires: now.addingTimeInterval(7200), notBefore: now.addingTimeInterval(3600))),
                ("issued in the future", try await Self.mint(secret: secret, userId: user, issuedAt: now.addingTimeInterval(3600), expires: now.addingTimeInterval(7200))),
                ("wrong audience", try await Self.mint(secret: secret, userId: user, audience: ["someone-else"])),
                ("extra audience", try await Self.mint(secret: secret, userId: user, audience: [TokenService.audience, "other"])),
                ("wrong issuer", try await Self.mint(secret: secret, userId: user, issuer: "evil")),
                ("wrong purpose", try await Self.mint(secret: secret, userId: user, typ: "refresh")),
                ("unknown kid", try await Self.mint(secret: secret, userId: user, kid: "other-key")),
                ("kid path traversal", try await Self.mint(secret: secret, userId: user, kid: "../../etc/passwd")),
                ("another deployment's key", try await Self.mint(secret: otherSecret, userId: user)),
                ("unknown user", try await Self.mint(secret: secret, userId: UUID().uuidString)),
                ("alg none", "\(Self.base64URL(#"{"alg":"none","typ":"JWT","kid":"\#(TokenService.keyID)"}"#)).\(parts[1])."),
                ("alg None", "\(Self.base64URL(#"{"alg":"None","typ":"JWT"}"#)).\(parts[1])."),
                ("alg HS512 header", "\(Self.base64URL(#"{"alg":"HS512","typ":"JWT","kid":"\#(TokenService.keyID)"}"#)).\(parts[1]).\(parts[2])"),
                ("jku header", "\(Self.base64URL(#"{"alg":"HS256","typ":"JWT","kid":"\#(TokenService.keyID)","jku":"http://evil"}"#)).\(parts[1]).\(parts[2])"),
                ("empty signature", "\(parts[0]).\(parts[1])."),
                ("truncated", String(good.dropLast(5))),
                ("four segments", good + ".abc"),
                ("two segments", "\(parts[0]).\(parts[1])"),
                ("flipped payload", "\(parts[0]).\(Self.base64URL(#"{"sub":"\#(user)","admin":true}"#)).\(parts[2])"),
                ("garbage", "not-a-token"),
                ("non base64", "%%%.%%%.%%%"),
                ("huge", String(repeating: "a", count: 65536)),
                ("refresh token as access token", session.refreshToken),
                ("unknown api key", "ck_AAAAAAAA_" + String(repeating: "B", count: 43)),
            ]
            // A payload bit flipped inside an otherwise valid token
            var flipped = Array(parts[1].utf8)
            flipped[flipped.count / 2] = flipped[flipped.count / 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            cases.append(("bit flip", "\(parts[0]).\(String(decoding: flipped, as: UTF8.self)).\(parts[2])"))

            for (name, token) in cases {
                let response = try await client.get("/api/me", token: token)
                #expect(response.status == .unauthorized, "\(name)")
                #expect(String(buffer: response.body) == uniformUnauthorizedBody, "\(name)")
            }
            for header in ["Basic abc", "Bearer", "Bearer ", "bearer\(good)", "Token \(good)"] {
                let response = try await client.get("/api/me", headers: [.authorization: header])
                #expect(response.status == .unauthorized, "\(header)")
                #expect(String(buffer: response.body) == uniformUnauthorizedBody)
            }
            // The token in the query string is ignored
            let query = try await client.get("/api/me?token=\(good)&access_token=\(good)")
            #expect(query.status == .unauthorized)
        }
    }

    @Test func tokenExpiresAfterFifteenMinutesOnTheServerClock() async throws {
        let manual = ManualClock()
        try await withTestServer(clock: manual.clock) { client, _ in
            let session = try await client.register("clock@example.com")
            manual.advance(by: 14 * 60)
            #expect(try await client.get("/api/me", token: session.token).status == .ok)
            manual.advance(by: 2 * 60)
            let late = try await client.get("/api/me", token: session.token)
            #expect(late.status == .unauthorized)
            #expect(String(buffer: late.body) == uniformUnauthorizedBody)
        }
    }
}
