import CairnCore
import Foundation
import Logging

/// Accounts, sign-in, token rotation and API keys (DESIGN §4, §6).
///
/// Every authentication failure surfaces as the same ``CairnError/unauthorized`` so a caller
/// learns nothing about which check failed; the reason goes to the audit log and debug logs.
public struct AuthService: Sendable {
    let store: any SyncStore
    let tokens: TokenService
    let hasher: PasswordHasher
    let clock: ServerClock
    let logger: Logger
    /// How long a refresh token lives (ms).
    let refreshTokenLifetime: Int64
    /// How long after rotation a retry with the old refresh token gets the same successor (ms).
    let refreshGrace: Int64

    init(
        store: any SyncStore, tokens: TokenService, hasher: PasswordHasher, clock: ServerClock, logger: Logger,
        refreshTokenLifetime: TimeInterval, refreshGrace: TimeInterval
    ) {
        self.store = store
        self.tokens = tokens
        self.hasher = hasher
        self.clock = clock
        self.logger = logger
        self.refreshTokenLifetime = Int64(refreshTokenLifetime * 1000)
        self.refreshGrace = Int64(refreshGrace * 1000)
    }

    var accessTokenLifetime: Int { Int(self.tokens.accessTokenLifetime) }

    // MARK: Register and login

    /// Creates an account with its `default` profile and signs it in.
    func register(_ credentials: Credentials, ip: String?) async throws -> AuthResponse {
        let email = try EmailAddress.validate(credentials.email)
        try PasswordPolicy.validate(credentials.password)
        let now = self.clock.nowMilliseconds
        let userId = Identifiers.uuid()
        let user = StoredUser(
            id: userId, email: email, emailNormalized: EmailAddress.normalized(email),
            passwordHash: await self.hasher.hash(credentials.password), createdAt: now, updatedAt: now
        )
        let profile = StoredProfile(id: Identifiers.uuid(), userId: userId, name: "default", createdAt: now, updatedAt: now)
        try await self.store.createUser(user, defaultProfile: profile)
        try await self.audit(userId: userId, "account.register", ip: ip)
        return try await self.startSession(for: user)
    }

    /// Checks a password and signs the user in.
    func login(_ credentials: Credentials, ip: String?) async throws -> AuthResponse {
        let normalized = EmailAddress.normalized(credentials.email)
        let user =
            credentials.password.count <= PasswordPolicy.maximumLength && normalized.utf8.count <= EmailAddress.maximumLength
            ? try await self.store.user(emailNormalized: normalized) : nil
        let valid = await self.hasher.verify(String(credentials.password.prefix(PasswordPolicy.maximumLength + 1)), hash: user?.passwordHash)
        guard valid, let user, !user.disabled else {
            try await self.audit(userId: user?.id, "login.failure", ip: ip)
            throw CairnError.unauthorized
        }
        try await self.audit(userId: user.id, "login.success", ip: ip)
        return try await self.startSession(for: user)
    }

    /// A new token pair opening a new refresh family.
    private func startSession(for user: StoredUser) async throws -> AuthResponse {
        let now = self.clock.nowMilliseconds
        let id = Identifiers.randomToken(bytes: 18)
        let refresh = self.tokens.refreshToken(id: id)
        try await self.store.insertRefreshToken(
            StoredRefreshToken(
                id: id, userId: user.id, familyId: Identifiers.uuid(), tokenHash: Identifiers.sha256(refresh), createdAt: now,
                expiresAt: now + self.refreshTokenLifetime
            )
        )
        return AuthResponse(
            token: try await self.tokens.issueAccessToken(userId: user.id, validAfter: user.tokensValidAfter), refreshToken: refresh,
            expiresIn: self.accessTokenLifetime, user: user.info
        )
    }

    // MARK: Refresh and logout

    /// Exchanges a refresh token for a new pair. Rotation on every use; a rotated token used
    /// again revokes its whole family, except for an immediate retry (within the grace window,
    /// while the successor is still unused), which gets the same successor back.
    func refresh(_ request: RefreshRequest, ip: String?) async throws -> AuthResponse {
        guard let id = self.tokens.refreshTokenID(request.refreshToken),
            let stored = try await self.store.refreshToken(id: id),
            constantTimeEquals(stored.tokenHash, Identifiers.sha256(request.refreshToken))
        else {
            throw CairnError.unauthorized
        }
        let now = self.clock.nowMilliseconds
        guard stored.revokedAt == nil, stored.expiresAt > now,
            let user = try await self.store.user(id: stored.userId), !user.disabled
        else {
            throw CairnError.unauthorized
        }
        let successorId = Identifiers.randomToken(bytes: 18)
        let successorToken = self.tokens.refreshToken(id: successorId)
        let successor = StoredRefreshToken(
            id: successorId, userId: user.id, familyId: stored.familyId, tokenHash: Identifiers.sha256(successorToken),
            createdAt: now, expiresAt: now + self.refreshTokenLifetime
        )
        switch try await self.store.rotateRefreshToken(id: stored.id, successor: successor, at: now) {
        case .rotated:
            return AuthResponse(
                token: try await self.tokens.issueAccessToken(userId: user.id, validAfter: user.tokensValidAfter), refreshToken: successorToken,
                expiresIn: self.accessTokenLifetime, user: user.info
            )
        case .revoked:
            throw CairnError.unauthorized
        case .alreadyRotated(let existingSuccessorId):
            let current = try await self.store.refreshToken(id: stored.id)
            if let existingSuccessorId, let rotatedAt = current?.rotatedAt, now - rotatedAt <= self.refreshGrace,
                let next = try await self.store.refreshToken(id: existingSuccessorId), next.rotatedAt == nil, next.revokedAt == nil
            {
                // A retry of a refresh whose answer was lost: the same successor, no revocation.
                return AuthResponse(
                    token: try await self.tokens.issueAccessToken(userId: user.id, validAfter: user.tokensValidAfter),
                    refreshToken: self.tokens.refreshToken(id: existingSuccessorId), expiresIn: self.accessTokenLifetime,
                    user: user.info
                )
            }
            try await self.store.revokeRefreshFamily(familyId: stored.familyId, at: now)
            try await self.audit(userId: user.id, "refresh.reuse", detail: "family revoked", ip: ip)
            self.logger.warning("Refresh token reuse detected; family revoked", metadata: ["user": "\(user.id)"])
            throw CairnError.unauthorized
        }
    }

    /// Ends the refresh family of `request.refreshToken`. With `everywhere`, also refuses every
    /// access token issued so far to this user.
    func logout(_ request: RefreshRequest, everywhere: Bool, ip: String?) async throws {
        guard let id = self.tokens.refreshTokenID(request.refreshToken),
            let stored = try await self.store.refreshToken(id: id),
            constantTimeEquals(stored.tokenHash, Identifiers.sha256(request.refreshToken))
        else {
            throw CairnError.unauthorized
        }
        let now = self.clock.nowMilliseconds
        try await self.store.revokeRefreshFamily(familyId: stored.familyId, at: now)
        if everywhere {
            try await self.store.setTokensValidAfter(userId: stored.userId, seconds: self.clock.nowSeconds + 1)
        }
        try await self.audit(userId: stored.userId, everywhere ? "logout.everywhere" : "logout", ip: ip)
    }

    // MARK: Authenticating requests

    /// The identity behind a bearer credential (access token or API key), or `unauthorized`.
    func authenticate(bearer: String) async throws -> AuthIdentity {
        if bearer.hasPrefix(APIKeyFormat.prefix) {
            guard bearer.utf8.count <= 128, let key = try await self.store.apiKey(hash: Identifiers.sha256(bearer)),
                let user = try await self.store.user(id: key.userId), !user.disabled
            else {
                throw CairnError.unauthorized
            }
            let now = self.clock.nowMilliseconds
            if (key.lastUsedAt ?? 0) < now - 60_000 {
                try? await self.store.touchAPIKey(id: key.id, at: now)
            }
            return AuthIdentity(user: user, method: .apiKey(id: key.id, profileId: key.profileId))
        }
        let claims: (userId: String, issuedAt: Date, expiresAt: Date)
        do {
            claims = try await self.tokens.verifyAccessToken(bearer)
        } catch {
            throw CairnError.unauthorized
        }
        let issuedAt = Int64(claims.issuedAt.timeIntervalSince1970.rounded(.down))
        guard let user = try await self.store.user(id: claims.userId), !user.disabled, issuedAt >= user.tokensValidAfter else {
            throw CairnError.unauthorized
        }
        return AuthIdentity(user: user, method: .accessToken(issuedAt: issuedAt, expiresAt: Int64(claims.expiresAt.timeIntervalSince1970)))
    }

    /// Whether an identity established earlier (a long-lived WebSocket) still holds: the user
    /// exists and is enabled, the access token has not expired or been cut off by a logout
    /// everywhere, the API key is not revoked.
    func stillValid(_ identity: AuthIdentity) async throws -> Bool {
        guard let user = try await self.store.user(id: identity.user.id), !user.disabled else { return false }
        switch identity.method {
        case .accessToken(let issuedAt, let expiresAt):
            return self.clock.nowSeconds < expiresAt && issuedAt >= user.tokensValidAfter
        case .apiKey(let id, _):
            return try await self.store.apiKeyIsLive(id: id, userId: user.id)
        }
    }

    // MARK: API keys

    /// Creates an API key; the secret is returned this once.
    func createAPIKey(for identity: AuthIdentity, request: CreateAPIKeyRequest, ip: String?) async throws -> CreatedAPIKey {
        let name = request.name.trimmingWhitespace()
        guard !name.isEmpty, name.count <= 100 else {
            throw CairnError(.validation, "name must be 1 to 100 characters", field: "name")
        }
        var profileId: String? = identity.scopedProfileId
        if let profile = request.profile {
            guard let found = try await self.store.profile(userId: identity.user.id, idOrName: profile),
                identity.scopedProfileId == nil || identity.scopedProfileId == found.id
            else {
                throw CairnError.notFound("Profile")
            }
            profileId = found.id
        }
        let now = self.clock.nowMilliseconds
        let secret = APIKeyFormat.generate()
        let key = StoredAPIKey(
            id: Identifiers.uuid(), userId: identity.user.id, profileId: profileId, name: name,
            prefix: APIKeyFormat.visiblePrefix(of: secret), secretHash: Identifiers.sha256(secret), createdAt: now
        )
        try await self.store.insertAPIKey(key)
        try await self.audit(userId: identity.user.id, "key.create", detail: key.prefix, ip: ip)
        return CreatedAPIKey(key: key.info, secret: secret)
    }

    /// The user's live keys, without secrets.
    func listAPIKeys(for identity: AuthIdentity) async throws -> [APIKeyInfo] {
        try await self.store.apiKeys(userId: identity.user.id).map(\.info)
    }

    /// Revokes one of the user's keys; another user's key id answers like a missing one.
    func revokeAPIKey(for identity: AuthIdentity, id: String, ip: String?) async throws {
        guard id.utf8.count <= 64, try await self.store.revokeAPIKey(userId: identity.user.id, id: id, at: self.clock.nowMilliseconds) else {
            throw CairnError.notFound("API key")
        }
        try await self.audit(userId: identity.user.id, "key.revoke", detail: id, ip: ip)
    }

    // MARK: Audit

    private func audit(userId: String?, _ event: String, detail: String? = nil, ip: String?) async throws {
        try await self.store.appendAudit(AuditEvent(userId: userId, event: event, detail: detail, ip: ip, at: self.clock.nowMilliseconds))
    }
}

/// The shape of API keys: `ck_<8 visible chars>_<43 secret chars>`.
enum APIKeyFormat {
    static let prefix = "ck_"

    static func generate() -> String {
        "\(prefix)\(Identifiers.randomToken(bytes: 6))_\(Identifiers.randomToken(bytes: 32))"
    }

    /// The part safe to show and log: `ck_` and the first 8 characters.
    static func visiblePrefix(of key: String) -> String {
        String(key.prefix(prefix.count + 8))
    }
}

extension StoredUser {
    var info: UserInfo { UserInfo(id: self.id, email: self.email, createdAt: self.createdAt) }
}

extension StoredAPIKey {
    var info: APIKeyInfo {
        APIKeyInfo(id: self.id, name: self.name, prefix: self.prefix, profileId: self.profileId, createdAt: self.createdAt, lastUsedAt: self.lastUsedAt)
    }
}

extension StoredProfile {
    var info: ProfileInfo { ProfileInfo(id: self.id, name: self.name, syncVersion: self.seq, createdAt: self.createdAt) }
}
