import CSQLiteTuning
import CairnCore
import Foundation
import GRDB
import Logging
import Synchronization

/// The embedded default store: one SQLite file in WAL mode with `synchronous=FULL`, so an
/// acknowledged write survives a crash or power loss.
///
/// ```swift
/// let store = try SQLiteSyncStore(path: "./cairn-data/cairn.sqlite")
/// try await store.prepare()
/// ```
public final class SQLiteSyncStore: SyncStore {
    public var backendName: String { "sqlite" }

    /// The GRDB pool: one writer, concurrent readers.
    let pool: DatabasePool
    let logger: Logger
    /// Users by id: every authenticated request reads its user (disabled? logged out everywhere?).
    /// Invalidated by this store's own writes to `users`.
    let users = LookupCache<StoredUser>()
    /// Profile ids and names by (user, id or name): every request resolves its profile.
    /// Emptied whenever a profile is created, renamed or deleted.
    let profileRefs = LookupCache<ProfileRef>()
    /// Writes of ``write(profileId:operations:_:)`` under way (queued or running).
    let writesInFlight = Atomic<Int>(0)
    /// How many one-op pushes ran on their caller's thread (for tests).
    let writesOnCallerThread = Atomic<Int>(0)
    /// The other writes of ``write(profileId:operations:_:)`` wait for the writer here; pushes
    /// that wait together share a transaction (group commit).
    let writeGroups: WriteGroups
    /// The thread that runs the inserts of a push of many ops while the engine goes on.
    let writeBehind = WriteBehind()
    /// The WAL's checkpoints, run by a thread of their own instead of inside the commit that
    /// fills the log (``WALCheckpoints``); nil for a database without a file.
    let walCheckpoints: WALCheckpointThread?

    /// The C state of the checkpoint thread and the writer's hook, whose shared fields are atomics.
    struct WALCheckpointThread: @unchecked Sendable {
        let state: OpaquePointer
    }

    /// When the WAL is copied into the database file, in frames (pages of 4 KiB) of the log.
    struct WALCheckpoints {
        /// From this size on (16 MB), a thread copies the log. SQLite's own automatic checkpoint
        /// runs inside the commit that reaches 1,000; at 4,000 the writer's share (the last
        /// frames, below) comes four times less often: with four clients, 5% more creates per
        /// second than at 1,000 (docs/benchmarks.md, session 24).
        var threshold: Int32 = 4_000
        /// The writer copies the last frames itself once the thread has copied all but these,
        /// so that the log starts over (about four pushes of 100 creates). A thread that
        /// copies it all while the writer is idle (one client) leaves the writer nothing.
        var slack: Int32 = 256
        /// From this size on (64 MB: the thread fell behind, or could not start), the writer
        /// checkpoints inside its commits, as SQLite does by default.
        var hardLimit: Int32 = 16_000
    }

    /// Opens (creating if needed) the database at `path`.
    /// - Parameters:
    ///   - path: the SQLite file.
    ///   - logger: where to log boot checks.
    public convenience init(path: String, logger: Logger = Logger(label: "cairn.sqlite")) throws {
        try self.init(path: path, logger: logger, walCheckpoints: WALCheckpoints())
    }

    /// `walCheckpoints`: when the log is copied (tests make it small).
    init(path: String, logger: Logger = Logger(label: "cairn.sqlite"), walCheckpoints: WALCheckpoints) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.maximumReaderCount = 8
        configuration.prepareDatabase { db in
            // GRDB's WAL setup leaves synchronous at NORMAL: an acknowledged commit could be lost
            // on power failure. FULL fsyncs the WAL on every commit.
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
            // An op of a push that writes in several steps runs in a savepoint, whose journal of original pages would
            // otherwise be a temporary file: on a large profile (FTS merges, index splits) a push
            // of 1,000 ops wrote gigabytes to it. In memory, and with a page cache of 32 MiB per
            // connection (the default 2 MiB thrashed on a 1 GB database).
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
            try db.execute(sql: "PRAGMA cache_size = -32768")
        }
        // Before the first connection: no process-wide allocation mutex between connections, and
        // a commit's WAL frames written with one call instead of two per page.
        _ = cairn_sqlite_disable_memstatus()
        _ = cairn_sqlite_coalesce_wal_writes()
        self.pool = try DatabasePool(path: path, configuration: configuration)
        self.writeGroups = WriteGroups(pool: self.pool)
        // DatabasePool switches the writer to WAL *after* prepareDatabase and sets NORMAL there:
        // set FULL again on the writer connection, the only one that commits.
        try self.pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        // The automatic checkpoint copied the whole log inside one commit in 17 (pushes of 100
        // creates), and every push waited for it: on a thread of its own, one client pushes
        // about 7% more creates per second, four clients about 11% (docs/benchmarks.md,
        // session 24).
        self.walCheckpoints = try self.pool.writeWithoutTransaction { db in
            cairn_wal_background_install(db.sqliteConnection, walCheckpoints.threshold, walCheckpoints.slack, walCheckpoints.hardLimit)
        }.map(WALCheckpointThread.init(state:))
        self.logger = logger
    }

    deinit {
        self.writeBehind.stop()
        if let walCheckpoints { cairn_wal_background_stop(walCheckpoints.state) }
    }

    /// The checkpoint thread's passes, the writer's own checkpoints, the largest log seen after a
    /// commit and the log after the last one, in frames (for tests).
    var walCheckpointCounts: (backgroundPasses: Int, writerCheckpoints: Int, largestLog: Int, log: Int) {
        guard let walCheckpoints else { return (0, 0, 0, 0) }
        var passes: Int64 = 0
        var inline: Int64 = 0
        var largest: Int32 = 0
        var log: Int32 = 0
        cairn_wal_background_counts(walCheckpoints.state, &passes, &inline, &largest, &log)
        return (Int(passes), Int(inline), Int(largest), Int(log))
    }

    public func prepare() async throws {
        // A database a newer Cairn has migrated may no longer have what this version writes (the
        // change log, since 2026-11-24): refuse it before any write, rather than fail them all.
        let migrator = SQLiteMigrations.migrator
        let unknown = try await self.pool.read { db -> [String] in
            guard try migrator.hasBeenSuperseded(db) else { return [] }
            let known = Set(migrator.migrations)
            return try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier").filter { !known.contains($0) }
        }
        guard unknown.isEmpty else { throw StoreError.newerDatabase(unknown) }
        try migrator.migrate(self.pool)
        try await self.assertDurability()
    }

    /// Refuses to run unless the writer is in WAL mode with `synchronous=FULL` (2).
    func assertDurability() async throws {
        let (journal, synchronous) = try await self.pool.write { db -> (String, Int) in
            let journal = try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? ""
            let synchronous = try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1
            return (journal, synchronous)
        }
        guard journal.lowercased() == "wal", synchronous == 2 else {
            throw StoreError.unsafeDurability("journal_mode=\(journal) synchronous=\(synchronous); need wal and FULL(2)")
        }
        self.logger.debug("SQLite durability checked", metadata: ["journal_mode": "\(journal)", "synchronous": "FULL"])
    }

    /// The current durability settings as the database reports them (for tests and `/api/info`).
    public func durabilitySettings() async throws -> (journalMode: String, synchronous: Int) {
        try await self.pool.write { db in
            (try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "", try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1)
        }
    }

    /// Names of the migrations applied so far, in order.
    public func appliedMigrations() async throws -> [String] {
        try await self.pool.read { db in try SQLiteMigrations.migrator.appliedMigrations(db) }
    }

    public func ping() async throws {
        _ = try await self.pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }

    /// A point lookup by key (a user, a profile, an API key: one indexed row, one statement). One
    /// statement needs no explicit transaction (SQLite reads it from one snapshot), so the BEGIN
    /// and COMMIT of `read` are skipped (docs/benchmarks.md, session 6).
    ///
    /// It stays asynchronous on purpose. Running it on the calling thread was tried and
    /// deadlocked under load: the lookups blocked every cooperative thread waiting for a pooled
    /// reader, while the readers were held by async reads that needed a cooperative thread to
    /// finish and give them back.
    private func lookup<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await self.pool.unsafeRead(body)
    }

    // MARK: Users

    public func createUser(_ user: StoredUser, defaultProfile: StoredProfile) async throws {
        do {
            try await self.pool.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO users (id, email, email_normalized, password_hash, tokens_valid_after, disabled, created_at, updated_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        user.id, user.email, user.emailNormalized, user.passwordHash, user.tokensValidAfter, user.disabled,
                        user.createdAt, user.updatedAt,
                    ]
                )
                try Self.insertProfile(defaultProfile, db: db)
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw CairnError(.alreadyExists, "An account with this email already exists", field: "email")
        }
    }

    static func insertProfile(_ profile: StoredProfile, db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO profiles (id, user_id, name, seq, purge_seq, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                profile.id, profile.userId, profile.name, profile.seq, profile.purgeSeq, profile.createdAt, profile.updatedAt,
            ]
        )
    }

    public func user(emailNormalized: String) async throws -> StoredUser? {
        try await self.lookup { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM users WHERE email_normalized = ?"), arguments: [emailNormalized])
                .map(StoredUser.init(row:))
        }
    }

    public func user(id: String) async throws -> StoredUser? {
        if let user = self.users.value(id) { return user }
        let generation = self.users.generation
        let user = try await self.lookup { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM users WHERE id = ?"), arguments: [id]).map(StoredUser.init(row:))
        }
        if let user { self.users.fill(user, for: id, since: generation) }
        return user
    }

    public func setTokensValidAfter(userId: String, seconds: Int64) async throws {
        defer { self.users.invalidate(userId) }
        try await self.pool.write { db in
            try db.execute(
                sql: "UPDATE users SET tokens_valid_after = MAX(tokens_valid_after, ?) WHERE id = ?",
                arguments: [seconds, userId]
            )
        }
    }

    public func setDisabled(userId: String, disabled: Bool) async throws {
        defer { self.users.invalidate(userId) }
        try await self.pool.write { db in
            try db.execute(sql: "UPDATE users SET disabled = ? WHERE id = ?", arguments: [disabled, userId])
        }
    }

    // MARK: Profiles

    public func profiles(userId: String) async throws -> [StoredProfile] {
        try await self.pool.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM profiles WHERE user_id = ? AND deleted_at IS NULL ORDER BY created_at, id",
                arguments: [userId]
            ).map(StoredProfile.init(row:))
        }
    }

    public func profile(userId: String, idOrName: String) async throws -> StoredProfile? {
        try await self.lookup { db in
            try Row.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT * FROM profiles WHERE user_id = ? AND deleted_at IS NULL AND (id = ? OR name = ?)
                        ORDER BY (id = ?) DESC LIMIT 1
                        """),
                arguments: [userId, idOrName, idOrName, idOrName]
            ).map(StoredProfile.init(row:))
        }
    }

    public func profileRef(userId: String, idOrName: String) async throws -> ProfileRef? {
        let key = userId + "\u{0}" + idOrName
        if let ref = self.profileRefs.value(key) { return ref }
        let generation = self.profileRefs.generation
        guard let profile = try await self.profile(userId: userId, idOrName: idOrName) else { return nil }
        let ref = ProfileRef(profile)
        self.profileRefs.fill(ref, for: key, since: generation)
        return ref
    }

    public func createProfile(_ profile: StoredProfile) async throws {
        defer { self.profileRefs.invalidateAll() }
        do {
            try await self.pool.write { db in
                try Self.insertProfile(profile, db: db)
                if !profile.settings.isEmpty {
                    try db.execute(
                        sql: "UPDATE profiles SET settings = ? WHERE id = ?",
                        arguments: [try SQLiteSyncTransaction.encode(profile.settings), profile.id]
                    )
                }
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw CairnError(.alreadyExists, "A profile with this name already exists", field: "name")
        }
    }

    public func updateProfile(userId: String, id: String, name: String?, settings: [String: JSONValue]?, at: Int64) async throws -> StoredProfile? {
        defer { if name != nil { self.profileRefs.invalidateAll() } }
        do {
            return try await self.pool.write { db in
                if let name {
                    try db.execute(
                        sql: "UPDATE profiles SET name = ?, updated_at = ? WHERE id = ? AND user_id = ? AND deleted_at IS NULL",
                        arguments: [name, at, id, userId]
                    )
                }
                if let settings {
                    try db.execute(
                        sql: "UPDATE profiles SET settings = ?, updated_at = ? WHERE id = ? AND user_id = ? AND deleted_at IS NULL",
                        arguments: [try SQLiteSyncTransaction.encode(settings), at, id, userId]
                    )
                }
                return try Row.fetchOne(db, sql: "SELECT * FROM profiles WHERE id = ? AND user_id = ? AND deleted_at IS NULL", arguments: [id, userId])
                    .map(StoredProfile.init(row:))
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw CairnError(.alreadyExists, "A profile with this name already exists", field: "name")
        }
    }

    // MARK: Seed 001 queue and devices

    public func enqueueOperation(_ operation: QueuedOperation) async throws {
        do {
            try await self.pool.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO queued_ops (profile_id, id, type, entity, entity_id, data, created_at, synced)
                        VALUES (?, ?, ?, ?, ?, ?, ?, 0)
                        """,
                    arguments: [
                        operation.profileId, operation.id, operation.type, operation.entity, operation.entityId,
                        try operation.data.map { try SQLiteSyncTransaction.encode($0) }, operation.createdAt,
                    ]
                )
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_PRIMARYKEY {
            throw CairnError(.alreadyExists, "An operation with this id is already queued", field: "id")
        }
    }

    public func pendingOperations(profileId: String) async throws -> [QueuedOperation] {
        try await self.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM queued_ops WHERE profile_id = ? AND synced = 0 ORDER BY created_at, id", arguments: [profileId])
                .map(QueuedOperation.init(row:))
        }
    }

    public func unsyncedOperations(limit: Int) async throws -> [QueuedOperation] {
        try await self.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM queued_ops WHERE synced = 0 ORDER BY created_at, id LIMIT ?", arguments: [limit])
                .map(QueuedOperation.init(row:))
        }
    }

    public func markOperationsSynced(profileId: String, ids: [String], results: [String: JSONValue], at: Int64) async throws -> Int {
        try await self.pool.write { db in
            var changed = 0
            for id in ids {
                try db.execute(
                    sql: "UPDATE queued_ops SET synced = 1, synced_at = ?, result = COALESCE(?, result) WHERE profile_id = ? AND id = ? AND synced = 0",
                    arguments: [at, try results[id].map { try SQLiteSyncTransaction.encode($0) }, profileId, id]
                )
                changed += db.changesCount
            }
            return changed
        }
    }

    public func clearSyncedOperations(profileId: String) async throws -> Int {
        try await self.pool.write { db in
            try db.execute(sql: "DELETE FROM queued_ops WHERE profile_id = ? AND synced = 1", arguments: [profileId])
            return db.changesCount
        }
    }

    public func touchDevices(_ notes: [(profileId: String, clientId: String, cursor: Int64, at: Int64)]) async throws {
        try await self.pool.write { db in
            let statement = try db.cachedStatement(
                sql: """
                    INSERT INTO devices (profile_id, client_id, cursor, last_seen_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (profile_id, client_id) DO UPDATE SET cursor = excluded.cursor, last_seen_at = excluded.last_seen_at
                    WHERE excluded.last_seen_at >= devices.last_seen_at
                    """
            )
            for note in notes {
                // A device of a profile deleted meanwhile is simply not recorded.
                guard try Bool.fetchOne(db, sql: "SELECT 1 FROM profiles WHERE id = ?", arguments: [note.profileId]) == true else { continue }
                try statement.execute(arguments: [note.profileId, note.clientId, note.cursor, note.at])
            }
        }
    }

    public func devices(profileId: String) async throws -> [DeviceInfo] {
        try await self.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM devices WHERE profile_id = ? ORDER BY last_seen_at DESC LIMIT 100", arguments: [profileId]).map {
                DeviceInfo(clientId: $0["client_id"], cursor: $0["cursor"], lastSeenAt: $0["last_seen_at"])
            }
        }
    }

    // MARK: Refresh tokens

    public func insertRefreshToken(_ token: StoredRefreshToken) async throws {
        try await self.pool.write { db in try Self.insertRefreshToken(token, db: db) }
    }

    static func insertRefreshToken(_ token: StoredRefreshToken, db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, created_at, expires_at, rotated_at, successor_id, revoked_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                token.id, token.userId, token.familyId, token.tokenHash, token.createdAt, token.expiresAt, token.rotatedAt,
                token.successorId, token.revokedAt,
            ]
        )
    }

    public func refreshToken(hash: Data) async throws -> StoredRefreshToken? {
        try await self.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM refresh_tokens WHERE token_hash = ?", arguments: [hash])
                .map(StoredRefreshToken.init(row:))
        }
    }

    public func refreshToken(id: String) async throws -> StoredRefreshToken? {
        try await self.pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM refresh_tokens WHERE id = ?", arguments: [id])
                .map(StoredRefreshToken.init(row:))
        }
    }

    public func rotateRefreshToken(id: String, successor: StoredRefreshToken, at: Int64) async throws -> RefreshRotation {
        try await self.pool.write { db in
            try db.execute(
                sql: """
                    UPDATE refresh_tokens SET rotated_at = ?, successor_id = ?
                    WHERE id = ? AND rotated_at IS NULL AND revoked_at IS NULL
                    """,
                arguments: [at, successor.id, id]
            )
            if db.changesCount == 1 {
                try Self.insertRefreshToken(successor, db: db)
                return .rotated
            }
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM refresh_tokens WHERE id = ?", arguments: [id]) else {
                return .revoked
            }
            let current = StoredRefreshToken(row: row)
            if current.revokedAt != nil { return .revoked }
            return .alreadyRotated(successorId: current.successorId)
        }
    }

    public func revokeRefreshFamily(familyId: String, at: Int64) async throws {
        try await self.pool.write { db in
            try db.execute(
                sql: "UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL",
                arguments: [at, familyId]
            )
        }
    }

    // MARK: API keys

    public func insertAPIKey(_ key: StoredAPIKey) async throws {
        try await self.pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO api_keys (id, user_id, profile_id, name, prefix, secret_hash, created_at, last_used_at, revoked_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    key.id, key.userId, key.profileId, key.name, key.prefix, key.secretHash, key.createdAt, key.lastUsedAt,
                    key.revokedAt,
                ]
            )
        }
    }

    public func apiKeys(userId: String) async throws -> [StoredAPIKey] {
        try await self.pool.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM api_keys WHERE user_id = ? AND revoked_at IS NULL ORDER BY created_at DESC, id",
                arguments: [userId]
            ).map(StoredAPIKey.init(row:))
        }
    }

    public func apiKey(hash: Data) async throws -> StoredAPIKey? {
        try await self.lookup { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM api_keys WHERE secret_hash = ? AND revoked_at IS NULL"), arguments: [hash])
                .map(StoredAPIKey.init(row:))
        }
    }

    public func revokeAPIKey(userId: String, id: String, at: Int64) async throws -> Bool {
        try await self.pool.write { db in
            try db.execute(
                sql: "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
                arguments: [at, id, userId]
            )
            return db.changesCount == 1
        }
    }

    public func apiKeyIsLive(id: String, userId: String) async throws -> Bool {
        try await self.lookup { db in
            try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM api_keys WHERE id = ? AND user_id = ? AND revoked_at IS NULL"), arguments: [id, userId]) ?? false
        }
    }

    public func touchAPIKey(id: String, at: Int64) async throws {
        try await self.pool.write { db in
            try db.execute(sql: "UPDATE api_keys SET last_used_at = ? WHERE id = ?", arguments: [at, id])
        }
    }

    // MARK: Sync data

    public func write<T: Sendable>(profileId: String, operations: Int?, _ body: @escaping @Sendable (any SyncTransaction) throws -> T) async throws -> T {
        // SQLite has one writer: the transaction itself is the profile's write lock.
        // A push of many ops hands its inserts to a thread of their own (`WriteBehind`), which
        // runs them while the engine works out the next op.
        let writeBehind = (operations ?? 0) >= Self.writeBehindOperations ? self.writeBehind : nil
        let transaction = { @Sendable (db: Database) throws -> (T, Bool) in
            let transaction = try SQLiteSyncTransaction(db, writeBehind: writeBehind)
            let value: T
            do {
                value = try body(transaction)
                try transaction.finishWrites()
            } catch {
                // Before GRDB (or the group) rolls the transaction back, the thread lets go of
                // the connection. An insert that failed is the cause, whatever the body threw
                // after it (an atomic batch's rollback would otherwise answer as a refusal).
                throw Self.storeError(transaction.abandonWrites() ?? error)
            }
            return (value, transaction.deletedProfile)
        }
        // A push of up to `callerThreadOperations` ops that finds no other write of this method
        // under way runs on this thread (GRDB's writer queue runs a synchronous call on its
        // caller): that saves the thread switches of the hop to the writer queue and back (for a
        // one-op push most of its cost above its fsync; for a push of 100, about a twentieth of
        // its time with one client). Other writes, and any write that finds another under way,
        // wait for the writer without holding a cooperative thread (`WriteGroups`), where pushes
        // that wait together share a transaction and its fsync. A lone push holds this thread
        // for its own work (a few milliseconds at 100 ops) and can wait on it for the length of
        // a store write outside this method (an account change, an audit row), which are all
        // single statements.
        let alone = self.writesInFlight.add(1, ordering: .acquiringAndReleasing).newValue == 1
        defer { self.writesInFlight.subtract(1, ordering: .acquiringAndReleasing) }
        let (value, deletedProfile): (T, Bool)
        if let operations, operations <= Self.callerThreadOperations, alone {
            self.writesOnCallerThread.add(1, ordering: .relaxed)
            (value, deletedProfile) = try self.writeOnThisThread(transaction)
        } else {
            (value, deletedProfile) = try await self.writeGroups.write(operations: operations, transaction)
        }
        if deletedProfile { self.profileRefs.invalidateAll() }
        return value
    }

    /// A sync write's error as the store throws it: the primary key of a row inserted as new
    /// (a record, an op result) already taken is ``KeyAlreadyStored``.
    static func storeError(_ error: any Error) -> any Error {
        guard let database = error as? DatabaseError, database.extendedResultCode == .SQLITE_CONSTRAINT_PRIMARYKEY else { return error }
        return KeyAlreadyStored(database)
    }

    /// The fewest ops of a push whose inserts run on a thread of their own: below it, starting
    /// the thread costs more than it saves.
    static let writeBehindOperations = 16

    /// The most ops of a push that runs on its caller's thread when no other write is under way
    /// (the client SDK's batch size): a longer one would hold a cooperative thread for longer
    /// than a hop costs.
    static let callerThreadOperations = 100

    /// GRDB's synchronous write, which an async caller cannot name directly.
    private func writeOnThisThread<T>(_ updates: (Database) throws -> T) throws -> T {
        try self.pool.write(updates)
    }

    public func profileIds() async throws -> [String] {
        try await self.pool.read { db in try String.fetchAll(db, sql: "SELECT id FROM profiles WHERE deleted_at IS NULL ORDER BY id") }
    }

    public func read<T: Sendable>(_ body: @escaping @Sendable (any SyncReader) throws -> T) async throws -> T {
        try await self.pool.read { db in
            try body(SQLiteSyncTransaction(db))
        }
    }

    // MARK: Audit

    public func appendAudit(_ event: AuditEvent) async throws {
        try await self.pool.write { db in
            try db.execute(
                sql: "INSERT INTO audit_log (user_id, event, detail, ip, at) VALUES (?, ?, ?, ?, ?)",
                arguments: [event.userId, event.event, event.detail, event.ip, event.at]
            )
        }
    }

    public func auditEvents(userId: String, limit: Int) async throws -> [AuditEvent] {
        try await self.pool.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM audit_log WHERE user_id = ? ORDER BY id DESC LIMIT ?",
                arguments: [userId, limit]
            ).map { row in
                AuditEvent(userId: row["user_id"], event: row["event"], detail: row["detail"], ip: row["ip"], at: row["at"])
            }
        }
    }
}

/// Failures of the storage layer that are not the client's fault.
public enum StoreError: Error, CustomStringConvertible {
    /// The database is not configured for durable commits.
    case unsafeDurability(String)
    /// A newer version of Cairn migrated the database: these migrations are not known here.
    case newerDatabase([String])

    public var description: String {
        switch self {
        case .unsafeDurability(let detail): "unsafe database durability settings: \(detail)"
        case .newerDatabase(let migrations):
            "the database was upgraded by a newer version of Cairn (migrations \(migrations.joined(separator: ", ")) are unknown to this one): "
                + "run that version, or restore a backup made before the upgrade"
        }
    }
}

// MARK: - Database

extension StoredUser {
    init(row: Row) {
        self.init(
            id: row["id"], email: row["email"], emailNormalized: row["email_normalized"], passwordHash: row["password_hash"],
            tokensValidAfter: row["tokens_valid_after"], disabled: row["disabled"], createdAt: row["created_at"],
            updatedAt: row["updated_at"]
        )
    }
}

extension StoredProfile {
    init(row: Row) {
        let settings: String = row["settings"] ?? "{}"
        self.init(
            id: row["id"], userId: row["user_id"], name: row["name"], seq: row["seq"], purgeSeq: row["purge_seq"],
            createdAt: row["created_at"], updatedAt: row["updated_at"],
            settings: SQLiteSyncTransaction.decodeObject(settings)
        )
    }
}

extension QueuedOperation {
    init(row: Row) {
        let data: String? = row["data"]
        let result: String? = row["result"]
        self.init(
            profileId: row["profile_id"], id: row["id"], type: row["type"], entity: row["entity"], entityId: row["entity_id"],
            data: data.flatMap { try? SQLiteSyncTransaction.decode(JSONValue.self, $0) }, createdAt: row["created_at"], synced: row["synced"],
            syncedAt: row["synced_at"], result: result.flatMap { try? SQLiteSyncTransaction.decode(JSONValue.self, $0) }
        )
    }
}

extension StoredRefreshToken {
    init(row: Row) {
        self.init(
            id: row["id"], userId: row["user_id"], familyId: row["family_id"], tokenHash: row["token_hash"],
            createdAt: row["created_at"], expiresAt: row["expires_at"], rotatedAt: row["rotated_at"],
            successorId: row["successor_id"], revokedAt: row["revoked_at"]
        )
    }
}

extension StoredAPIKey {
    init(row: Row) {
        self.init(
            id: row["id"], userId: row["user_id"], profileId: row["profile_id"], name: row["name"], prefix: row["prefix"],
            secretHash: row["secret_hash"], createdAt: row["created_at"], lastUsedAt: row["last_used_at"],
            revokedAt: row["revoked_at"]
        )
    }
}
