#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `POST /api/auth/register` and `POST /api/auth/login` body.
public struct Credentials: Codable, Sendable, Equatable {
    /// The account email (compared case-insensitively).
    public var email: String
    /// The password, 8 to 1,024 characters.
    public var password: String

    public init(email: String, password: String) {
        self.email = email
        self.password = password
    }
}

/// A user as the API shows it.
public struct UserInfo: Codable, Sendable, Equatable {
    /// The user id (UUID).
    public var id: String
    /// The email as registered.
    public var email: String
    /// When the account was created (ms since 1970).
    public var createdAt: Int64?

    public init(id: String, email: String, createdAt: Int64? = nil) {
        self.id = id
        self.email = email
        self.createdAt = createdAt
    }
}

/// Answer of register, login and refresh.
public struct AuthResponse: Codable, Sendable, Equatable {
    /// The JWT access token (HS256, valid `expiresIn` seconds).
    public var token: String
    /// The opaque refresh token; rotated on every use.
    public var refreshToken: String
    /// Seconds until `token` expires.
    public var expiresIn: Int
    /// Always `Bearer`.
    public var tokenType: String
    /// The signed-in user.
    public var user: UserInfo

    public init(token: String, refreshToken: String, expiresIn: Int, user: UserInfo) {
        self.token = token
        self.refreshToken = refreshToken
        self.expiresIn = expiresIn
        self.tokenType = "Bearer"
        self.user = user
    }
}

/// `POST /api/auth/refresh` and `POST /api/auth/logout` body.
public struct RefreshRequest: Codable, Sendable, Equatable {
    /// The refresh token last received.
    public var refreshToken: String

    public init(refreshToken: String) {
        self.refreshToken = refreshToken
    }
}

/// `GET /api/me` answer.
public struct MeResponse: Codable, Sendable, Equatable {
    /// The user.
    public var user: UserInfo
    /// The profiles the user owns.
    public var profiles: [ProfileInfo]
    /// How this request was authenticated: `token` or `apiKey`.
    public var authMethod: String
    /// The profile an API key is scoped to, if any.
    public var scopedProfile: String?

    public init(user: UserInfo, profiles: [ProfileInfo], authMethod: String, scopedProfile: String?) {
        self.user = user
        self.profiles = profiles
        self.authMethod = authMethod
        self.scopedProfile = scopedProfile
    }
}

/// A profile as the API shows it.
public struct ProfileInfo: Codable, Sendable, Equatable {
    /// The profile id.
    public var id: String
    /// The profile name, unique per user (`default` always exists).
    public var name: String
    /// The profile's current sequence (the newest change's version).
    public var syncVersion: Int64
    /// Creation time (ms since 1970).
    public var createdAt: Int64

    public init(id: String, name: String, syncVersion: Int64, createdAt: Int64) {
        self.id = id
        self.name = name
        self.syncVersion = syncVersion
        self.createdAt = createdAt
    }
}

/// `POST /api/keys` body.
public struct CreateAPIKeyRequest: Codable, Sendable, Equatable {
    /// A label for the key.
    public var name: String
    /// Restrict the key to one profile (id or name); `nil` for all of the user's profiles.
    public var profile: String?

    public init(name: String, profile: String? = nil) {
        self.name = name
        self.profile = profile
    }
}

/// An API key as listed (never the secret).
public struct APIKeyInfo: Codable, Sendable, Equatable {
    /// The key id.
    public var id: String
    /// The label.
    public var name: String
    /// The visible prefix of the key, for recognising it (`ck_ab12cd34`).
    public var prefix: String
    /// The profile id it is scoped to, if any.
    public var profileId: String?
    /// Creation time (ms).
    public var createdAt: Int64
    /// Last use (ms), if ever used.
    public var lastUsedAt: Int64?

    public init(id: String, name: String, prefix: String, profileId: String?, createdAt: Int64, lastUsedAt: Int64?) {
        self.id = id
        self.name = name
        self.prefix = prefix
        self.profileId = profileId
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
    }
}

/// `POST /api/keys` answer: the only time the secret is shown.
public struct CreatedAPIKey: Codable, Sendable, Equatable {
    /// The key's metadata.
    public var key: APIKeyInfo
    /// The full secret (`ck_…`). Store it now; it cannot be shown again.
    public var secret: String

    public init(key: APIKeyInfo, secret: String) {
        self.key = key
        self.secret = secret
    }
}

/// `GET /api/keys` answer.
public struct APIKeyList: Codable, Sendable, Equatable {
    /// The user's live keys.
    public var keys: [APIKeyInfo]

    public init(keys: [APIKeyInfo]) {
        self.keys = keys
    }
}
