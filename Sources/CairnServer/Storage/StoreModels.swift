import CairnCore
import Foundation

/// A user account as stored.
public struct StoredUser: Sendable, Equatable {
    /// The user id (UUID string).
    public var id: String
    /// The email as registered.
    public var email: String
    /// The lower-cased email used for lookup and uniqueness.
    public var emailNormalized: String
    /// bcrypt over the peppered HMAC pre-hash.
    public var passwordHash: String
    /// Access tokens issued before this instant (seconds since 1970) are refused.
    public var tokensValidAfter: Int64
    /// A disabled user cannot authenticate.
    public var disabled: Bool
    /// Creation time (ms).
    public var createdAt: Int64
    /// Last change (ms).
    public var updatedAt: Int64

    public init(
        id: String, email: String, emailNormalized: String, passwordHash: String, tokensValidAfter: Int64 = 0,
        disabled: Bool = false, createdAt: Int64, updatedAt: Int64
    ) {
        self.id = id
        self.email = email
        self.emailNormalized = emailNormalized
        self.passwordHash = passwordHash
        self.tokensValidAfter = tokensValidAfter
        self.disabled = disabled
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// A profile: a separate data space owned by one user.
public struct StoredProfile: Sendable, Equatable {
    /// The profile id.
    public var id: String
    /// The owner.
    public var userId: String
    /// Unique per user; every user has `default`.
    public var name: String
    /// The profile's sequence: the version of its newest change.
    public var seq: Int64
    /// Changes at or below this sequence may have been purged; older cursors must resync.
    public var purgeSeq: Int64
    /// Creation time (ms).
    public var createdAt: Int64
    /// Last change (ms).
    public var updatedAt: Int64
    /// Sync settings: `conflictStrategy`, `collections.<name>.conflictStrategy`, `deleteWins`.
    public var settings: [String: JSONValue] = [:]

    public init(
        id: String, userId: String, name: String, seq: Int64 = 0, purgeSeq: Int64 = 0, createdAt: Int64, updatedAt: Int64,
        settings: [String: JSONValue] = [:]
    ) {
        self.id = id
        self.userId = userId
        self.name = name
        self.seq = seq
        self.purgeSeq = purgeSeq
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.settings = settings
    }
}

/// Which profile a request acts on: the parts of a profile that do not change as its data does (its
/// sequence, settings and times do: read them with ``SyncStore/profile(userId:idOrName:)``).
public struct ProfileRef: Sendable, Equatable {
    /// The profile id.
    public var id: String
    /// The owner.
    public var userId: String
    /// Unique per user; every user has `default`.
    public var name: String

    public init(id: String, userId: String, name: String) {
        self.id = id
        self.userId = userId
        self.name = name
    }

    public init(_ profile: StoredProfile) {
        self.init(id: profile.id, userId: profile.userId, name: profile.name)
    }
}

/// A seed 001 operation queued on the server, applied shortly after by the queue processor.
public struct QueuedOperation: Sendable, Equatable {
    public var profileId: String
    public var id: String
    public var type: String
    public var entity: String
    public var entityId: String
    public var data: JSONValue?
    public var createdAt: Int64
    public var synced: Bool
    public var syncedAt: Int64?
    /// The engine's result once applied.
    public var result: JSONValue?

    public init(
        profileId: String, id: String, type: String, entity: String, entityId: String, data: JSONValue?, createdAt: Int64, synced: Bool = false,
        syncedAt: Int64? = nil, result: JSONValue? = nil
    ) {
        self.profileId = profileId
        self.id = id
        self.type = type
        self.entity = entity
        self.entityId = entityId
        self.data = data
        self.createdAt = createdAt
        self.synced = synced
        self.syncedAt = syncedAt
        self.result = result
    }
}

/// A device (client id) seen syncing a profile.
public struct DeviceInfo: Codable, Sendable, Equatable {
    public var clientId: String
    /// The last cursor it pulled or pushed with.
    public var cursor: Int64
    /// When it was last seen (ms).
    public var lastSeenAt: Int64
}

/// An opaque refresh token, stored by hash. Tokens of one sign-in share a family.
public struct StoredRefreshToken: Sendable, Equatable {
    /// The token id (also the public half of the token).
    public var id: String
    /// The owner.
    public var userId: String
    /// The sign-in this token descends from.
    public var familyId: String
    /// SHA-256 of the whole token.
    public var tokenHash: Data
    /// Issue time (ms).
    public var createdAt: Int64
    /// Expiry (ms).
    public var expiresAt: Int64
    /// When it was exchanged for a successor (ms), if it was.
    public var rotatedAt: Int64?
    /// The successor's id, once rotated.
    public var successorId: String?
    /// When it (or its family) was revoked (ms).
    public var revokedAt: Int64?

    public init(
        id: String, userId: String, familyId: String, tokenHash: Data, createdAt: Int64, expiresAt: Int64,
        rotatedAt: Int64? = nil, successorId: String? = nil, revokedAt: Int64? = nil
    ) {
        self.id = id
        self.userId = userId
        self.familyId = familyId
        self.tokenHash = tokenHash
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.rotatedAt = rotatedAt
        self.successorId = successorId
        self.revokedAt = revokedAt
    }
}

/// An API key, stored by hash.
public struct StoredAPIKey: Sendable, Equatable {
    /// The key id.
    public var id: String
    /// The owner.
    public var userId: String
    /// The profile it is limited to, if any.
    public var profileId: String?
    /// The label.
    public var name: String
    /// The visible prefix (`ck_xxxxxxxx`).
    public var prefix: String
    /// SHA-256 of the whole key.
    public var secretHash: Data
    /// Creation time (ms).
    public var createdAt: Int64
    /// Last use (ms).
    public var lastUsedAt: Int64?
    /// Revocation time (ms).
    public var revokedAt: Int64?

    public init(
        id: String, userId: String, profileId: String?, name: String, prefix: String, secretHash: Data,
        createdAt: Int64, lastUsedAt: Int64? = nil, revokedAt: Int64? = nil
    ) {
        self.id = id
        self.userId = userId
        self.profileId = profileId
        self.name = name
        self.prefix = prefix
        self.secretHash = secretHash
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt
    }
}

/// One security-relevant event: sign-ins, failures, key changes, mass deletes.
public struct AuditEvent: Sendable, Equatable {
    /// The user concerned, when known.
    public var userId: String?
    /// A short event name (`login.success`, `refresh.reuse`, `key.create`…).
    public var event: String
    /// Free detail, never a secret.
    public var detail: String?
    /// The client address.
    public var ip: String?
    /// When (ms).
    public var at: Int64

    public init(userId: String?, event: String, detail: String? = nil, ip: String? = nil, at: Int64) {
        self.userId = userId
        self.event = event
        self.detail = detail
        self.ip = ip
        self.at = at
    }
}

/// Result of trying to rotate a refresh token.
public enum RefreshRotation: Sendable, Equatable {
    /// The token was live and is now rotated to the given successor.
    case rotated
    /// Someone rotated it first (a concurrent or repeated use); the successor id is given.
    case alreadyRotated(successorId: String?)
    /// The token or its family is revoked.
    case revoked
}
