import CairnCore
import Foundation

/// Everything Cairn keeps, behind one `Sendable` protocol so that the embedded SQLite store and a
/// PostgreSQL store are interchangeable without changing callers.
///
/// Methods take and return domain types only; no SQL or driver type crosses this boundary.
/// Every method that touches user data takes the owning user id (or a profile id that the caller
/// resolved for that user), so an unscoped query cannot be written through this API.
public protocol SyncStore: Sendable {
    /// A short name of the backend (`sqlite`, `postgres`), shown by `/api/info`.
    var backendName: String { get }

    /// Runs the append-only migrations and checks the durability settings. Called once at boot,
    /// before the server listens.
    func prepare() async throws

    /// A cheap query proving the database answers (for `/readyz`).
    func ping() async throws

    // MARK: Users

    /// Creates a user and its `default` profile in one transaction.
    /// - Throws: `CairnError(.alreadyExists)` when the normalized email is taken.
    func createUser(_ user: StoredUser, defaultProfile: StoredProfile) async throws

    /// The user with this normalized email, if any.
    func user(emailNormalized: String) async throws -> StoredUser?

    /// The user with this id, if any.
    func user(id: String) async throws -> StoredUser?

    /// Refuses every access token issued before `seconds` (password change, "sign out everywhere").
    func setTokensValidAfter(userId: String, seconds: Int64) async throws

    /// Enables or disables an account.
    func setDisabled(userId: String, disabled: Bool) async throws

    // MARK: Profiles

    /// The user's profiles, oldest first.
    func profiles(userId: String) async throws -> [StoredProfile]

    /// The user's profile with this id or name; another user's profile is `nil`, like a missing one.
    func profile(userId: String, idOrName: String) async throws -> StoredProfile?

    /// ``profile(userId:idOrName:)`` without the parts that change with the data: what a request
    /// needs to find the profile it acts on. May be answered from memory; a rename or a deletion
    /// is seen by the next call.
    func profileRef(userId: String, idOrName: String) async throws -> ProfileRef?

    /// Creates a profile for a user.
    /// - Throws: `CairnError(.alreadyExists)` when the user has a live profile of that name.
    func createProfile(_ profile: StoredProfile) async throws

    /// Renames a profile and/or replaces its settings; `nil` when the user has no such profile.
    func updateProfile(userId: String, id: String, name: String?, settings: [String: JSONValue]?, at: Int64) async throws -> StoredProfile?

    // MARK: Seed 001 queue and devices

    /// Stores a queued operation.
    func enqueueOperation(_ operation: QueuedOperation) async throws

    /// The profile's queued operations not yet synced, oldest first.
    func pendingOperations(profileId: String) async throws -> [QueuedOperation]

    /// Unsynced queued operations of every profile, oldest first (for the processor).
    func unsyncedOperations(limit: Int) async throws -> [QueuedOperation]

    /// Marks queued operations synced (with their result when given); returns how many changed.
    func markOperationsSynced(profileId: String, ids: [String], results: [String: JSONValue], at: Int64) async throws -> Int

    /// Deletes the profile's synced queued operations; returns how many.
    func clearSyncedOperations(profileId: String) async throws -> Int

    /// Records, in one transaction, that devices synced profiles: (profile, client id, cursor,
    /// time in ms). An older note never replaces a newer one.
    func touchDevices(_ notes: [(profileId: String, clientId: String, cursor: Int64, at: Int64)]) async throws

    /// The devices seen syncing a profile, most recent first.
    func devices(profileId: String) async throws -> [DeviceInfo]

    // MARK: Refresh tokens

    /// Stores a newly issued refresh token.
    func insertRefreshToken(_ token: StoredRefreshToken) async throws

    /// The refresh token with this hash, if any.
    func refreshToken(hash: Data) async throws -> StoredRefreshToken?

    /// The refresh token with this id, if any.
    func refreshToken(id: String) async throws -> StoredRefreshToken?

    /// Atomically marks `id` rotated and stores `successor`, only if `id` is neither rotated nor
    /// revoked. Concurrent callers: exactly one gets `.rotated`.
    func rotateRefreshToken(id: String, successor: StoredRefreshToken, at: Int64) async throws -> RefreshRotation

    /// Revokes every token of a family (reuse detected, or logout).
    func revokeRefreshFamily(familyId: String, at: Int64) async throws

    // MARK: API keys

    /// Stores a new API key.
    func insertAPIKey(_ key: StoredAPIKey) async throws

    /// The user's live keys, newest first.
    func apiKeys(userId: String) async throws -> [StoredAPIKey]

    /// The live key with this hash, if any.
    func apiKey(hash: Data) async throws -> StoredAPIKey?

    /// Revokes the user's key; `false` if the user has no such live key.
    func revokeAPIKey(userId: String, id: String, at: Int64) async throws -> Bool

    /// Whether the user's key with this id exists and is not revoked.
    func apiKeyIsLive(id: String, userId: String) async throws -> Bool

    /// Records the last use of a key (best effort).
    func touchAPIKey(id: String, at: Int64) async throws

    // MARK: Sync data

    /// Runs `body` in one write transaction holding `profileId`'s write lock; commits when it
    /// returns (durably: nothing is acknowledged before the commit is on disk) and rolls back
    /// when it throws. `operations`: the number of ops when the write is a push (`nil` for any
    /// other write: an import, a purge, a profile's deletion). The store may run a one-op push
    /// on the calling thread when nothing else is writing, and may run pushes that wait for the
    /// writer in one shared transaction, each in a savepoint of its own (group commit); a push
    /// is then still all or nothing, and answered only after the shared commit. A record or op
    /// result inserted as new whose key the profile already holds fails the write with
    /// ``KeyAlreadyStored`` (and nothing of it is kept).
    func write<T: Sendable>(profileId: String, operations: Int?, _ body: @escaping @Sendable (any SyncTransaction) throws -> T) async throws -> T

    /// Ids of every live profile (for maintenance such as tombstone purging).
    func profileIds() async throws -> [String]

    /// Runs `body` over one consistent read snapshot.
    func read<T: Sendable>(_ body: @escaping @Sendable (any SyncReader) throws -> T) async throws -> T

    // MARK: Audit

    /// Appends a security event to the audit log.
    func appendAudit(_ event: AuditEvent) async throws

    /// The newest audit events of a user (newest first).
    func auditEvents(userId: String, limit: Int) async throws -> [AuditEvent]
}

/// A write inserted, as new, a record or an op result whose key the profile already holds
/// (``SyncTransaction/saveRecord(_:isNew:encodedData:)``, ``SyncTransaction/saveOpResult(_:)``).
/// The write is rolled back. A push that took its ids for new without reading them runs again
/// with the reads (``SyncEngine``); anywhere else it is a bug, and answers as an internal error.
public struct KeyAlreadyStored: Error, CustomStringConvertible {
    /// The backend's own error.
    public let underlying: any Error

    public init(_ underlying: any Error) {
        self.underlying = underlying
    }

    public var description: String { "a row with this key is already stored: \(self.underlying)" }
}

extension SyncStore {
    /// ``write(profileId:operations:_:)`` of a write that is not a push (an import, a purge, a
    /// profile's deletion): it runs alone.
    public func write<T: Sendable>(profileId: String, _ body: @escaping @Sendable (any SyncTransaction) throws -> T) async throws -> T {
        try await self.write(profileId: profileId, operations: nil, body)
    }
}
