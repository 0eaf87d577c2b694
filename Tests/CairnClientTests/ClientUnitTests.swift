import CairnCore
import Foundation
import GRDB
import Testing

@testable import CairnClient

@Suite("Client SDK units")
struct ClientUnitTests {
    @Test func theClockNeverRunsBehindWhatItSawOrStampedBefore() {
        let clock = LocalClock(node: "slow")
        let first = clock.next()
        #expect(clock.next() > first)
        // A change seen on the server a day "ahead" of this device's clock: later edits come after it
        let seen = first.wall + 86_400_000
        clock.observe(wall: seen)
        let after = clock.next()
        #expect(after.wall >= seen)
    }

    /// S9: a device a day fast or slow stamps with the server's time once it has seen a `Date`
    /// header; a clock within 45 s of the server's is left alone (the HLC covers it).
    @Test func theClockCorrectsADayOfSkewFromTheServersDate() {
        let server: Int64 = 1_790_000_123_456
        for skew: Int64 in [86_400_000, -86_400_000, 3_600_000 + 20_000] {
            let clock = LocalClock(node: "skewed", wall: { server + skew })
            #expect(clock.observeServerDate(server / 1000 * 1000))
            #expect(abs(clock.next().wall - server) < 30_000)
            // Another answer a second later changes nothing (no flapping on the Date's resolution)
            #expect(!clock.observeServerDate(server / 1000 * 1000 + 1000))
        }
        // A whole number of minutes off: corrected exactly
        let exact = LocalClock(node: "exact", wall: { server - 86_400_000 })
        exact.observeServerDate(server / 1000 * 1000)
        #expect(exact.offset == 86_400_000)
        #expect(exact.now == server)
        // 40 s off is not corrected
        let close = LocalClock(node: "close", wall: { server + 40_000 })
        #expect(!close.observeServerDate(server / 1000 * 1000))
        #expect(close.offset == 0)
        // A correction backwards never makes stamps go back
        let fast = LocalClock(node: "fast", wall: { server + 86_400_000 })
        let before = fast.next()
        fast.observeServerDate(server / 1000 * 1000)
        #expect(fast.next() > before)
    }

    /// A move checks for a cycle by walking up from its target; a loop in the local view that
    /// does not go through the moved node (two concurrent moves the server has not resolved yet)
    /// ends the walk at once instead of going round it 100,000 times.
    @Test func aMoveBelowALocalLoopEndsItsWalk() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-loop-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let client = try CairnClient(configuration: ClientConfiguration(
            serverURL: URL(string: "http://127.0.0.1:9")!, credentials: .apiKey("unused"), replicaPath: directory.appendingPathComponent("r.sqlite")))
        try await client.replica.pool.write { db in
            for (id, parent) in [("a", "b"), ("b", "a")] {
                let data: [String: JSONValue] = ["id": .string(id), "title": .string(id), "isFolder": true, "parentId": .string(parent), "position": "V", "tags": []]
                try Replica.rebase(db, "bookmarks", id, base: (RecordState(data: data, deleted: false), 1))
            }
        }
        let mark = try await client.bookmarks.add(url: "https://loop.example", parentId: "other")
        let started = ContinuousClock.now
        try await client.bookmarks.move(mark.id, to: "a")
        #expect(ContinuousClock.now - started < .seconds(2))
        #expect(try await client.bookmarks.get(mark.id)?.parentId == "a")
        await #expect(throws: CairnClientError.self) { try await client.bookmarks.move("a", to: "b") }
    }

    /// The outbox stores ops with CairnCore's JSON writer and reads them back with its reader: every
    /// field survives, and an op stored by Foundation's JSONEncoder (older replicas) still reads.
    @Test func outboxOpsRoundTripThroughTheStoredText() throws {
        let full = SyncOperation(
            opId: "d-1", type: .move, collection: "bookmarks", id: "b 1", data: ["title": "é \"q\"", "n": 1.5, "tags": ["x"]],
            patch: ["url": .null], expectedVersion: 42, parentId: "toolbar", index: 3, afterId: "a", beforeId: "c", position: "Vk",
            hlc: HLC(wall: 1_790_000_000_123, counter: 7, node: "dev"))
        let bare = SyncOperation(opId: "d-2", type: .delete, collection: "notes", id: "n1")
        for op in [full, bare] {
            #expect(try Replica.decode(SyncOperation.self, Replica.encode(op)) == op)
            let legacy = String(decoding: try JSONEncoder().encode(op), as: UTF8.self)
            #expect(try Replica.decode(SyncOperation.self, legacy) == op)
        }
        let fields: [String: JSONValue] = ["title": "t", "tags": [], "deleted": false, "n": 12, "nested": ["a": [1, 2]]]
        #expect(try Replica.decodeFields(Replica.encode(fields)) == fields)
    }

    /// Placing a node reads its siblings through the parent index, not every record.
    @Test func placingANodeUsesTheChildrenIndex() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-plan-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let replica = try Replica(path: directory.appendingPathComponent("r.sqlite"))
        let plan = try await replica.pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    EXPLAIN QUERY PLAN SELECT id, json_extract(view, '$.position') AS position FROM records
                    WHERE collection = 'bookmarks' AND json_extract(view, '$.parentId') = ? AND deleted = 0 AND view IS NOT NULL
                    """,
                arguments: ["other"]
            ).map { $0["detail"] as String }
        }
        #expect(plan.contains { $0.contains("USING INDEX records_by_parent") }, "\(plan)")
    }

    @Test func httpDatesParse() {
        let date = HTTPClient.httpDate("Sun, 22 Nov 2026 04:10:07 GMT")
        #expect(date.map { Int64($0.timeIntervalSince1970) } == 1_795_320_607)
        #expect(HTTPClient.httpDate("yesterday") == nil)
    }

    @Test func localOperationsFoldLikeTheServer() {
        var state = RecordState.absent
        state = OperationFold.apply(SyncOperation(opId: "1", type: .upsert, collection: "notes", id: "n", data: ["a": 1, "b": 2]), to: state)
        state = OperationFold.apply(SyncOperation(opId: "2", type: .update, collection: "notes", id: "n", patch: ["b": .null, "c": 3]), to: state)
        #expect(state.data == ["a": 1, "c": 3])
        state = OperationFold.apply(SyncOperation(opId: "3", type: .delete, collection: "notes", id: "n"), to: state)
        #expect(state.deleted)
        // Delete wins: an update of a tombstone changes nothing
        let after = OperationFold.apply(SyncOperation(opId: "4", type: .update, collection: "notes", id: "n", patch: ["a": 9]), to: state)
        #expect(after == state)
        // A bookmark move sets placement only
        var mark = OperationFold.apply(
            SyncOperation(opId: "5", type: .create, id: "b", data: ["title": "T", "url": "https://a.example"], parentId: "toolbar", position: "V"),
            to: .absent)
        mark = OperationFold.apply(SyncOperation(opId: "6", type: .move, id: "b", parentId: "menu", position: "W"), to: mark)
        #expect(mark.data?["parentId"] == "menu" && mark.data?["position"] == "W" && mark.data?["title"] == "T")
    }

    @Test func backoffGrowsWithJitterUpToTheCap() {
        for attempt in 1...12 {
            let delay = Backoff.delay(attempt: attempt, base: .seconds(1), cap: .seconds(60))
            let ceiling = min(Duration.seconds(1) * (1 << (attempt - 1)), .seconds(60))
            #expect(delay <= ceiling && delay >= ceiling / 2 - .milliseconds(1))
        }
    }
}
