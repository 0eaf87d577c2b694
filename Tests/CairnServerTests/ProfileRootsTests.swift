import CairnCore
import Foundation
import GRDB
import Logging
import Testing

@testable import CairnServer

/// A push reads the bookmark roots only until a commit shows them there (`ProfileRoots`).
@Suite("Bookmark roots known to be committed")
struct ProfileRootsTests {
    typealias Harness = AssumedNewIdsTests.Harness

    static func bookmark(_ id: String, url: String? = nil) -> SyncOperation {
        var data: [String: JSONValue] = ["title": .string(id)]
        if let url { data["url"] = .string(url) }
        return SyncOperation(opId: "op-\(id)", type: .create, id: id, data: .object(data), parentId: .string("other"))
    }

    func roots(_ harness: Harness) async throws -> [String] {
        try await harness.store.read { reader in
            try reader.records("p", "bookmarks", ids: Bookmark.rootIds).keys.sorted()
        }
    }

    @Test func aCommittedPushNotesTheRootsAndTheNextOneDoesNotReadThem() async throws {
        let harness = try await Harness(assumingNew: true)
        defer { harness.remove() }
        #expect(!harness.engine.profileRoots.arePresent("p"))
        let first = try await harness.push([Self.bookmark("a", url: "https://a.example")])
        #expect(first.map(\.status) == [.applied])
        #expect(try await self.roots(harness) == Bookmark.rootIds.sorted())
        #expect(harness.engine.profileRoots.arePresent("p"))

        // Removed behind the engine's back (nothing in Cairn can do this): a push that read them
        // would create them again, one that knows them does not.
        try await harness.store.pool.write { db in
            try db.execute(sql: "DELETE FROM records WHERE profile_id = 'p' AND id IN ('toolbar', 'menu', 'mobile')")
        }
        let second = try await harness.push([Self.bookmark("b", url: "https://b.example"), Self.bookmark("c", url: "https://c.example")])
        #expect(second.map(\.status) == [.applied, .applied])
        #expect(try await self.roots(harness) == ["other"])
    }

    @Test func aPushWhoseOnlyOpIsRefusedNotesNothing() async throws {
        let harness = try await Harness(assumingNew: true)
        defer { harness.remove() }
        // The roots are created inside the op's savepoint, which its refusal (no url) rolls back.
        let refused = try await harness.push([Self.bookmark("a")])
        #expect(refused.map(\.status) == [.rejected])
        #expect(try await self.roots(harness).isEmpty)
        #expect(!harness.engine.profileRoots.arePresent("p"))

        let next = try await harness.push([Self.bookmark("b", url: "https://b.example")])
        #expect(next.map(\.status) == [.applied])
        #expect(try await self.roots(harness) == Bookmark.rootIds.sorted())
        #expect(harness.engine.profileRoots.arePresent("p"))
    }

    @Test func aRefusedFirstOpThenAnAppliedOneNotesTheRoots() async throws {
        let harness = try await Harness(assumingNew: true)
        defer { harness.remove() }
        let results = try await harness.push([Self.bookmark("a"), Self.bookmark("b", url: "https://b.example")])
        #expect(results.map(\.status) == [.rejected, .applied])
        #expect(try await self.roots(harness) == Bookmark.rootIds.sorted())
        #expect(harness.engine.profileRoots.arePresent("p"))
    }

    @Test func aRolledBackAtomicBatchNotesNothing() async throws {
        let harness = try await Harness(assumingNew: true)
        defer { harness.remove() }
        let outcome = try await harness.engine.push(
            PushRequest(profileId: "p", clientId: "device", operations: [Self.bookmark("a", url: "https://a.example"), Self.bookmark("b")], atomic: true)
        )
        #expect(!outcome.committed)
        #expect(try await self.roots(harness).isEmpty)
        #expect(!harness.engine.profileRoots.arePresent("p"))

        let next = try await harness.push([Self.bookmark("c", url: "https://c.example")])
        #expect(next.map(\.status) == [.applied])
        #expect(try await self.roots(harness) == Bookmark.rootIds.sorted())
    }

    @Test func aDeletedProfileIsForgotten() async throws {
        let harness = try await Harness(assumingNew: true)
        defer { harness.remove() }
        _ = try await harness.push([Self.bookmark("a", url: "https://a.example")])
        #expect(harness.engine.profileRoots.arePresent("p"))
        try await harness.engine.deleteProfile(profileId: "p", clientId: "device")
        #expect(!harness.engine.profileRoots.arePresent("p"))
    }
}
