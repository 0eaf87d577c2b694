import CairnCore
import Foundation
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import Testing

@testable import CairnServer

/// A push of creates first runs taking its ids for new, without reading them
/// (`SyncEngine.assumesNewIds`); the store refuses a row inserted as new whose key is taken, and
/// the push then runs again with its reads. These tests hold that the outcome is always the one
/// the reads give.
@Suite("Pushes that take their ids for new")
struct AssumedNewIdsTests {
    /// An engine over a fresh store holding user `u` with profile `p`, whose clock never moves
    /// (two engines built alike then stamp the same times).
    struct Harness: Sendable {
        let directory: TemporaryDirectory
        let store: SQLiteSyncStore
        let engine: SyncEngine

        init(assumingNew: Bool) async throws {
            self.directory = try TemporaryDirectory()
            self.store = try await SQLiteStoreTests.storeWithOneUser(in: self.directory)
            let clock = ManualClock(start: Date(timeIntervalSince1970: 1_795_000_000))
            var engine = SyncEngine(store: self.store, clock: clock.clock, limits: Limits(), notifier: NoChangeNotifier(), logger: Logger(label: "test"))
            engine.assumesNewIds = assumingNew
            self.engine = engine
        }

        func push(_ ops: [SyncOperation]) async throws -> [OperationResult] {
            try await self.outcome(ops).results
        }

        func outcome(_ ops: [SyncOperation], cursor: Int64? = nil) async throws -> PushOutcome {
            var request = PushRequest(profileId: "p", clientId: "device", operations: ops)
            request.cursor = cursor
            return try await self.engine.push(request)
        }

        /// Every record of the profile (tombstones too); with `stamps`, their HLC stamps too
        /// (the same on two servers only when every op carries its own).
        func records(stamps: Bool = false) async throws -> [String] {
            try await self.store.read { reader in
                try ["bookmarks", "notes"].flatMap { collection in
                    try reader.allRecords("p", collection, includeDeleted: true).map { record in Self.line(record, stamps: stamps) }
                }.sorted()
            }
        }

        static func line(_ record: StoredRecord, stamps: Bool) -> String {
            let head = "\(record.collection)/\(record.id) v\(record.version) c\(record.createdSeq) deleted=\(record.deleted) "
            let place = "parent=\(record.parentId ?? "-") position=\(record.position ?? "-") by=\(record.clientId ?? "-") "
            let times = "at=\(record.createdAt),\(record.updatedAt) "
            let data: String = record.data.keys.sorted().map { key in "\(key)=\(record.data[key]!.jsonText)" }.joined(separator: ",")
            guard stamps else { return head + place + times + data }
            let fields: [String] = record.fieldStamps.keys.sorted().map { key in
                "\(key)@\(record.fieldStamps[key]!)|\(record.fieldVersions[key] ?? -1)"
            }
            return head + place + times + data + " hlc=\(record.hlc) " + fields.joined(separator: ",")
        }

        func remove() { self.directory.remove() }
    }

    static func bookmark(_ id: String, op: String, parent: String = "other", title: String = "B") -> SyncOperation {
        SyncOperation(opId: op, type: .create, id: id, data: ["title": .string(title), "url": .string("https://example.com/\(id)")], parentId: .string(parent))
    }

    /// A result as compared: everything but the message's wording is the same either way.
    static func summary(_ result: OperationResult) -> String {
        "\(result.opId) \(result.status) \(result.collection)/\(result.id ?? "-") v\(result.version.map(String.init) ?? "-") "
            + "was=\(result.originalStatus.map { "\($0)" } ?? "-") error=\(result.error?.code ?? "-") affected=\(result.affected ?? []) "
            + "record=\(result.record?.jsonText ?? "-")"
    }

    @Test func aPushOfNewIdsIsAppliedOnce() async throws {
        let harness = try await Harness(assumingNew: true)
        defer { harness.remove() }

        // When 100 creates of new ids are pushed (their inserts on the write-behind thread)
        let ops = (0..<100).map { Self.bookmark("b\($0)", op: "op-\($0)") }
        let results = try await harness.push(ops)

        // Then every one is applied, in one run
        #expect(results.allSatisfy { $0.status == .applied })
        #expect(results.map(\.version) == (0..<100).map { Int64($0 + 5) })  // after the 4 roots
        #expect(harness.engine.pushesRunAgain == 0)
        #expect(try await harness.records().count == 104)
    }

    @Test func aResentPushRunsAgainWithItsReadsAndWritesNothingTwice() async throws {
        let harness = try await Harness(assumingNew: true)
        defer { harness.remove() }
        let ops = (0..<100).map { Self.bookmark("b\($0)", op: "op-\($0)") }
        let first = try await harness.push(ops)
        let stored = try await harness.records()
        let sequence = try await harness.engine.sequence(profileId: "p")

        // When the same push comes again (its answer was lost)
        let again = try await harness.push(ops)

        // Then it ran a second time, with its reads, and each op is a duplicate of its first result
        #expect(harness.engine.pushesRunAgain == 1)
        #expect(again.map(\.status) == Array(repeating: .duplicate, count: 100))
        #expect(again.map(\.version) == first.map(\.version))
        let after = try await harness.records()
        #expect(after == stored, "\(Set(after).symmetricDifference(stored).sorted())")
        #expect(try await harness.engine.sequence(profileId: "p") == sequence)
    }

    /// The 60th create names a record that exists: its insert fails on the write-behind thread,
    /// after the engine has gone on; nothing of the first attempt is kept.
    @Test func aKnownIdLateInTheBatchIsAnUpdateAndNothingElseChanges() async throws {
        let harness = try await Harness(assumingNew: true)
        defer { harness.remove() }
        _ = try await harness.push([Self.bookmark("known", op: "first", title: "Old"), Self.bookmark("other-1", op: "first-2")])
        let sequence = try await harness.engine.sequence(profileId: "p")

        // When a push of 100 creates holds one of the known id
        var ops = (0..<100).map { Self.bookmark("n\($0)", op: "new-\($0)") }
        ops[60] = Self.bookmark("known", op: "new-60", title: "New")
        let results = try await harness.push(ops)

        // Then it ran again with its reads: the known id was updated, the others created, each
        // change once
        #expect(harness.engine.pushesRunAgain == 1)
        #expect(results.allSatisfy { $0.status == .applied })
        #expect(try await harness.engine.sequence(profileId: "p") == sequence + 100)
        let known = try await harness.store.read { try $0.record("p", "bookmarks", "known") }
        #expect(known?.data["title"] == "New")
        #expect(known?.createdSeq == 5)
        #expect(try await harness.records().count == 4 + 2 + 99)
    }

    /// A push of creates refused before its ops (a cursor ahead of the profile, `410`) is
    /// refused once: only a taken key or an op not applied runs a push again.
    @Test func aPushRefusedBeforeItsOpsIsNotRunAgain() async throws {
        let harness = try await Harness(assumingNew: true)
        defer { harness.remove() }
        let ops = (0..<20).map { Self.bookmark("b\($0)", op: "op-\($0)") }
        await #expect(throws: CairnError.self) { try await harness.outcome(ops, cursor: 1_000) }
        #expect(harness.engine.pushesRunAgain == 0)
        #expect(try await harness.records().count == 0)
    }

    /// Through the real router: a device resends a push whose answer it lost; the resend answers
    /// `duplicate` op by op, and `/metrics` counts the push run again.
    @Test func aResentPushOverRESTIsADuplicateAndCountedInMetrics() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "resend@example.com")
            let ops = (0..<30).map { Self.bookmark("r\($0)", op: "resend-\($0)") }
            let first = try await device.push(ops)
            let again = try await device.push(ops)
            #expect(first.results.allSatisfy { $0.status == .applied })
            #expect(again.results.map(\.status) == Array(repeating: .duplicate, count: 30))
            #expect(again.results.map(\.version) == first.results.map(\.version))
            #expect(again.cursor == first.cursor)
            let metrics = String(buffer: try await client.get("/metrics").body)
            #expect(metrics.contains("cairn_pushes_run_again_total 1"))
        }
    }

    /// A push queued behind a held writer shares a transaction with others: when its attempt is
    /// rolled back (to its savepoint), theirs commit, and it runs again on its own.
    @Test func aResentPushInAGroupRunsAgainAndTheOthersCommit() async throws {
        let harness = try await Harness(assumingNew: true)
        defer { harness.remove() }
        let resent = (0..<20).map { Self.bookmark("r\($0)", op: "resent-\($0)") }
        _ = try await harness.push(resent)

        let (again, fresh) = try await SQLiteStoreTests.whileTheWriterIsHeld(harness.store, inFlight: 3) {
            async let again = harness.push(resent)
            async let fresh = harness.push((0..<20).map { Self.bookmark("f\($0)", op: "fresh-\($0)") })
            return try await (again, fresh)
        }

        #expect(harness.store.writeGroups.sharedCommits.load(ordering: .relaxed) == 1)
        #expect(again.allSatisfy { $0.status == .duplicate })
        #expect(fresh.allSatisfy { $0.status == .applied })
        #expect(harness.engine.pushesRunAgain == 1)
        #expect(try await harness.records().count == 4 + 40)
    }

    /// Random batches of creates and upserts, with every kind of id the reads would find (known
    /// live records, tombstones, stored op ids with the same or another payload, op ids twice in
    /// a batch, a known folder named by an op after the ones that fill it, invalid and root ids) mixed into batches of new
    /// ones, pushed to two servers alike: one that takes ids for new first, one that always
    /// reads. The answers and the records must be the same after every batch.
    @Test func theAnswersAndRecordsAreThoseOfAPushThatReads() async throws {
        let assuming = try await Harness(assumingNew: true)
        let reading = try await Harness(assumingNew: false)
        defer {
            assuming.remove()
            reading.remove()
        }
        var random = SplitMix64(seed: 0x5eed_2023)
        var generator = BatchGenerator()
        for round in 0..<60 {
            let ops = generator.batch(round: round, using: &random)
            let expected = try await reading.outcome(ops)
            let actual = try await assuming.outcome(ops)
            #expect(actual.results.map(Self.summary) == expected.results.map(Self.summary), "round \(round)")
            #expect(actual.previousSequence == expected.previousSequence, "round \(round)")
            #expect(actual.sequence == expected.sequence, "round \(round)")
            #expect(actual.touched == expected.touched, "round \(round)")
            generator.learn(ops, expected.results)
        }
        // Every op carried its own HLC stamp, so the records' stamps compare too.
        let (mine, theirs) = (try await assuming.records(stamps: true), try await reading.records(stamps: true))
        #expect(mine == theirs, "\(Set(mine).symmetricDifference(theirs).sorted().prefix(6))")
        #expect(try await assuming.engine.sequence(profileId: "p") == reading.engine.sequence(profileId: "p"))
        // Both paths were taken: batches of new ids committed at once, the others ran again.
        #expect(reading.engine.pushesRunAgain == 0)
        #expect(assuming.engine.pushesRunAgain > 10)
        #expect(assuming.engine.pushesRunAgain < 50)
    }
}

/// Batches for the comparison above: mostly creates of new ids, with ids the reads would find.
struct BatchGenerator {
    private var next = 0
    private var liveBookmarks: [String] = []
    private var folders: [String] = ["other", "toolbar"]
    private var notes: [String] = []
    private var tombstones: [String] = []
    private var pastOps: [SyncOperation] = []

    private mutating func fresh(_ prefix: String) -> String {
        self.next += 1
        return "\(prefix)\(self.next)"
    }

    /// `op` with a stamp of its own (the device's clock, a millisecond per op, within the
    /// server's allowed drift), so that both servers store the same stamps.
    private mutating func stamped(_ op: SyncOperation) -> SyncOperation {
        var op = op
        self.next += 1
        op.hlc = HLC(wall: 1_795_000_000_000 + Int64(self.next), node: "device")
        return op
    }

    mutating func batch(round: Int, using random: inout SplitMix64) -> [SyncOperation] {
        // Every fifth batch deletes a few records (tombstones for later creates): not creates
        // only, so both servers read.
        if round % 5 == 4, self.liveBookmarks.count > 3 {
            return (0..<2).map { _ in
                let id = self.liveBookmarks.remove(at: random.below(self.liveBookmarks.count))
                self.tombstones.append(id)
                return self.stamped(SyncOperation(opId: self.fresh("del-"), type: .delete, id: id))
            }
        }
        let count = 2 + random.below(39)  // below and above the write-behind's 16
        var ops: [SyncOperation] = []
        for _ in 0..<count { ops.append(self.stamped(self.newCreate(using: &random))) }
        // Half the batches are new ids only; the others get one to three ops the reads would see.
        if random.below(2) == 1 {
            for _ in 0..<(1 + random.below(3)) {
                let position = random.below(ops.count + 1)
                guard let (tricky, isCopy) = self.tricky(in: ops, at: position, using: &random) else { continue }
                ops.insert(isCopy ? tricky : self.stamped(tricky), at: position)
            }
        }
        return ops
    }

    private mutating func newCreate(using random: inout SplitMix64) -> SyncOperation {
        let opId = self.fresh("op-")
        switch random.below(4) {
        case 0:
            let id = self.fresh("f")
            return SyncOperation(opId: opId, type: .create, id: id, data: ["title": "F", "isFolder": true], parentId: .string(self.folders[random.below(self.folders.count)]))
        case 1:
            return SyncOperation(opId: opId, type: random.below(2) == 0 ? .create : .upsert, collection: "notes", id: self.fresh("n"), data: ["text": .string(opId)])
        default:
            let id = self.fresh("b")
            return AssumedNewIdsTests.bookmark(id, op: opId, parent: self.folders[random.below(self.folders.count)], title: opId)
        }
    }

    /// An op whose id, op id or parent the reads would find, or that is refused; `isCopy` when
    /// it is an op sent before (kept as it was, its stamp included).
    private mutating func tricky(in ops: [SyncOperation], at position: Int, using random: inout SplitMix64) -> (SyncOperation, isCopy: Bool)? {
        let opId = self.fresh("op-")
        switch random.below(13) {
        case 0:  // a known live bookmark created again: an update
            guard let id = self.liveBookmarks.randomElement(using: &random) else { return nil }
            return (AssumedNewIdsTests.bookmark(id, op: opId, title: "again \(opId)"), false)
        case 1:  // a tombstone created again: revived
            guard let id = self.tombstones.randomElement(using: &random) else { return nil }
            return (AssumedNewIdsTests.bookmark(id, op: opId, title: "revived \(opId)"), false)
        case 2:  // a known folder created again as a bookmark: refused
            guard let id = self.folders.filter({ !Bookmark.isRoot($0) }).randomElement(using: &random) else { return nil }
            return (AssumedNewIdsTests.bookmark(id, op: opId), false)
        case 3:  // an op sent before, unchanged: a duplicate
            return self.pastOps.randomElement(using: &random).map { ($0, true) }
        case 4:  // an op id sent before, with another payload: refused
            guard let past = self.pastOps.randomElement(using: &random) else { return nil }
            return (AssumedNewIdsTests.bookmark(self.fresh("b"), op: past.opId), false)
        case 5:  // an op id twice in this batch
            guard position > 0 else { return nil }
            return (ops[random.below(position)], true)
        case 6:  // a known folder created again (an update), after ops that put bookmarks in it
            guard let id = self.folders.filter({ !Bookmark.isRoot($0) }).randomElement(using: &random) else { return nil }
            return (SyncOperation(opId: opId, type: .create, id: id, data: ["title": "F again", "isFolder": true], parentId: "other"), false)
        case 7:  // a known note upserted
            guard let id = self.notes.randomElement(using: &random) else { return nil }
            return (SyncOperation(opId: opId, type: .upsert, collection: "notes", id: id, data: ["text": "upserted"]), false)
        case 8:  // an invalid id
            return (AssumedNewIdsTests.bookmark("not valid!", op: opId), false)
        case 9:  // a new bookmark placed after a known one, or before one of this batch (known or not)
            var op = AssumedNewIdsTests.bookmark(self.fresh("b"), op: opId)
            let earlier = ops.prefix(position).compactMap { $0.collection == "bookmarks" ? $0.id : nil }
            if random.below(2) == 0 || earlier.isEmpty {
                op.afterId = self.liveBookmarks.randomElement(using: &random) ?? "b1"
            } else {
                op.beforeId = earlier[random.below(earlier.count)]
            }
            return (op, false)
        case 10:  // a new bookmark at an index of `other`
            var op = AssumedNewIdsTests.bookmark(self.fresh("b"), op: opId)
            op.index = random.below(4)
            return (op, false)
        case 11:  // a note with the id of a known bookmark: another collection, another record
            guard let id = self.liveBookmarks.randomElement(using: &random) else { return nil }
            return (SyncOperation(opId: opId, type: .create, collection: "notes", id: id, data: ["text": "same id"]), false)
        default:  // a root created: refused, or an update of it when it exists
            return (AssumedNewIdsTests.bookmark("toolbar", op: opId), false)
        }
    }

    /// What a batch left, by the answers of the server that reads.
    mutating func learn(_ ops: [SyncOperation], _ results: [OperationResult]) {
        for (op, result) in zip(ops, results) {
            self.pastOps.append(op)
            guard result.status == .applied || result.status == .merged, let id = op.id, op.type != .delete else { continue }
            if op.collection == "notes" {
                if !self.notes.contains(id) { self.notes.append(id) }
            } else if op.data?["isFolder"]?.boolValue == true {
                if !self.folders.contains(id) { self.folders.append(id) }
            } else {
                self.tombstones.removeAll { $0 == id }
                if !self.liveBookmarks.contains(id) { self.liveBookmarks.append(id) }
            }
        }
    }
}

/// A small seeded generator, so a failing round can be run again.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        self.state = seed
    }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ bound: Int) -> Int {
        Int(self.next() % UInt64(bound))
    }
}
