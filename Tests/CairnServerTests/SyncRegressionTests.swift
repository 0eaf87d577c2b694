import CairnCore
import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import CairnServer

/// Defects found in review, each pinned by a test.
@Suite("Sync regressions")
struct SyncRegressionTests {
    @Test func aPushThatTouchesARecordOthersChangedSinceTheCursorReturnsItsState() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "unseen@example.com")
            _ = try await device.push([.createBookmark("c", id: "r", title: "Title", url: "https://old.example")])
            let cursor = try await device.pull(since: 0).cursor
            // Another device changes the URL
            _ = try await device.named("other").push([.updateBookmark("o", id: "r", ["url": "https://new.example"], expected: nil)])
            // This device, still at `cursor`, renames the bookmark blind
            let answer = try await device.named("me").push([.updateBookmark("m", id: "r", ["title": "Renamed"], expected: nil)], cursor: cursor)
            #expect(answer.results.first?.status == .applied)
            // Its answer carries the record's current state, so it learns the other device's URL
            let state = try #require(answer.changes.first { $0.id == "r" })
            #expect(state.data["url"] == "https://new.example")
            #expect(state.data["title"] == "Renamed")
        }
    }

    @Test func aPushWithACursorAheadOfTheProfileIsRefusedBeforeAnythingIsApplied() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "ahead@example.com")
            let before = try await device.bookmarks()
            var body: [String: JSONValue] = try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(["operations": [SyncOperation.createBookmark("x", id: "x", title: "X", url: "https://x.example")]])).objectValue ?? [:]
            body["cursor"] = 10_000
            let response = try await client.post("/api/sync/push", try jsonBody(body), token: device.token)
            #expect(response.status == .gone)
            #expect(try await device.bookmarks().syncVersion == before.syncVersion)
            let seed = try await client.post("/api/bookmarks/sync", jsonBody(#"{"lastSyncVersion":10000,"changes":[{"id":"e","type":"create","bookmarkId":"y","data":{"title":"Y","url":"https://y.example"}}]}"#), token: device.token)
            #expect(seed.status == .gone)
            #expect(try await device.bookmark("y") == nil)
        }
    }

    @Test func aRefusedOpLeavesNothingBehindInABatchThatGoesOn() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "half-applied@example.com")
            _ = try await device.push([.createBookmark("f", id: "folder", title: "Folder")])
            _ = try await device.push([.deleteBookmark("d", id: "folder")])
            let before = try await device.pull(since: 0).cursor
            // A create into the deleted folder would revive it, but its position is invalid
            var bad = SyncOperation.createBookmark("bad", id: "child", title: "Child", url: "https://child.example", parent: "folder")
            bad.position = "not a key!"
            let good = SyncOperation.createBookmark("good", id: "other-child", title: "Other", url: "https://other.example")
            let answer = try await device.push([bad, good])
            #expect(answer.results.map(\.status) == [.rejected, .applied])
            // The refused op revived nothing and took no version; the next op took the next one
            #expect(try await device.bookmark("folder") == nil)
            #expect(answer.results[1].version == before + 1)
            let changes = try await device.pull(since: before).changes
            #expect(changes.map(\.id) == ["other-child"])
        }
    }

    @Test func anOpStoredWithTheOlderPayloadHashStillReplaysAsADuplicate() async throws {
        try await withTestServer { client, components in
            let device = try await Device.register(client, "legacy-hash@example.com")
            let op = SyncOperation(opId: "old-op", type: .upsert, collection: "notes", id: "n1", data: ["url": "https://a.example/x/y"])
            _ = try await device.push([op])
            // The op's row as an older server stored it: the JSONEncoder hash (slashes escaped)
            let legacy = try BatchApplier.legacyPayloadHash(op)
            #expect(legacy != BatchApplier.payloadHash(op))
            let store = try #require(components.store as? SQLiteSyncStore)
            try await store.pool.write { db in
                try db.execute(sql: "UPDATE applied_ops SET payload_hash = ? WHERE op_id = ?", arguments: [legacy, "old-op"])
            }
            let replay = try await device.push([op])
            #expect(replay.results.first?.status == .duplicate)
            // Another payload under that op id is still refused
            var changed = op
            changed.data = ["url": "https://b.example/"]
            #expect(try await device.push([changed]).results.first?.error?.code == "IDEMPOTENCY_MISMATCH")
        }
    }

    @Test func anAtomicRollbackKeepsEarlierDuplicatesAsDuplicates() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "atomic-dup@example.com")
            let create = SyncOperation.createBookmark("once", id: "once", title: "Once", url: "https://once.example")
            _ = try await device.push([create])
            let answer = try await device.push([create, .createBookmark("bad", id: "bad", title: "Bad", url: "nope://")], atomic: true)
            #expect(answer.committed == false)
            #expect(answer.results[0].status == .duplicate)
            #expect(answer.results[1].status == .rejected)
            #expect(try await device.bookmark("once") != nil)
        }
    }

    @Test func retryingARejectedRESTCreateWithItsOpIdAnswersTheSameError() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "rest-retry@example.com")
            for _ in 0..<2 {
                let response = try await client.post("/api/bookmarks", jsonBody(#"{"opId":"same-op","title":"x","url":"nope://x"}"#), token: device.token)
                #expect(response.status == .badRequest)
                #expect(try decode(ErrorEnvelope.self, response).error.details?["field"] == "url")
            }
        }
    }

    @Test func creatingWithALiveIdUpdatesItAndAnswers200() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "create-existing@example.com")
            let first = try await client.post("/api/bookmarks", jsonBody(#"{"id":"same","title":"One","url":"https://one.example"}"#), token: device.token)
            #expect(first.status == .created)
            let second = try await client.post("/api/bookmarks", jsonBody(#"{"id":"same","title":"Two","url":"https://one.example"}"#), token: device.token)
            #expect(second.status == .ok)
            #expect(try decode(Bookmark.self, second).title == "Two")
        }
    }

    @Test func pushRejectsANonStringParentId() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "parent-type@example.com")
            let answer = try await device.push([SyncOperation(opId: "p", type: .create, id: "p", data: ["title": "P", "url": "https://p.example"], parentId: 5)])
            #expect(answer.results.first?.status == .rejected)
            #expect(answer.results.first?.error?.field == "parentId")
        }
    }

    @Test func reimportingAFileWithLookAlikeFoldersAddsNothing() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "lookalike@example.com")
            let json = #"{"bookmarks":[{"title":"Dup","children":[{"title":"A","url":"https://a.example"}]},{"title":"Dup","children":[{"title":"B","url":"https://b.example"}]}]}"#
            for round in 0..<2 {
                let summary = try decode(ImportSummary.self, try await client.execute(
                    uri: "/api/bookmarks/import?parentId=other", method: .post, headers: bearer(device.token), body: ByteBuffer(string: json)
                ))
                #expect(summary.bookmarksCreated == (round == 0 ? 2 : 0), "round \(round)")
            }
            let folders = try await device.bookmarks().bookmarks.filter { $0.title == "Dup" }
            #expect(folders.count == 2)
        }
    }
}

@Suite("Seed surface regressions")
struct SeedRegressionTests {
    @Test func absurdTimestampsAreRefusedNotFatal() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "huge-time@example.com")
            for uri in ["/items/since/1e20", "/items/since/-5", "/api/sync/changes?since=99999999999999999999", "/api/sync/delta?since=1e300"] {
                let response = try await client.get(uri, token: device.token)
                #expect(response.status == .badRequest, "\(uri)")
            }
            let body = try await client.post("/items", jsonBody(#"{"type":"text","content":"x","updated_at":1e300}"#), token: device.token)
            #expect(body.status == .created)
        }
    }

    @Test func timestampPagesNeverRepeatWhenOneMillisecondHoldsMoreThanAPage() async throws {
        let manual = ManualClock()
        try await withTestServer(clock: manual.clock) { client, components in
            let device = try await Device.register(client, "same-ms@example.com")
            _ = try await device.push((0..<7).map { SyncOperation(opId: "o\($0)", type: .create, collection: "cards", id: "c\($0)", data: ["n": .number(Double($0))]) })
            let profile = try decode(MeResponse.self, try await client.get("/api/me", token: device.token)).profiles[0].id
            var since: Int64 = 0
            var seen: Set<String> = []
            for _ in 0..<5 {
                let (records, next) = try await components.engine.recordsUpdated(profileId: profile, collections: ["cards"], since: since, limit: 3)
                seen.formUnion(records.map(\.id))
                #expect(next > since || records.isEmpty)
                if records.isEmpty { break }
                since = next
            }
            #expect(seen.count == 7)
        }
    }

    @Test func aRepushOfAnItemDeletedElsewhereDoesNotResurrectIt() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "peek-zombie@example.com")
            _ = try await client.post("/items", jsonBody(#"{"type":"text","content":"note","sync_id":"n1","updated_at":1700000000000}"#), token: device.token)
            _ = try await client.execute(uri: "/items/n1", method: .delete, headers: bearer(device.token))
            // Another device, after a server change, re-pushes its (older) copy
            let repush = try await client.post("/items", jsonBody(#"{"type":"text","content":"note","sync_id":"n1","updated_at":1700000000000}"#), token: device.token)
            #expect(repush.status == .ok)
            #expect(try decode(JSONValue.self, repush)["item"]?["deleted_at"] != .null)
            #expect(try await client.get("/items/n1", token: device.token).status == .notFound)
        }
    }

    @Test func ifMatchOnAMissingRecordFails() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "ifmatch-missing@example.com")
            var headers = bearer(device.token)
            headers[.ifMatch] = "\"3\""
            let put = try await client.execute(uri: "/api/records/notes/ghost", method: .put, headers: headers, body: jsonBody(#"{"data":{"t":1}}"#))
            #expect(put.status == .preconditionFailed)
            let delete = try await client.execute(uri: "/api/records/notes/ghost", method: .delete, headers: headers)
            #expect(delete.status == .preconditionFailed)
            #expect(try await client.get("/api/records/notes/ghost?includeDeleted=true", token: device.token).status == .notFound)
        }
    }

    @Test func bookyAndPawkitCollectionsDoNotClash() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "clash@example.com")
            _ = try await client.post("/api/collections", jsonBody(#"{"id":"pawkit-col","name":"Reading list"}"#), token: device.token)
            let full = try await client.post("/api/sync/full", jsonBody(#"{"collections":[{"id":"booky-col","name":"Sci-fi"}]}"#), token: device.token)
            #expect(full.status == .ok)
            let pawkit = try decode(JSONValue.self, try await client.get("/api/collections", token: device.token))
            #expect(pawkit["collections"]?[0]?["id"] == "pawkit-col")
            let force = try await client.post("/api/sync/full", jsonBody(#"{"force":true}"#), token: device.token)
            #expect(force.status == .ok)
        }
    }
}

@Suite("Engine review regressions")
struct EngineReviewRegressionTests {
    @Test func aHugeClientCounterCannotCrashTheServer() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "counter@example.com")
            let wall = String(format: "%015lld", Int64(Date().timeIntervalSince1970 * 1000) + 30_000)
            // Beyond the counter's range: refused as malformed
            let overflow = try await client.post(
                "/api/sync/push", jsonBody(#"{"operations":[{"opId":"x","type":"create","collection":"notes","id":"n1","data":{"a":1},"hlc":"\#(wall)-7fffffffffffffff-evil"}]}"#),
                token: device.token
            )
            #expect(overflow.status == .badRequest)
            // At the top of the range: accepted, and the clock rolls over instead of overflowing
            let top = try await device.push([SyncOperation(opId: "y", type: .create, collection: "notes", id: "n1", data: ["a": 1], hlc: HLC("\(wall)-ffffff-edge"))])
            #expect(top.results.first?.status == .applied)
            let v1 = try #require(top.results.first?.version)
            let after = try await device.push([
                SyncOperation(opId: "z", type: .update, collection: "notes", id: "n1", patch: ["a": 2], expectedVersion: v1),
                SyncOperation(opId: "w", type: .create, collection: "notes", id: "n2", data: ["b": 1]),
            ])
            #expect(after.results.map(\.status) == [.applied, .applied])
        }
    }

    @Test func reCreatingADeletedFolderInsideItselfIsRefused() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "recreate@example.com")
            _ = try await device.push([.createBookmark("1", id: "p", title: "P"), .createBookmark("2", id: "d", title: "D", parent: "p")])
            _ = try await device.push([.deleteBookmark("3", id: "p")])
            let selfParent = try await device.push([.createBookmark("4", id: "p", title: "P again", parent: "p")])
            #expect(selfParent.results.first?.error?.code == "CYCLE")
            let loop = try await device.push([.createBookmark("5", id: "p", title: "P again", parent: "d")])
            #expect(loop.results.first?.error?.code == "CYCLE")
            let typeSwap = try await device.push([.createBookmark("6", id: "p", title: "Now a link", url: "https://x.example")])
            #expect(typeSwap.results.first?.error?.field == "isFolder")
            try await device.assertTreeValid()
        }
    }

    @Test func anExpectedVersionAheadOfTheRecordDoesNotOverrideNewerEdits() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "ahead-version@example.com")
            let t0 = Date()
            _ = try await device.push([SyncOperation(opId: "1", type: .create, collection: "notes", id: "n", data: ["t": "old"], hlc: stamp("a", offset: -10_000, base: t0))])
            _ = try await device.push([SyncOperation(opId: "2", type: .update, collection: "notes", id: "n", patch: ["t": "newer"], hlc: stamp("b", base: t0))])
            let bogus = try await device.push([SyncOperation(opId: "3", type: .update, collection: "notes", id: "n", patch: ["t": "stale"], expectedVersion: 999_999, hlc: stamp("c", offset: -5_000, base: t0))])
            #expect(bogus.results.first?.status == .merged)
            let pulled = try await device.pull(since: 0, collections: "notes")
            #expect(pulled.changes.first?.data["t"] == "newer")
        }
    }
}

@Suite("Op savepoints")
struct OpWritesTests {
    /// An op opens its savepoint before its first write, unless that write is its last step; a
    /// write after the last one, or a refusal after it, is refused loudly (not a `CairnError`, so
    /// the whole transaction rolls back).
    @Test func aSavepointIsOpenedBeforeTheFirstWriteUnlessItIsTheLast() throws {
        var writes = OpWrites()
        // Outside an op (an import, a profile's deletion): never a savepoint
        #expect(try writes.willWrite(last: false) == false)
        #expect(try writes.refused(opId: "x", CairnError(.validation, "no")) == false)

        // Refused before writing: nothing to undo
        writes.begin()
        #expect(try writes.refused(opId: "a", CairnError(.validation, "no")) == false)
        writes.end()

        // Two writes: one savepoint, opened before the first, rolled back on refusal
        writes.begin()
        #expect(try writes.willWrite(last: false) == true)
        #expect(try writes.willWrite(last: true) == false)
        #expect(writes.state == .savepoint)
        #expect(try writes.refused(opId: "b", CairnError(.validation, "no")) == true)
        writes.end()

        // A single last write: no savepoint, and nothing may follow it
        writes.begin()
        #expect(try writes.willWrite(last: true) == false)
        #expect(writes.state == .lastWithoutSavepoint)
        #expect(throws: OpWrites.UnguardedWrite.self) { try writes.willWrite(last: false) }
        #expect(throws: OpWrites.UnguardedWrite.self) { try writes.refused(opId: "c", CairnError(.validation, "no")) }
        writes.end()
        #expect(writes.state == .outsideOp)
    }
}
