import CairnCore
import Foundation
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
