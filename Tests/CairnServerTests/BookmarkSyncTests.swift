import CairnCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@testable import CairnServer

@Suite("Sync engine: bookmarks through the real router")
struct BookmarkSyncTests {
    // MARK: Merge and clocks

    @Test func editsOfDifferentFieldsFromTheSameBaseBothSurvive() async throws {
        try await withTestServer { client, _ in
            let t0 = Date()
            let device = try await Device.register(client, "merge@example.com")
            let created = try await device.push([.createBookmark("c1", id: "b1", title: "Old", url: "https://a.example")])
            let base = try #require(created.results.first?.version)
            // Phone changes the title, laptop the URL, both from version `base`
            let phone = try await device.named("phone").push([.updateBookmark("p1", id: "b1", ["title": "New title"], expected: base, hlc: stamp("phone", base: t0))])
            let laptop = try await device.named("laptop").push([.updateBookmark("l1", id: "b1", ["url": "https://b.example"], expected: base, hlc: stamp("laptop", offset: -5000, base: t0))])
            #expect(phone.results.first?.status == .applied)
            #expect(laptop.results.first?.status == .merged)
            let bookmark = try #require(try await device.bookmark("b1"))
            #expect(bookmark.title == "New title")
            #expect(bookmark.url == "https://b.example")
        }
    }

    @Test func sameFieldTheLaterHLCWins() async throws {
        try await withTestServer { client, _ in
            let t0 = Date()
            let device = try await Device.register(client, "lww@example.com")
            let base = try #require(try await device.push([.createBookmark("c1", id: "b1", title: "Base", url: "https://a.example", hlc: stamp("x", offset: -60_000, base: t0))]).results.first?.version)
            // The later edit arrives first; the earlier one (concurrent, same base) must not overwrite it
            _ = try await device.named("phone").push([.updateBookmark("p1", id: "b1", ["title": "Later"], expected: base, hlc: stamp("phone", offset: -1000, base: t0))])
            let stale = try await device.named("laptop").push([.updateBookmark("l1", id: "b1", ["title": "Earlier"], expected: base, hlc: stamp("laptop", offset: -2000, base: t0))])
            #expect(stale.results.first?.status == .merged)
            #expect(try await device.bookmark("b1")?.title == "Later")
            // And a concurrent edit with a later stamp does win
            _ = try await device.named("tablet").push([.updateBookmark("t1", id: "b1", ["title": "Latest"], expected: base, hlc: stamp("tablet", offset: -500, base: t0))])
            #expect(try await device.bookmark("b1")?.title == "Latest")
        }
    }

    @Test func aFieldKeepsItsOwnStampWhenAnotherFieldChanges() async throws {
        // The store leaves out the stamps a record shares with its last change and gives them back
        // when it reads the row: a field written before keeps its older stamp, not the new one.
        try await withTestServer { client, _ in
            let t0 = Date()
            let device = try await Device.register(client, "stamps@example.com")
            let base = try #require(try await device.push([.createBookmark("c1", id: "b1", title: "Base", url: "https://a.example", hlc: stamp("x", offset: -60_000, base: t0))]).results.first?.version)
            let phone = try await device.named("phone").push([.updateBookmark("p1", id: "b1", ["title": "Phone"], expected: base, hlc: stamp("phone", offset: -1000, base: t0))])
            #expect(phone.results.first?.status == .applied)
            // A blind write of the URL, stamped after the URL's own stamp but before the title's:
            // the URL takes it (`merged`: the server-set `dateModified` keeps the phone's stamp)
            let laptop = try await device.named("laptop").push([.updateBookmark("l1", id: "b1", ["url": "https://b.example"], expected: nil, hlc: stamp("laptop", offset: -2000, base: t0))])
            #expect(laptop.results.first?.status == .merged)
            // …and a blind write of the title stamped before the phone's loses
            let late = try await device.named("late").push([.updateBookmark("t1", id: "b1", ["title": "Late"], expected: nil, hlc: stamp("late", offset: -1500, base: t0))])
            #expect(late.results.first?.status == .merged)
            let bookmark = try #require(try await device.bookmark("b1"))
            #expect(bookmark.url == "https://b.example")
            #expect(bookmark.title == "Phone")
        }
    }

    @Test func aClientWhoseClockIsADayAheadDoesNotWinForever() async throws {
        let manual = ManualClock()
        try await withTestServer(clock: manual.clock) { client, _ in
            let device = try await Device.register(client, "skew@example.com")
            let now = manual.clock.now
            let base = try #require(try await device.push([.createBookmark("c1", id: "b1", title: "Base", url: "https://a.example", hlc: stamp("x", base: now))]).results.first?.version)
            // A device whose clock is 24 h ahead writes the title
            let skewed = try await device.named("future").push([.updateBookmark("f1", id: "b1", ["title": "From the future"], expected: base, hlc: stamp("future", offset: 86_400_000, base: now))])
            #expect(skewed.results.first?.clockClamped == true)
            // A little later, an honest device edits the same field concurrently (same base)
            manual.advance(by: 2)
            let honest = try await device.named("honest").push([.updateBookmark("h1", id: "b1", ["title": "Honest"], expected: base, hlc: stamp("honest", base: manual.clock.now))])
            #expect(honest.results.first?.status == .merged)
            #expect(try await device.bookmark("b1")?.title == "Honest")
        }
    }

    // MARK: Tree

    @Test func crossedMovesApplyOnceAndTheOtherGetsCycle() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "cycle@example.com")
            _ = try await device.push([.createBookmark("a", id: "A", title: "A"), .createBookmark("b", id: "B", title: "B")])
            // Device 1 moves A into B; device 2, which has not seen that, moves B into A
            let first = try await device.named("d1").push([.moveBookmark("m1", id: "A", to: "B")])
            let second = try await device.named("d2").push([.moveBookmark("m2", id: "B", to: "A")])
            #expect(first.results.first?.status == .applied)
            #expect(second.results.first?.status == .conflict)
            #expect(second.results.first?.error?.code == "CYCLE")
            #expect(try await device.bookmark("A")?.parentId == "B")
            #expect(try await device.bookmark("B")?.parentId == "other")
            try await device.assertTreeValid()
            // REST answers 409 CYCLE with the current record
            let rest = try await client.post("/api/bookmarks/B/move", jsonBody(#"{"parentId":"A"}"#), token: device.token)
            #expect(rest.status == .conflict)
            #expect(try decode(ErrorEnvelope.self, rest).error.code == "CYCLE")
        }
    }

    @Test func deletingAFolderWhileAnotherDeviceAddsIntoItKeepsTheNewBookmark() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "revive@example.com")
            _ = try await device.push([
                .createBookmark("f", id: "outer", title: "Outer"),
                .createBookmark("g", id: "inner", title: "Inner", parent: "outer"),
                .createBookmark("s", id: "sibling", title: "Sibling", url: "https://s.example", parent: "inner"),
            ])
            // Device 1 deletes the outer folder (subtree goes too)
            let deletion = try await device.named("d1").push([.deleteBookmark("d", id: "outer")])
            #expect(Set(deletion.results.first?.affected ?? []) == ["inner", "sibling"])
            // Device 2, offline, adds a bookmark into the inner folder
            let add = try await device.named("d2").push([.createBookmark("n", id: "new", title: "New", url: "https://new.example", parent: "inner")])
            #expect(add.results.first?.status == .applied)
            #expect(Set(add.results.first?.affected ?? []) == ["inner", "outer"])
            // The new bookmark and its ancestors are live; the other child stays deleted
            #expect(try await device.bookmark("new") != nil)
            #expect(try await device.bookmark("inner") != nil)
            #expect(try await device.bookmark("outer") != nil)
            #expect(try await device.bookmark("sibling") == nil)
            try await device.assertTreeValid()
        }
    }

    @Test func deleteWinsOverAConcurrentUpdate() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "delwins@example.com")
            let version = try #require(try await device.push([.createBookmark("c", id: "b", title: "T", url: "https://t.example")]).results.first?.version)
            _ = try await device.push([.deleteBookmark("d", id: "b", expected: version)])
            let update = try await device.push([.updateBookmark("u", id: "b", ["title": "Edited offline"], expected: version)])
            #expect(update.results.first?.status == .conflict)
            #expect(try await device.bookmark("b") == nil)
            let tombstone = try await device.bookmarks(includeDeleted: true).bookmarks.first { $0.id == "b" }
            #expect(tombstone?.isDeleted == true)
            #expect(tombstone?.deletedAt != nil)
        }
    }

    @Test func rootsCannotBeDeletedOrMoved() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "roots@example.com")
            let list = try await device.bookmarks()
            #expect(Set(list.bookmarks.map(\.id)) == ["toolbar", "menu", "other", "mobile"])
            let delete = try await client.execute(uri: "/api/bookmarks/toolbar", method: .delete, headers: bearer(device.token))
            #expect(delete.status == .forbidden)
            let move = try await client.post("/api/bookmarks/menu/move", jsonBody(#"{"parentId":"other"}"#), token: device.token)
            #expect(move.status == .forbidden)
            let pushed = try await device.push([.deleteBookmark("d", id: "mobile"), .moveBookmark("m", id: "toolbar", to: "menu")])
            #expect(pushed.results.allSatisfy { $0.status == .rejected && $0.error?.code == "FORBIDDEN" })
            #expect(Set(try await device.bookmarks().bookmarks.map(\.id)) == ["toolbar", "menu", "other", "mobile"])
        }
    }

    @Test func twoInsertsAtTheSameIndexAreBothKeptInOneOrderForEveryReader() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "order@example.com")
            _ = try await device.push([
                .createBookmark("1", id: "first", title: "First", url: "https://1.example", parent: "toolbar"),
                .createBookmark("2", id: "last", title: "Last", url: "https://2.example", parent: "toolbar"),
            ])
            // Two devices insert at index 1 at the same time
            _ = try await device.named("a").push([.createBookmark("a", id: "from-a", title: "A", url: "https://a.example", parent: "toolbar", index: 1)])
            _ = try await device.named("b").push([.createBookmark("b", id: "from-b", title: "B", url: "https://b.example", parent: "toolbar", index: 1)])
            let orderOne = try await device.bookmarks().bookmarks.filter { $0.parentId == "toolbar" }.sorted { $0.sortOrder < $1.sortOrder }.map(\.id)
            #expect(orderOne.count == 4)
            #expect(orderOne.first == "first")
            #expect(orderOne.last == "last")
            #expect(Set(orderOne) == ["first", "from-a", "from-b", "last"])
            // Another reader (pull) sees the same order
            let pulled = try await device.pull(since: 0).changes.filter { $0.data["parentId"] == .string("toolbar") }
            let orderTwo = pulled.sorted { ($0.data["sortOrder"]?.intValue ?? 0) < ($1.data["sortOrder"]?.intValue ?? 0) }.map(\.id)
            #expect(orderOne == orderTwo)
            try await device.assertTreeValid()
        }
    }

    @Test func placementByAfterIdBeforeIdAndPosition() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "place@example.com")
            _ = try await device.push([
                .createBookmark("1", id: "x", title: "X", url: "https://x.example", parent: "menu"),
                .createBookmark("2", id: "z", title: "Z", url: "https://z.example", parent: "menu"),
            ])
            _ = try await device.push([SyncOperation(opId: "3", type: .create, id: "y", data: ["title": "Y", "url": "https://y.example"], parentId: "menu", afterId: "x")])
            _ = try await device.push([SyncOperation(opId: "4", type: .create, id: "w", data: ["title": "W", "url": "https://w.example"], parentId: "menu", beforeId: "x")])
            let order = try await device.bookmarks().bookmarks.filter { $0.parentId == "menu" }.sorted { $0.sortOrder < $1.sortOrder }.map(\.id)
            #expect(order == ["w", "x", "y", "z"])
            // Moving within the parent by index
            _ = try await device.push([SyncOperation(opId: "5", type: .move, id: "z", index: 0)])
            let moved = try await device.bookmarks().bookmarks.filter { $0.parentId == "menu" }.sorted { $0.sortOrder < $1.sortOrder }.map(\.id)
            #expect(moved == ["z", "w", "x", "y"])
            let bad = try await device.push([SyncOperation(opId: "6", type: .create, id: "v", data: ["title": "V", "url": "https://v.example"], parentId: "menu", position: "bad position!")])
            #expect(bad.results.first?.status == .rejected)
            #expect(bad.results.first?.error?.field == "position")
        }
    }

    // MARK: Exactly once

    /// A batch's op ids are looked up once for the whole batch; one repeated inside the batch is
    /// still applied once, and a reuse with another payload is still refused.
    @Test func anOpIdRepeatedInsideOneBatchIsAppliedOnce() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "repeat-in-batch@example.com")
            let create = SyncOperation.createBookmark("c1", id: "x", title: "X", url: "https://x.example")
            let answer = try await device.push([
                create, create, .createBookmark("c1", id: "y", title: "Y", url: "https://y.example"),
                .createBookmark("c2", id: "z", title: "Z", url: "https://z.example"),
            ])
            #expect(answer.results.map(\.status) == [.applied, .duplicate, .rejected, .applied])
            #expect(answer.results[1].version == answer.results[0].version)
            #expect(answer.results[2].error?.code == "IDEMPOTENCY_MISMATCH")
            let ids = try await device.bookmarks().bookmarks.filter { !$0.isFolder }.map(\.id)
            #expect(ids.sorted() == ["x", "z"])
        }
    }

    /// A batch's appends into one folder carry the folder's last child from op to op
    /// (`BatchApplier.appendedLast`) instead of asking the store each time; a create into another
    /// folder (here one that revives a folder), a move, or a create placed by index in between
    /// makes the next append ask again.
    @Test func eachAppendInABatchLandsLastEvenAfterOtherOpsChangedTheFolder() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "appends@example.com")
            func order(_ folder: String) async throws -> [String] {
                try await device.bookmarks().bookmarks.filter { $0.parentId == folder }.sorted { $0.sortOrder < $1.sortOrder }.map(\.id)
            }
            // A folder at the far end of the toolbar, then deleted: a create inside it revives it there.
            var far = SyncOperation.createBookmark("q", id: "q", title: "Q", parent: "toolbar")
            far.position = "zz"
            _ = try await device.push([.createBookmark("x", id: "x", title: "X", url: "https://x.example", parent: "toolbar"), far])
            _ = try await device.push([.deleteBookmark("dq", id: "q")])
            let answer = try await device.push([
                .createBookmark("a1", id: "a1", title: "A1", url: "https://a1.example", parent: "toolbar"),
                .createBookmark("a2", id: "a2", title: "A2", url: "https://a2.example", parent: "toolbar"),
                // Into another folder (and revives q at "zz", after a2).
                .createBookmark("in-q", id: "in-q", title: "In Q", url: "https://q.example", parent: "q"),
                .createBookmark("a3", id: "a3", title: "A3", url: "https://a3.example", parent: "toolbar"),
                // Moves x to the end, after a3.
                .moveBookmark("mx", id: "x", to: "toolbar"),
                .createBookmark("a4", id: "a4", title: "A4", url: "https://a4.example", parent: "toolbar"),
                // A refused create (no url), then a first child placed by index: neither is last.
                SyncOperation(opId: "bad", type: .create, id: "bad", data: .object(["title": "Bad", "isFolder": false]), parentId: "toolbar"),
                .createBookmark("a5", id: "a5", title: "A5", url: "https://a5.example", parent: "toolbar", index: 0),
                .createBookmark("a6", id: "a6", title: "A6", url: "https://a6.example", parent: "toolbar"),
                .createBookmark("a7", id: "a7", title: "A7", url: "https://a7.example", parent: "toolbar"),
            ])
            #expect(answer.results.map(\.status) == [.applied, .applied, .applied, .applied, .applied, .applied, .rejected, .applied, .applied, .applied])
            #expect(try await order("toolbar") == ["a5", "a1", "a2", "q", "a3", "x", "a4", "a6", "a7"])
        }
    }

    @Test func aRetriedBatchReturnsTheOriginalResultsWithNoSecondEffect() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "retry@example.com")
            let batch: [SyncOperation] = [
                .createBookmark("r1", id: "b1", title: "One", url: "https://1.example"),
                .createBookmark("r2", id: "b2", title: "Two", url: "https://2.example"),
                .updateBookmark("r3", id: "b1", ["title": "One!"], expected: nil),
            ]
            let first = try await device.push(batch)
            let sequenceAfterFirst = try await device.bookmarks().syncVersion
            let retry = try await device.push(batch)
            #expect(retry.results.map(\.status) == [.duplicate, .duplicate, .duplicate])
            #expect(retry.results.map(\.originalStatus) == first.results.map(\.status))
            #expect(retry.results.map(\.version) == first.results.map(\.version))
            #expect(try await device.bookmarks().syncVersion == sequenceAfterFirst)
            #expect(try await device.bookmarks().bookmarks.filter { !$0.isFolder }.count == 2)
        }
    }

    @Test func aReusedOpIdWithANewPayloadIsRejected() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "reuse@example.com")
            _ = try await device.push([.createBookmark("op-1", id: "b1", title: "Original", url: "https://o.example")])
            let reused = try await device.push([.createBookmark("op-1", id: "b1", title: "Different", url: "https://o.example")])
            #expect(reused.results.first?.status == .rejected)
            #expect(reused.results.first?.error?.code == "IDEMPOTENCY_MISMATCH")
            #expect(try await device.bookmark("b1")?.title == "Original")
        }
    }

    @Test func anAtomicBatchWithOneBadOpChangesNothing() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "atomic@example.com")
            let before = try await device.bookmarks()
            let answer = try await device.push(
                [
                    .createBookmark("a1", id: "ok1", title: "Fine", url: "https://fine.example"),
                    .createBookmark("a2", id: "bad", title: "Bad", url: "gopher-evil://x"),
                    .createBookmark("a3", id: "ok2", title: "Also fine", url: "https://fine2.example"),
                ],
                atomic: true
            )
            #expect(answer.committed == false)
            #expect(answer.results.count == 3)
            #expect(answer.results.allSatisfy { $0.status == .rejected })
            #expect(answer.results[1].error?.field == "url")
            let after = try await device.bookmarks()
            #expect(after.syncVersion == before.syncVersion)
            #expect(after.bookmarks.count == before.bookmarks.count)
            // The op ids were not consumed: a corrected retry applies
            let retry = try await device.push([.createBookmark("a1", id: "ok1", title: "Fine", url: "https://fine.example")], atomic: true)
            #expect(retry.results.first?.status == .applied)
        }
    }

    @Test func nonAtomicBatchAppliesTheGoodOpsAndRecordsTheBadOne() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "partial@example.com")
            let answer = try await device.push([
                .createBookmark("p1", id: "good", title: "Good", url: "https://good.example"),
                .createBookmark("p2", id: "nourl", title: "No URL", url: ""),
                .updateBookmark("p3", id: "missing", ["title": "x"], expected: nil),
            ])
            #expect(answer.committed)
            #expect(answer.results.map(\.status) == [.applied, .rejected, .rejected])
            #expect(answer.results[2].error?.code == "NOT_FOUND")
            // The rejection is acknowledged and replayed, so a client queue never wedges on it
            let again = try await device.push([.createBookmark("p2", id: "nourl", title: "No URL", url: "")])
            #expect(again.results.first?.status == .duplicate)
            #expect(again.results.first?.originalStatus == .rejected)
        }
    }

    // MARK: Strategies

    @Test func manualStrategyLogsTheConflictAndALaterPushResolvesIt() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "manual@example.com")
            let v1 = try #require(try await device.push([.createBookmark("c", id: "b", title: "Base", url: "https://m.example")]).results.first?.version)
            let v2 = try #require(try await device.push([.updateBookmark("u1", id: "b", ["title": "Server"], expected: v1)], strategy: .manual).results.first?.version)
            let stale = try await device.push([.updateBookmark("u2", id: "b", ["title": "Client"], expected: v1)], strategy: .manual)
            #expect(stale.results.first?.status == .conflict)
            #expect(stale.results.first?.record?["title"] == .string("Server"))
            #expect(try await device.bookmark("b")?.title == "Server")
            let conflicts = try decode(JSONValue.self, try await client.get("/api/sync/conflicts", token: device.token))
            guard case .array(let open)? = conflicts["conflicts"] else { Issue.record("no conflicts list"); return }
            #expect(open.count == 1)
            #expect(open.first?["recordId"] == .string("b"))
            #expect(open.first?["clientData"]?["title"] == .string("Client"))
            // Resolving: push against the current version
            let resolved = try await device.push([.updateBookmark("u3", id: "b", ["title": "Resolved"], expected: v2)], strategy: .manual)
            #expect(resolved.results.first?.status == .applied)
            let after = try decode(JSONValue.self, try await client.get("/api/sync/conflicts", token: device.token))
            #expect(after["conflicts"] == .array([]))
        }
    }

    @Test func serverWinsClientWinsAndLWW() async throws {
        try await withTestServer { client, _ in
            let t0 = Date()
            let device = try await Device.register(client, "strategies@example.com")
            let v1 = try #require(try await device.push([.createBookmark("c", id: "b", title: "Base", url: "https://s.example", hlc: stamp("a", offset: -10_000, base: t0))]).results.first?.version)
            _ = try await device.push([.updateBookmark("u1", id: "b", ["title": "Server"], expected: v1, hlc: stamp("a", offset: -5000, base: t0))])
            // server-wins: a stale write is refused even with a later stamp
            let serverWins = try await device.push([.updateBookmark("u2", id: "b", ["title": "Nope"], expected: v1, hlc: stamp("b", base: t0))], strategy: .serverWins)
            #expect(serverWins.results.first?.status == .conflict)
            #expect(try await device.bookmark("b")?.title == "Server")
            // lww: whole record, the earlier stamp loses…
            let lwwLoses = try await device.push([.updateBookmark("u3", id: "b", ["title": "Old"], expected: v1, hlc: stamp("b", offset: -8000, base: t0))], strategy: .lww)
            #expect(lwwLoses.results.first?.status == .conflict)
            // …and the later one wins
            let lwwWins = try await device.push([.updateBookmark("u4", id: "b", ["title": "LWW"], expected: v1, hlc: stamp("b", base: t0))], strategy: .lww)
            #expect(lwwWins.results.first?.status == .merged)
            #expect(try await device.bookmark("b")?.title == "LWW")
            // client-wins: applied whatever the stamps
            let clientWins = try await device.push([.updateBookmark("u5", id: "b", ["title": "Client"], expected: v1, hlc: stamp("c", offset: -999_999, base: t0))], strategy: .clientWins)
            #expect(clientWins.results.first?.status == .merged)
            #expect(try await device.bookmark("b")?.title == "Client")
        }
    }

    @Test func ifMatchIsStrictOptimisticLocking() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "ifmatch@example.com")
            let created = try await client.post("/api/bookmarks", jsonBody(#"{"id":"b","title":"T","url":"https://i.example","parentId":"menu"}"#), token: device.token)
            #expect(created.status == .created)
            let etag = try #require(created.headers[.eTag])
            var headers = bearer(device.token)
            headers[.ifMatch] = etag
            let ok = try await client.execute(uri: "/api/bookmarks/b", method: .patch, headers: headers, body: jsonBody(#"{"title":"T2"}"#))
            #expect(ok.status == .ok)
            // The same (now stale) ETag again: 412 with the current record, nothing applied
            let stale = try await client.execute(uri: "/api/bookmarks/b", method: .patch, headers: headers, body: jsonBody(#"{"title":"T3"}"#))
            #expect(stale.status == .preconditionFailed)
            let envelope = try decode(ErrorEnvelope.self, stale)
            #expect(envelope.error.code == "CONFLICT_DETECTED")
            #expect(envelope.error.details?["current"]?["title"] == .string("T2"))
            #expect(try await device.bookmark("b")?.title == "T2")
            // Delete with a stale If-Match is refused too
            let staleDelete = try await client.execute(uri: "/api/bookmarks/b", method: .delete, headers: headers)
            #expect(staleDelete.status == .preconditionFailed)
            #expect(try await device.bookmark("b") != nil)
        }
    }
}
