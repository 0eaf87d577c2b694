import CairnCore
import Foundation
import GRDB
import Testing

@testable import CairnServer

/// The inserts of a push of many ops run on the store's write-behind thread while the engine goes
/// on (`WriteBehind`): every use of the connection waits for them, and one that fails fails its
/// push with nothing of it written.
@Suite("Write-behind inserts")
struct WriteBehindTests {
    static func note(_ id: String, _ version: Int64) -> StoredRecord {
        StoredRecord(
            profileId: "p", collection: "notes", id: id, version: version, data: ["text": .string(id)], fieldStamps: [:],
            hlc: HLC(wall: 1, node: "t"), createdAt: 1, updatedAt: 1, createdSeq: version
        )
    }

    /// Notes `<prefix>1` to `<prefix><count>`, saved by one write that names `count` ops.
    static func writeNotes(_ store: SQLiteSyncStore, _ prefix: String, _ count: Int) async throws {
        try await store.write(profileId: "p", operations: count) { tx in
            for index in 1...count { try tx.saveRecord(Self.note("\(prefix)\(index)", Int64(index)), isNew: true) }
        }
    }

    /// Whether a write failed as one whose insert took a taken key does: with the store's
    /// ``KeyAlreadyStored``, over SQLite's own error.
    static func isTakenKey(_ error: (any Error)?) -> Bool {
        ((error as? KeyAlreadyStored)?.underlying as? DatabaseError)?.extendedResultCode == .SQLITE_CONSTRAINT_PRIMARYKEY
    }

    static func count(_ store: SQLiteSyncStore, _ table: String, idLike: String = "%") async throws -> Int {
        let column = table == "records" ? "id" : "op_id"
        return try await store.pool.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table) WHERE profile_id = 'p' AND \(column) LIKE ?", arguments: [idLike]) ?? 0
        }
    }

    static func insertsRun(_ store: SQLiteSyncStore) -> Int {
        store.writeBehind.insertsRun.load(ordering: .relaxed)
    }

    @Test func aPushOfManyOpsWritesBehindAndReadsItsOwnWrites() async throws {
        try await SQLiteStoreTests.withEngine { store, engine in
            // A write of fewer ops than the threshold runs its inserts itself.
            try await Self.writeNotes(store, "small", SQLiteSyncStore.writeBehindOperations - 1)
            #expect(Self.insertsRun(store) == 0)

            // Given a write of 40 ops that reads a record after every tenth
            let seen = try await store.write(profileId: "p", operations: 40) { tx in
                var seen: [Bool] = []
                for index in 1...40 {
                    try tx.saveRecord(Self.note("n\(index)", Int64(index)), isNew: true)
                    try tx.saveOpResult(
                        StoredOpResult(
                            profileId: "p", opId: "n\(index)", payloadHash: Data([1]),
                            result: OperationResult(opId: "n\(index)", status: .applied, collection: "notes", id: "n\(index)", version: Int64(index)),
                            version: Int64(index), createdAt: 1
                        )
                    )
                    if index % 10 == 0 { seen.append(try tx.record("p", "notes", "n\(index)") != nil) }
                }
                return seen
            }
            // Then its 80 inserts ran on the thread, and each read saw the inserts before it
            #expect(seen == [true, true, true, true])
            #expect(Self.insertsRun(store) == 80)
            #expect(try await Self.count(store, "records", idLike: "n%") == 40)
            #expect(try await Self.count(store, "applied_ops", idLike: "n%") == 40)

            // And through the engine: 30 bookmarks each put first in the toolbar, so that every op
            // reads the folder's order written by the op before it
            let ops = (0..<30).map {
                SyncOperation(
                    opId: "op-\($0)", type: .create, id: "b\($0)", data: ["title": .string("B\($0)"), "url": .string("https://example.com/\($0)")],
                    parentId: "toolbar", index: 0
                )
            }
            let results = try await engine.push(PushRequest(profileId: "p", operations: ops)).results
            #expect(results.allSatisfy { $0.status == .applied })
            #expect(Self.insertsRun(store) >= 80 + 30 * 2)
            let toolbar = try await engine.bookmarks(profileId: "p", includeDeleted: false).bookmarks
                .filter { $0.parentId == "toolbar" }.sorted { $0.position < $1.position }
            #expect(toolbar.map(\.id) == (0..<30).reversed().map { "b\($0)" })
        }
    }

    /// With the thread held, the inserts are certainly still queued when the read comes: it must
    /// wait for them (a read that did not would find nothing).
    @Test func aReadWaitsForTheInsertsQueuedBeforeIt() async throws {
        try await SQLiteStoreTests.withEngine { store, _ in
            let behind = store.writeBehind
            let found = try await store.write(profileId: "p", operations: 20) { tx in
                behind.held.store(true, ordering: .releasing)
                for index in 1...20 { try tx.saveRecord(Self.note("n\(index)", Int64(index)), isNew: true) }
                let release = Thread {
                    usleep(50_000)
                    behind.held.store(false, ordering: .releasing)
                }
                release.start()
                return try tx.records("p", "notes", ids: (1...20).map { "n\($0)" }).count
            }
            #expect(found == 20)
            #expect(Self.insertsRun(store) == 20)
        }
    }

    /// A push that replays one of its own op ids reads the result its earlier op stored, which the
    /// thread wrote.
    @Test func anOpIdRepeatedInAPushOfManyOpsIsADuplicate() async throws {
        try await SQLiteStoreTests.withEngine { store, engine in
            var ops = (0..<20).map { SyncOperation(opId: "op-\($0)", type: .create, collection: "notes", id: "n\($0)", data: ["text": .string("\($0)")]) }
            ops.append(ops[3])
            let results = try await engine.push(PushRequest(profileId: "p", operations: ops)).results
            #expect(results.prefix(20).allSatisfy { $0.status == .applied })
            #expect(results[20].status == .duplicate)
            #expect(results[20].version == results[3].version)
            #expect(Self.insertsRun(store) >= 40)
        }
    }

    /// An insert that failed is the cause of the rollback, whatever the push threw after it (an
    /// atomic batch's rollback would otherwise answer as a refusal).
    @Test func aFailedInsertIsTheErrorEvenWhenThePushThrowsAfterIt() async throws {
        struct Refused: Error {}
        try await SQLiteStoreTests.withEngine { store, _ in
            let behind = store.writeBehind
            var failure: (any Error)?
            do {
                try await store.write(profileId: "p", operations: 20) { tx in
                    for index in 1...10 { try tx.saveRecord(Self.note("n\(index)", Int64(index)), isNew: true) }
                    try tx.saveRecord(Self.note("n5", 11), isNew: true)
                    // The thread has run the failing insert; the push has not heard of it.
                    while behind.insertsRun.load(ordering: .relaxed) < 11 { usleep(100) }
                    throw Refused()
                }
            } catch {
                failure = error
            }
            #expect(Self.isTakenKey(failure), "\(String(describing: failure))")
            let written = try await Self.count(store, "records", idLike: "n%")
            #expect(written == 0)
        }
    }

    @Test func aFailedInsertBehindFailsThePushAndLeavesNothing() async throws {
        try await SQLiteStoreTests.withEngine { store, _ in
            // Given a write whose eleventh insert takes a key already taken, which swallows the
            // error a read then throws and goes on
            await #expect {
                try await store.write(profileId: "p", operations: 20) { tx in
                    for index in 1...10 { try tx.saveRecord(Self.note("n\(index)", Int64(index)), isNew: true) }
                    try tx.saveRecord(Self.note("n5", 11), isNew: true)
                    _ = try? tx.record("p", "notes", "n1")
                    // Every later use of the connection throws it again
                    #expect(throws: DatabaseError.self) { try tx.saveRecord(Self.note("n12", 12), isNew: true) }
                    #expect(throws: DatabaseError.self) { try tx.setSequence("p", 12) }
                }
            } throws: { error in
                // Then the write fails with the insert's own error
                Self.isTakenKey(error)
            }
            // And nothing of it is written, and the next write of many ops writes
            #expect(try await Self.count(store, "records", idLike: "n%") == 0)
            try await Self.writeNotes(store, "m", 20)
            #expect(try await Self.count(store, "records", idLike: "m%") == 20)
        }
    }

    @Test func aPushThatThrowsWithInsertsStillQueuedLeavesNothing() async throws {
        struct Refused: Error {}
        try await SQLiteStoreTests.withEngine { store, _ in
            // Given a write that hands over 500 inserts and throws at once
            await #expect(throws: Refused.self) {
                try await store.write(profileId: "p", operations: 500) { tx in
                    for index in 1...500 { try tx.saveRecord(Self.note("n\(index)", Int64(index)), isNew: true) }
                    throw Refused()
                }
            }
            // Then none of them is written, and the next write of many ops writes
            #expect(try await Self.count(store, "records", idLike: "n%") == 0)
            try await Self.writeNotes(store, "m", 20)
            #expect(try await Self.count(store, "records", idLike: "m%") == 20)
        }
    }

    @Test func groupedPushesWriteBehindInTurnAndAFailedOneIsUndoneAlone() async throws {
        try await SQLiteStoreTests.withEngine { store, _ in
            // Given three writes of 20 ops queued behind a held writer (so one transaction), the
            // second of which inserts a taken key on the thread
            let outcomes = try await SQLiteStoreTests.whileTheWriterIsHeld(store, inFlight: 4) {
                try await SQLiteStoreTests.inOrder(
                    store,
                    [
                        { try await Self.writeNotes(store, "a", 20) },
                        {
                            try await store.write(profileId: "p", operations: 20) { tx in
                                for index in 1...20 { try tx.saveRecord(Self.note("b\(index % 10)", Int64(index)), isNew: true) }
                            }
                        },
                        { try await Self.writeNotes(store, "c", 20) },
                    ]
                )
            }
            // Then they shared one commit, the failing one was undone alone with its own error
            #expect(store.writeGroups.sharedCommits.load(ordering: .relaxed) == 1)
            #expect(store.writeGroups.writesInSharedCommits.load(ordering: .relaxed) == 3)
            if case .failure(let error) = outcomes[1] {
                #expect(Self.isTakenKey(error))
            } else {
                Issue.record("the failing write succeeded")
            }
            #expect(try await Self.count(store, "records", idLike: "b%") == 0)
            // And the others are written
            for (index, prefix) in [(0, "a"), (2, "c")] {
                if case .failure(let error) = outcomes[index] { Issue.record("write \(prefix) failed: \(error)") }
                #expect(try await Self.count(store, "records", idLike: "\(prefix)%") == 20)
            }
        }
    }

    /// In one transaction, a push that throws with its inserts still queued, then a push that
    /// commits: none of the first's inserts may run inside the second's savepoint.
    @Test func aPushThatThrowsInAGroupLeavesNothingToThePushAfterIt() async throws {
        struct Refused: Error {}
        try await SQLiteStoreTests.withEngine { store, _ in
            let behind = store.writeBehind
            let outcomes = try await SQLiteStoreTests.whileTheWriterIsHeld(store, inFlight: 3) {
                try await SQLiteStoreTests.inOrder(
                    store,
                    [
                        {
                            try await store.write(profileId: "p", operations: 500) { tx in
                                behind.held.store(true, ordering: .releasing)
                                for index in 1...500 { try tx.saveRecord(Self.note("b\(index)", Int64(index)), isNew: true) }
                                // The thread starts on them just as the push gives up.
                                behind.held.store(false, ordering: .releasing)
                                throw Refused()
                            }
                        },
                        { try await Self.writeNotes(store, "c", 20) },
                    ]
                )
            }
            #expect(store.writeGroups.sharedCommits.load(ordering: .relaxed) == 1)
            if case .failure(let error) = outcomes[0] { #expect(error is Refused) } else { Issue.record("the throwing push succeeded") }
            if case .failure(let error) = outcomes[1] { Issue.record("the second push failed: \(error)") }
            #expect(try await Self.count(store, "records", idLike: "b%") == 0)
            #expect(try await Self.count(store, "records", idLike: "c%") == 20)
        }
    }

    @Test func theThreadEndsWithItsStore() async throws {
        weak var behind: WriteBehind?
        do {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let store = try await SQLiteStoreTests.storeWithOneUser(in: directory)
            try await Self.writeNotes(store, "n", 20)
            #expect(Self.insertsRun(store) == 20)
            behind = store.writeBehind
        }
        // The thread holds its object until it ends.
        try await SQLiteStoreTests.waitUntil { behind == nil }
    }
}

extension SyncTransaction {
    /// `saveRecord(_:isNew:encodedData:)`, the store writing the data's text itself.
    func saveRecord(_ record: StoredRecord, isNew: Bool) throws {
        try self.saveRecord(record, isNew: isNew, encodedData: nil)
    }
}
