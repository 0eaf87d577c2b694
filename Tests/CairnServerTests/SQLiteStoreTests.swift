import CSQLiteTuning
import CairnCore
import Foundation
import GRDB
import Testing

@testable import CairnServer

@Suite("SQLite store")
struct SQLiteStoreTests {
    @Test func runsInWALWithSynchronousFull() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try SQLiteSyncStore(path: directory.url.appendingPathComponent("db.sqlite").path)
        try await store.prepare()
        let settings = try await store.durabilitySettings()
        #expect(settings.journalMode == "wal")
        #expect(settings.synchronous == 2)
    }

    /// SQLite's memory statistics take one process-wide mutex on every allocation, which made
    /// connections on different threads wait on each other: the store turns them off before its
    /// first connection. The call answers SQLITE_MISUSE (21) when it came after SQLite started.
    @Test func memoryStatisticsAreOffBeforeTheFirstConnection() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try SQLiteSyncStore(path: directory.url.appendingPathComponent("db.sqlite").path)
        try await store.prepare()
        #expect(cairn_sqlite_disable_memstatus() == 0)
    }

    @Test func migrationsAreIdempotentAcrossRestarts() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.url.appendingPathComponent("db.sqlite").path
        // Given a store that was migrated and holds a user
        do {
            let store = try SQLiteSyncStore(path: path)
            try await store.prepare()
            try await store.createUser(
                StoredUser(id: "u1", email: "a@b.co", emailNormalized: "a@b.co", passwordHash: "h", createdAt: 1, updatedAt: 1),
                defaultProfile: StoredProfile(id: "p1", userId: "u1", name: "default", createdAt: 1, updatedAt: 1)
            )
        }
        // When it is opened and prepared twice more
        for _ in 0..<2 {
            let store = try SQLiteSyncStore(path: path)
            try await store.prepare()
            // Then the migrations are applied once, in order, and the data is intact
            #expect(
                try await store.appliedMigrations() == [
                    "2026-11-21-accounts", "2026-11-21-sync-tables", "2026-11-21-bookmark-search", "2026-11-21-queue-and-timestamps",
                    "2026-11-22-sibling-index",
                ]
            )
            #expect(try await store.user(id: "u1")?.email == "a@b.co")
            #expect(try await store.profiles(userId: "u1").map(\.name) == ["default"])
        }
    }

    @Test func createsTheSyncEngineTables() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try SQLiteSyncStore(path: directory.url.appendingPathComponent("db.sqlite").path)
        try await store.prepare()
        let tables = try await store.pool.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        }
        for table in ["users", "profiles", "refresh_tokens", "api_keys", "records", "changes", "applied_ops", "conflicts", "audit_log"] {
            #expect(tables.contains(table), "\(table)")
        }
    }

    @Test func profileLookupIsScopedToItsOwner() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try SQLiteSyncStore(path: directory.url.appendingPathComponent("db.sqlite").path)
        try await store.prepare()
        for (user, profile) in [("ua", "pa"), ("ub", "pb")] {
            try await store.createUser(
                StoredUser(id: user, email: "\(user)@x.co", emailNormalized: "\(user)@x.co", passwordHash: "h", createdAt: 1, updatedAt: 1),
                defaultProfile: StoredProfile(id: profile, userId: user, name: "default", createdAt: 1, updatedAt: 1)
            )
        }
        #expect(try await store.profile(userId: "ua", idOrName: "pa")?.id == "pa")
        #expect(try await store.profile(userId: "ua", idOrName: "default")?.id == "pa")
        #expect(try await store.profile(userId: "ua", idOrName: "pb") == nil)
    }

    @Test func secretsFileIsCreatedOwnerOnlyAndReused() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let first = try ServerSecrets.loadOrCreate(in: directory.url)
        let attributes = try FileManager.default.attributesOfItem(atPath: directory.url.appendingPathComponent("secrets.json").path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let second = try ServerSecrets.loadOrCreate(in: directory.url)
        #expect(first == second)
        #expect(first.jwtSigningKey.count == 32)
        #expect(first.jwtSigningKey != first.passwordPepper)
        // A secrets file readable by others is refused
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: directory.url.appendingPathComponent("secrets.json").path)
        #expect(throws: SecretsError.self) { try ServerSecrets.loadOrCreate(in: directory.url) }
    }

    @Test func refreshRotationHasExactlyOneWinner() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try SQLiteSyncStore(path: directory.url.appendingPathComponent("db.sqlite").path)
        try await store.prepare()
        try await store.createUser(
            StoredUser(id: "u", email: "u@x.co", emailNormalized: "u@x.co", passwordHash: "h", createdAt: 1, updatedAt: 1),
            defaultProfile: StoredProfile(id: "p", userId: "u", name: "default", createdAt: 1, updatedAt: 1)
        )
        try await store.insertRefreshToken(StoredRefreshToken(id: "t0", userId: "u", familyId: "f", tokenHash: Data([0]), createdAt: 1, expiresAt: 99))
        let results = try await withThrowingTaskGroup(of: RefreshRotation.self) { group in
            for index in 1...10 {
                group.addTask {
                    try await store.rotateRefreshToken(
                        id: "t0",
                        successor: StoredRefreshToken(id: "t\(index)", userId: "u", familyId: "f", tokenHash: Data([UInt8(index)]), createdAt: 2, expiresAt: 99),
                        at: 2
                    )
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.filter { $0 == .rotated }.count == 1)
        #expect(results.filter { if case .alreadyRotated = $0 { true } else { false } }.count == 9)
    }
}
