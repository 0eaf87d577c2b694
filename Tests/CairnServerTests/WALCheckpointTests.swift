import CairnCore
import Foundation
import GRDB
import Logging
import Testing

@testable import CairnServer

/// The WAL is copied into the database file by a thread of its own, not inside the commit that
/// fills it (`SQLiteSyncStore.WALCheckpoints`, `cairn_wal_background_install`).
@Suite("WAL checkpoints in the background")
struct WALCheckpointTests {
    struct Harness {
        let directory: TemporaryDirectory
        let store: SQLiteSyncStore
        let engine: SyncEngine
        var pushes = 0

        init(_ checkpoints: SQLiteSyncStore.WALCheckpoints) async throws {
            self.directory = try TemporaryDirectory()
            self.store = try SQLiteSyncStore(path: self.directory.url.appendingPathComponent("db.sqlite").path, walCheckpoints: checkpoints)
            try await self.store.prepare()
            try await self.store.createUser(
                StoredUser(id: "u", email: "u@x.co", emailNormalized: "u@x.co", passwordHash: "h", createdAt: 1, updatedAt: 1),
                defaultProfile: StoredProfile(id: "p", userId: "u", name: "default", createdAt: 1, updatedAt: 1)
            )
            self.engine = SyncEngine(store: self.store, clock: ManualClock(start: Date(timeIntervalSince1970: 1_795_000_000)).clock, limits: Limits(), notifier: NoChangeNotifier(), logger: Logger(label: "test"))
        }

        /// Pushes 10 new bookmarks.
        mutating func push() async throws {
            let batch = self.pushes
            self.pushes += 1
            try await self.push(batch: "\(batch)", device: "device")
        }

        /// Pushes 10 new bookmarks named after `batch`, from `device`.
        func push(batch: String, device: String) async throws {
            let ops = (0..<10).map { index in
                SyncOperation(
                    opId: "op-\(batch)-\(index)", type: .create, id: "b-\(batch)-\(index)",
                    data: ["title": "B", "url": .string("https://example.com/\(batch)/\(index)")], parentId: "other"
                )
            }
            let outcome = try await self.engine.push(PushRequest(profileId: "p", clientId: device, operations: ops))
            #expect(outcome.results.allSatisfy { $0.status == .applied })
        }

        func bookmarkCount() async throws -> Int {
            try await self.store.read { reader in
                try reader.allRecords("p", "bookmarks", includeDeleted: false).filter { !Bookmark.isRoot($0.id) }.count
            }
        }
    }

    /// Waits up to 10 s for `condition`.
    static func eventually(_ condition: () -> Bool) async throws -> Bool {
        for _ in 0..<1_000 {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }

    @Test func theThreadCopiesTheLogAndTheWriterFinishesItSoThatItStartsOver() async throws {
        var harness = try await Harness(SQLiteSyncStore.WALCheckpoints(threshold: 64, slack: 60, hardLimit: 100_000))
        defer { harness.directory.remove() }
        // The schema alone fills more than 64 frames: its log is copied and started over first.
        try await harness.push()
        #expect(try await Self.eventually { harness.store.walCheckpointCounts.log < 64 })
        let before = harness.store.walCheckpointCounts
        while harness.store.walCheckpointCounts.log < 64 {
            try await harness.push()
            try #require(harness.pushes < 50)
        }
        // Past the threshold the thread copies the log, while the writer is idle; the writer
        // copies nothing of its own yet.
        #expect(try await Self.eventually { harness.store.walCheckpointCounts.backgroundPasses > before.backgroundPasses })
        #expect(harness.store.walCheckpointCounts.writerCheckpoints == before.writerCheckpoints)
        let full = harness.store.walCheckpointCounts.log

        // Copied whole while the writer was idle: the next write starts the log over, and the
        // writer checkpointed nothing itself.
        try await harness.push()
        let counts = harness.store.walCheckpointCounts
        #expect(counts.log < full)
        #expect(counts.writerCheckpoints == before.writerCheckpoints)
        #expect(try await harness.bookmarkCount() == harness.pushes * 10)
    }

    @Test func underConcurrentPushesTheLogStaysBoundedAndNothingIsLost() async throws {
        let harness = try await Harness(SQLiteSyncStore.WALCheckpoints(threshold: 64, slack: 32, hardLimit: 400))
        defer { harness.directory.remove() }
        // Four devices push 25 batches of 10 each at once (group commit keeps the writer busy,
        // so the writer copies the last frames itself, or past the limit the whole log).
        try await withThrowingTaskGroup(of: Void.self) { group in
            for device in 0..<4 {
                group.addTask {
                    for batch in 0..<25 { try await harness.push(batch: "\(device)-\(batch)", device: "device-\(device)") }
                }
            }
            try await group.waitForAll()
        }
        let counts = harness.store.walCheckpointCounts
        #expect(counts.backgroundPasses + counts.writerCheckpoints > 0)
        // A group's commit can hold up to the writer's batch limit: well under a hundred frames
        // of pushes this size.
        #expect(counts.largestLog < 400 + 200)
        #expect(try await harness.bookmarkCount() == 1_000)
    }

    @Test func pastTheHardLimitTheWriterCheckpointsItselfAsSQLiteDoes() async throws {
        var harness = try await Harness(SQLiteSyncStore.WALCheckpoints(threshold: 64, slack: 8, hardLimit: 64))
        defer { harness.directory.remove() }
        while harness.store.walCheckpointCounts.writerCheckpoints == 0 {
            try await harness.push()
            try #require(harness.pushes < 50)
        }
        // The log it copied starts over at the next write: it never grows past the limit by more
        // than a push.
        for _ in 0..<20 { try await harness.push() }
        let counts = harness.store.walCheckpointCounts
        #expect(counts.backgroundPasses == 0)
        #expect(counts.writerCheckpoints >= 2)
        #expect(counts.largestLog < 64 + 40)
        #expect(try await harness.bookmarkCount() == harness.pushes * 10)
    }

    @Test func aStoreReopenedAfterBackgroundCheckpointsHasEveryRecord() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.url.appendingPathComponent("db.sqlite").path
        do {
            var harness = try await Harness(SQLiteSyncStore.WALCheckpoints(threshold: 32, slack: 16, hardLimit: 100_000))
            defer { harness.directory.remove() }
            for _ in 0..<30 { try await harness.push() }
            #expect(try await Self.eventually { harness.store.walCheckpointCounts.backgroundPasses >= 1 })
            try FileManager.default.copyItem(atPath: harness.directory.url.appendingPathComponent("db.sqlite").path, toPath: path)
            if FileManager.default.fileExists(atPath: harness.directory.url.appendingPathComponent("db.sqlite-wal").path) {
                try FileManager.default.copyItem(atPath: harness.directory.url.appendingPathComponent("db.sqlite-wal").path, toPath: path + "-wal")
            }
        }
        // The copy (database file and log as they were) holds every record: nothing the thread
        // did left the two out of step.
        let reopened = try SQLiteSyncStore(path: path)
        let count = try await reopened.read { reader in
            try reader.allRecords("p", "bookmarks", includeDeleted: false).filter { !Bookmark.isRoot($0.id) }.count
        }
        #expect(count == 300)
    }
}
