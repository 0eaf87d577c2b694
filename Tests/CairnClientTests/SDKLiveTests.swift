import CairnClient
import CairnCore
import CairnTestFixtures
import Foundation
import GRDB
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Synchronization
import Testing

/// The SDK against a real `cairn serve` process: offline edits converge, nothing queued is lost
/// or applied twice, server switches re-push once, seed 004's three-way test, real-time hints.
@Suite("Client SDK against a live server", .serialized, .timeLimit(.minutes(5)))
struct SDKLiveTests {
    static func client(
        _ account: LiveAccount, replica: URL, credentials: ClientCredentials? = nil, configure: (inout ClientConfiguration) -> Void = { _ in }
    ) throws -> CairnClient {
        var configuration = ClientConfiguration(
            serverURL: account.base, credentials: credentials ?? .session(refreshToken: account.refreshToken, accessToken: account.token),
            replicaPath: replica)
        configuration.useWebSocket = false
        configure(&configuration)
        return try CairnClient(configuration: configuration)
    }

    /// A comparable picture of a tree: (path of titles, url) in order.
    static func outline(_ nodes: [BookmarkNode], prefix: String = "") -> [String] {
        nodes.flatMap { node in
            ["\(prefix)\(node.title)|\(node.url ?? "/")|\(node.id)"] + outline(node.children ?? [], prefix: prefix + "  ")
        }
    }

    /// The server's tree, read over REST (`format=tree`), in the same shape.
    static func serverOutline(_ account: LiveAccount) async throws -> [String] {
        var request = URLRequest(url: URL(string: account.base.absoluteString + "/api/bookmarks?format=tree")!)
        request.setValue("Bearer \(account.token)", forHTTPHeaderField: "Authorization")
        let (data, _) = try await URLSession.shared.data(for: request)
        let object = try JSONDecoder().decode(JSONValue.self, from: data)
        func lines(_ nodes: [JSONValue], prefix: String) -> [String] {
            nodes.flatMap { node -> [String] in
                let title = node["title"]?.stringValue ?? ""
                let url = node["url"]?.stringValue ?? "/"
                let id = node["id"]?.stringValue ?? ""
                var children: [JSONValue] = []
                if case .array(let list)? = node["children"] { children = list }
                return ["\(prefix)\(title)|\(url)|\(id)"] + lines(children, prefix: prefix + "  ")
            }
        }
        guard case .array(let roots)? = object["bookmarks"] else { return [] }
        return lines(roots, prefix: "")
    }

    @Test func twoOfflineClientsConvergeWithMovesAndDeletes() async throws {
        let root = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let account = try await LiveAccount.start(dataDirectory: root.appendingPathComponent("server"))
        let laptop = try Self.client(account, replica: root.appendingPathComponent("laptop.sqlite")) { $0.clientId = "laptop" }
        let phone = try Self.client(account, replica: root.appendingPathComponent("phone.sqlite")) { $0.clientId = "phone" }

        // A shared starting point
        let dev = try await laptop.bookmarks.addFolder(title: "Dev", parentId: "toolbar")
        let swift = try await laptop.bookmarks.add(url: "https://swift.org", title: "Swift", parentId: dev.id)
        let news = try await laptop.bookmarks.add(url: "https://news.example", title: "News", parentId: "toolbar")
        let old = try await laptop.bookmarks.add(url: "https://old.example", title: "Old", parentId: dev.id)
        try await laptop.forceSync()
        try await phone.forceSync()
        #expect(try await phone.bookmarks.get(swift.id)?.parentId == dev.id)

        // Both offline: the laptop moves News into Dev, renames Swift and adds two; the phone
        // deletes Old, renames News, moves Swift to the top of Dev and adds one
        let reading = try await laptop.bookmarks.addFolder(title: "Reading", parentId: "other")
        try await laptop.bookmarks.move(news.id, to: dev.id, index: 0)
        try await laptop.bookmarks.update(swift.id, title: "Swift.org")
        try await laptop.bookmarks.add(url: "https://book.example", title: "Book", parentId: reading.id)
        try await phone.bookmarks.delete(old.id)
        try await phone.bookmarks.update(news.id, title: "Hacker News", tags: ["daily"])
        try await phone.bookmarks.move(swift.id, to: dev.id, index: 0)
        try await phone.bookmarks.add(url: "https://phone.example", title: "From phone", parentId: "mobile")
        #expect(try await laptop.pendingCount() == 4)
        #expect(try await phone.pendingCount() == 4)

        // Back online, in any order, until quiet
        try await phone.forceSync()
        try await laptop.forceSync()
        try await phone.forceSync()
        #expect(try await laptop.pendingCount() == 0)
        #expect(try await phone.pendingCount() == 0)

        let server = try await Self.serverOutline(account)
        let laptopTree = Self.outline(try await laptop.bookmarks.tree())
        let phoneTree = Self.outline(try await phone.bookmarks.tree())
        #expect(laptopTree == server)
        #expect(phoneTree == server)
        // Both renames survived, the move and the delete applied, nothing was duplicated
        #expect(try await phone.bookmarks.get(swift.id)?.title == "Swift.org")
        #expect(try await laptop.bookmarks.get(news.id)?.title == "Hacker News")
        #expect(try await laptop.bookmarks.get(news.id)?.parentId == dev.id)
        #expect(try await laptop.bookmarks.get(old.id) == nil)
        #expect(Set(server.map { $0.split(separator: "|").last! }).count == server.count)
        #expect(server.count == 4 + 6)

        // Re-syncing is quiet: nothing pushed, nothing pulled
        let again = try await laptop.forceSync()
        #expect(again.pushed == 0 && again.pulled == 0)
        _ = await account.server.terminate()
    }

    @Test func collectionsStatusStatsAndACustomResolver() async throws {
        let root = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let account = try await LiveAccount.start(dataDirectory: root.appendingPathComponent("server"))
        let resolved = Mutex<[SyncConflict]>([])
        let a = try Self.client(account, replica: root.appendingPathComponent("a.sqlite")) {
            $0.collections = ["notes"]
            $0.conflictStrategy = ConflictResolution.custom { conflict in
                resolved.withLock { $0.append(conflict) }
                var merged = conflict.remoteDocument ?? [:]
                merged["text"] = .string("resolved: \(conflict.localDocument?["text"]?.stringValue ?? "")")
                return merged
            }
        }
        let b = try Self.client(account, replica: root.appendingPathComponent("b.sqlite")) { $0.collections = ["notes"] }
        let notes = a.collection("notes")

        var statuses = a.status.makeAsyncIterator()
        #expect(await statuses.next() == .idle)
        let changes = notes.changes()
        try await notes.put("n1", ["text": "hello", "pinned": true])
        try await notes.patch("n1", ["pinned": .null, "color": "red"])
        #expect(try await notes.get("n1")?.data == ["text": "hello", "color": "red"])
        var seen = changes.makeAsyncIterator()
        #expect(await seen.next()?.origin == .local)

        let report = try await a.forceSync()
        #expect(report.pushed == 2)
        #expect(await statuses.next() == .syncing)
        #expect(await statuses.next() == .idle)
        #expect(a.currentStats.pushCount == 2)
        #expect(a.currentStats.lastSyncAt != nil)

        // B edits the note; A edits it too without having seen B's edit: a conflict under the
        // custom strategy, which the resolver settles and pushes
        try await b.forceSync()
        try await b.collection("notes").patch("n1", ["text": "from b"])
        try await b.forceSync()
        try await notes.put("n1", ["text": "from a", "color": "red"])
        let conflicted = try await a.forceSync()
        #expect(conflicted.conflicts == 1)
        #expect(resolved.withLock { $0.first?.remoteDocument?["text"] } == "from b")
        #expect(resolved.withLock { $0.first?.localDocument?["text"] } == "from a")
        try await a.forceSync()
        try await b.forceSync()
        #expect(try await b.collection("notes").get("n1")?.data["text"] == "resolved: from a")
        #expect(try await notes.get("n1")?.data["text"] == "resolved: from a")
        #expect(a.currentStats.conflictCount == 1)

        // Deletes propagate as tombstones
        try await notes.delete("n1")
        try await a.forceSync()
        try await b.forceSync()
        #expect(try await b.collection("notes").get("n1") == nil)
        #expect(try await b.collection("notes").all(includeDeleted: true).first?.deleted == true)

        // A stopped server makes the status offline, and the write waits in the outbox
        _ = await account.server.terminate()
        try await notes.put("n2", ["text": "offline"])
        await #expect(throws: CairnClientError.self) { try await a.forceSync() }
        #expect(a.currentStatus == .offline)
        #expect(try await a.pendingCount() == 1)
    }

    @Test func anOpTheServerCanNeverTakeIsDroppedWithoutWedgingTheQueue() async throws {
        let root = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let account = try await LiveAccount.start(dataDirectory: root.appendingPathComponent("server"))
        let client = try Self.client(account, replica: root.appendingPathComponent("r.sqlite"))
        let notes = client.collection("notes")
        // 30 notes of 200 KiB: one push of them would pass the 5 MiB body limit (413), so the
        // batch is split; one note of 300 KiB passes the record limit and is refused on its own
        let big = String(repeating: "x", count: 200 * 1024)
        for index in 0..<30 { try await notes.put("big\(index)", ["text": .string(big)]) }
        try await notes.put("huge", ["text": .string(String(repeating: "y", count: 300 * 1024))])
        try await notes.put("small", ["text": "fine"])
        let report = try await client.forceSync()
        #expect(report.rejected.map(\.id) == ["huge"])
        #expect(report.rejected.first?.error?.code == "PAYLOAD_TOO_LARGE")
        #expect(report.pushed == 31)
        #expect(try await client.pendingCount() == 0)
        // The refused record shows the server's state again: it does not exist
        #expect(try await notes.get("huge") == nil)
        #expect(try await notes.get("small")?.data["text"] == "fine")
        _ = await account.server.terminate()
    }

    @Test func aSecondProcessCannotSyncTheSameReplica() async throws {
        let root = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let account = try await LiveAccount.start(dataDirectory: root.appendingPathComponent("server"))
        let replica = root.appendingPathComponent("shared.sqlite")
        let first = try Self.client(account, replica: replica)
        let second = try Self.client(account, replica: replica)
        try await first.start()
        await #expect(throws: CairnClientError.replicaLocked) { try await second.start() }
        await #expect(throws: CairnClientError.replicaLocked) { try await second.forceSync() }
        // The second may still write locally; the running client pushes it
        try await second.collection("notes").put("from-second", ["x": 1])
        let deadline = ContinuousClock.now + .seconds(20)
        while try await first.pendingCount() > 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(try await first.pendingCount() == 0)
        await first.stop()
        try await second.forceSync()
        // destroy() removes the replica for good
        try await second.destroy()
        #expect(!FileManager.default.fileExists(atPath: replica.path))
        await #expect(throws: CairnClientError.destroyed) { try await second.forceSync() }
        _ = await account.server.terminate()
    }

    @Test func anExpiredAccessTokenIsRefreshedOnceForConcurrentCalls() async throws {
        let root = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let account = try await LiveAccount.start(dataDirectory: root.appendingPathComponent("server"))
        let store = FileCredentialStore(url: root.appendingPathComponent("credentials.json"))
        // An access token the server refuses (as an expired one would be), whatever the local clock says
        try store.save(StoredCredentials(refreshToken: account.refreshToken, accessToken: "eyJhbGciOiJIUzI1NiJ9.e30.invalid"))
        let client = try Self.client(account, replica: root.appendingPathComponent("r.sqlite"), credentials: .stored(in: store))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 { group.addTask { _ = try await client.me() } }
            try await group.waitForAll()
        }
        let saved = try #require(try store.load())
        #expect(saved.refreshToken != account.refreshToken)
        #expect(saved.accessToken != "eyJhbGciOiJIUzI1NiJ9.e30.invalid")
        // Had two refreshes spent the same refresh token, the server would have revoked the session
        let (status, _) = try await HTTP.send("POST", account.base.appendingPathComponent("api/auth/refresh"), json: ["refreshToken": saved.refreshToken!])
        #expect(status == 200)
        _ = await account.server.terminate()
    }

    @Test func switchingServerPushesEverythingOnceWithoutDuplicates() async throws {
        let root = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let first = try await LiveAccount.start(dataDirectory: root.appendingPathComponent("one"))
        let second = try await LiveAccount.start(dataDirectory: root.appendingPathComponent("two"))
        let replica = root.appendingPathComponent("device.sqlite")
        do {
            let client = try Self.client(first, replica: replica)
            let folder = try await client.bookmarks.addFolder(title: "Work", parentId: "toolbar")
            try await client.bookmarks.add(url: "https://a.example", title: "A", parentId: folder.id)
            try await client.bookmarks.add(url: "https://b.example", title: "B")
            try await client.collection("notes").put("n1", ["text": "one"])
            #expect(try await client.forceSync().pushed == 4)
        }
        // The same replica pointed at another server
        let moved = try Self.client(second, replica: replica)
        let report = try await moved.forceSync()
        #expect(report.targetChanged)
        #expect(report.pushed == 4)
        #expect(report.rejected.isEmpty)
        let quiet = try await moved.forceSync()
        #expect(quiet.pushed == 0 && quiet.pulled == 0 && !quiet.targetChanged)
        #expect(Self.outline(try await moved.bookmarks.tree()) == (try await Self.serverOutline(second)))
        _ = await first.server.terminate()
        _ = await second.server.terminate()
    }

    @Test func theServerKilledMidSyncLosesNothingAndAppliesNothingTwice() async throws {
        let root = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let data = root.appendingPathComponent("server")
        let account = try await LiveAccount.start(dataDirectory: data)
        let port = account.base.port ?? 0
        let client = try Self.client(account, replica: root.appendingPathComponent("r.sqlite")) {
            $0.pushBatchSize = 20
        }
        let notes = client.collection("notes")
        for index in 0..<400 { try await notes.put("n\(index)", ["i": .number(Double(index))]) }
        let sync = Task { try await client.forceSync() }
        try await Task.sleep(for: .milliseconds(150))
        await account.server.kill()
        _ = try? await sync.value
        // The same server comes back on the same port
        let restarted = try LiveServerProcess(dataDirectory: data, port: port)
        try await restarted.start()
        var rounds = 0
        while try await client.pendingCount() > 0 && rounds < 20 {
            _ = try? await client.forceSync()
            rounds += 1
        }
        #expect(try await client.pendingCount() == 0)
        let (status, body) = try await HTTP.send(
            "GET", URL(string: "http://127.0.0.1:\(port)/api/sync/pull?since=0&limit=5000&collections=notes")!, token: account.token)
        #expect(status == 200)
        let changes = body["changes"] as? [[String: Any]] ?? []
        #expect(changes.count == 400)
        // Every record applied exactly once: one version each, no extra changes
        #expect(Set(changes.compactMap { $0["id"] as? String }).count == 400)
        _ = await restarted.terminate()
    }

    @Test func peekThreeWaySyncSixThenTenItemsStableAndTombstonesPropagate() async throws {
        let root = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let account = try await LiveAccount.start(dataDirectory: root.appendingPathComponent("server"))
        let items = account.base.appendingPathComponent("items")
        // Phase 1: the server has 2 items, the desktop 2, the mobile 2
        for content in ["https://server-1.example", "https://server-2.example"] {
            let (status, _) = try await HTTP.send("POST", items, json: ["type": "url", "content": content], token: account.token)
            #expect(status == 201)
        }
        let desktop = try Self.client(account, replica: root.appendingPathComponent("desktop.sqlite")) { $0.collections = ["items"] }
        let mobile = try Self.client(account, replica: root.appendingPathComponent("mobile.sqlite")) { $0.collections = ["items"] }
        for (client, name) in [(desktop, "desktop"), (mobile, "mobile")] {
            for index in 1...2 {
                try await client.collection("items").put("\(name)-\(index)", ["type": "url", "content": .string("https://\(name)-\(index).example"), "tags": []])
            }
        }
        try await desktop.forceSync()
        try await mobile.forceSync()
        try await desktop.forceSync()
        func count(_ client: CairnClient) async throws -> Int { try await client.collection("items").all().count }
        func serverCount() async throws -> Int {
            let (_, body) = try await HTTP.send("GET", account.base.appendingPathComponent("api/records/items"), token: account.token)
            return (body["records"] as? [Any])?.count ?? -1
        }
        #expect(try await count(desktop) == 6)
        #expect(try await count(mobile) == 6)
        #expect(try await serverCount() == 6)

        // Phase 2: re-pushing an item under its own id changes nothing; the same URL saved on both
        // devices (different ids) is kept twice, as is the same tag set: 10 everywhere
        try await desktop.collection("items").put("desktop-1", ["type": "url", "content": "https://desktop-1.example", "tags": []])
        try await desktop.forceSync()
        #expect(try await serverCount() == 6)
        for client in [desktop, mobile] {
            try await client.collection("items").put("url-\(client.clientId)", ["type": "url", "content": "https://same.example", "tags": []])
            try await client.collection("items").put("tags-\(client.clientId)", ["type": "tagset", "content": .null, "tags": ["a", "b"]])
        }
        try await desktop.forceSync()
        try await mobile.forceSync()
        try await desktop.forceSync()
        #expect(try await count(desktop) == 10)
        #expect(try await count(mobile) == 10)
        #expect(try await serverCount() == 10)
        for client in [desktop, mobile] {
            let stable = try await client.forceSync()
            #expect(stable.pulled == 0 && stable.pushed == 0)
        }

        // Phase 4: a delete on each side reaches the other as a tombstone
        try await desktop.collection("items").delete("desktop-2")
        try await desktop.forceSync()
        try await mobile.forceSync()
        #expect(try await mobile.collection("items").get("desktop-2") == nil)
        try await mobile.collection("items").delete("mobile-2")
        try await mobile.forceSync()
        try await desktop.forceSync()
        #expect(try await desktop.collection("items").get("mobile-2") == nil)
        let desktopTombstones = try await desktop.collection("items").all(includeDeleted: true).filter(\.deleted).count
        let mobileTombstones = try await mobile.collection("items").all(includeDeleted: true).filter(\.deleted).count
        #expect(desktopTombstones == 2 && mobileTombstones == 2)
        #expect(try await serverCount() == 8)
        _ = await account.server.terminate()
    }

    /// A device that was offline while a record was deleted and its tombstone purged gets `410`,
    /// pulls everything again, and drops the record: its copy equals the server's afterwards
    /// (sync.md, "To resync"), while a record it created offline meanwhile is kept and pushed.
    @Test func aResyncAfterAPurgeDropsWhatTheServerNoLongerHas() async throws {
        let root = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let data = root.appendingPathComponent("server")
        let account = try await LiveAccount.start(dataDirectory: data)
        let laptop = try Self.client(account, replica: root.appendingPathComponent("laptop.sqlite")) { $0.clientId = "laptop" }
        let phone = try Self.client(account, replica: root.appendingPathComponent("phone.sqlite")) { $0.clientId = "phone" }
        for id in ["kept", "gone"] { try await laptop.collection("notes").put(id, ["text": .string(id)]) }
        try await laptop.forceSync()
        try await phone.forceSync()
        #expect(try await phone.collection("notes").all().count == 2)

        // The laptop deletes one; the phone, offline, writes a new one
        try await laptop.collection("notes").delete("gone")
        try await laptop.forceSync()
        try await phone.collection("notes").put("offline", ["text": "written offline"])
        // Three days later the server purges the tombstone (the delete is back-dated in the
        // database, and a server with a one-day retention purges when it starts)
        _ = await account.server.terminate()
        let database = try DatabaseQueue(path: data.appendingPathComponent("cairn.sqlite").path)
        try await database.write { db in
            try db.execute(sql: "UPDATE records SET deleted_at = deleted_at - 3 * 86400000, updated_at = updated_at - 3 * 86400000 WHERE deleted = 1")
        }
        try database.close()
        let restarted = try LiveServerProcess(
            dataDirectory: data, port: try #require(account.base.port), extraArguments: ["--tombstone-retention-days", "1"])
        try await restarted.start()
        defer { Task { _ = await restarted.terminate() } }

        // The phone's cursor is behind the horizon: 410, a pull from 0, and "gone" is gone
        try await phone.forceSync()
        #expect(try await phone.collection("notes").get("gone") == nil)
        #expect(try await phone.collection("notes").all().map(\.id).sorted() == ["kept", "offline"])
        try await laptop.forceSync()
        #expect(try await laptop.collection("notes").all().map(\.id).sorted() == ["kept", "offline"])
        #expect(try await phone.pendingCount() == 0)
    }

    @Test func aStartedClientGetsAnotherDevicesChangeInRealTime() async throws {
        let root = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let account = try await LiveAccount.start(dataDirectory: root.appendingPathComponent("server"))
        let watcher = try Self.client(account, replica: root.appendingPathComponent("w.sqlite")) {
            $0.useWebSocket = true
            $0.pullInterval = .seconds(120)  // only the socket's hint can make this fast
        }
        let writer = try Self.client(account, replica: root.appendingPathComponent("x.sqlite"))
        try await watcher.start()
        // Let the socket authenticate and the first pull finish
        var statuses = watcher.status.makeAsyncIterator()
        var sawSync = false
        while let status = await statuses.next() {
            if status == .syncing { sawSync = true }
            if sawSync && status == .idle { break }
        }
        try await Task.sleep(for: .milliseconds(500))
        let changes = watcher.changes()
        let started = ContinuousClock.now
        try await writer.bookmarks.add(url: "https://live.example", title: "Live")
        try await writer.forceSync()
        var arrived: RecordEvent?
        for await event in changes where event.origin == .remote && event.record?.data["title"] == "Live" {
            arrived = event
            break
        }
        #expect(arrived != nil)
        #expect(ContinuousClock.now - started < .seconds(10))
        await watcher.stop()
        _ = await account.server.terminate()
    }
}
