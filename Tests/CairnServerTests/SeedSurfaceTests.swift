import CairnCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import CairnServer

/// Each seed's flows, request by request, as its document writes them.
@Suite("Seed 001: Booky user data sync")
struct Seed001Tests {
    @Test func theDocumentsExamplesRequestByRequest() async throws {
        try await withTestServer { client, components in
            let device = try await Device.register(client, "booky@example.com")
            // POST /api/sync/operations
            let operations = try decode(JSONValue.self, try await client.post(
                "/api/sync/operations",
                jsonBody(#"{"operations":[{"id":"op-123","type":"create","entity":"book","entityId":"book-456","data":{"title":"Dune"},"timestamp":"2024-01-15T10:30:00Z"}]}"#),
                token: device.token
            ))
            #expect(operations["results"]?[0]?["id"] == "op-123")
            #expect(operations["results"]?[0]?["status"] == "success")
            #expect(operations["results"]?[0]?["entity"] == "book")
            #expect(operations["results"]?[0]?["entityId"] == "book-456")
            // Replaying the batch has no second effect
            let replay = try decode(JSONValue.self, try await client.post(
                "/api/sync/operations",
                jsonBody(#"{"operations":[{"id":"op-123","type":"create","entity":"book","entityId":"book-456","data":{"title":"Dune"},"timestamp":"2024-01-15T10:30:00Z"}]}"#),
                token: device.token
            ))
            #expect(replay["results"]?[0]?["status"] == "success")
            // GET /api/sync/status
            let status = try decode(JSONValue.self, try await client.get("/api/sync/status", token: device.token))
            for key in ["success", "status", "lastSync", "pendingOperations", "conflicts"] { #expect(status[key] != nil, "\(key)") }
            // GET /api/sync/changes?since=
            let changes = try decode(JSONValue.self, try await client.get("/api/sync/changes?since=2024-01-15T10:00:00Z", token: device.token))
            #expect(changes["success"] == .bool(true))
            #expect(changes["since"] == "2024-01-15T10:00:00Z")
            #expect(changes["changes"]?[0]?["type"] == "book")
            #expect(changes["changes"]?[0]?["data"]?["title"] == "Dune")
            #expect(changes["changes"]?[0]?["data"]?["updatedAt"]?.stringValue?.hasSuffix("Z") == true)
            // POST /api/sync/queue → 201, applied shortly after, then no longer pending
            let queued = try await client.post("/api/sync/queue", jsonBody(#"{"type":"update","entity":"book","entityId":"book-456","data":{"title":"Dune Messiah"}}"#), token: device.token)
            #expect(queued.status == .created)
            let queuedBody = try decode(JSONValue.self, queued)
            #expect(queuedBody["success"] == .bool(true))
            #expect(queuedBody["operation"]?["synced"] == .bool(false))
            #expect(queuedBody["operation"]?["entity"] == "book")
            await components.queue.drain()
            let pending = try decode(JSONValue.self, try await client.get("/api/sync/pending", token: device.token))
            #expect(pending["success"] == .bool(true))
            #expect(pending["operations"] == .array([]))
            let after = try decode(JSONValue.self, try await client.get("/api/sync/changes?since=0", token: device.token))
            #expect(after["changes"]?[0]?["data"]?["title"] == "Dune Messiah")
            // POST /api/sync/mark-synced and DELETE /api/sync/clear
            let queuedAgain = try decode(JSONValue.self, try await client.post("/api/sync/queue", jsonBody(#"{"type":"update","entity":"rating","entityId":"r1","data":{"stars":5}}"#), token: device.token))
            let opId = try #require(queuedAgain["operation"]?["id"]?.stringValue)
            let marked = try decode(JSONValue.self, try await client.post("/api/sync/mark-synced", jsonBody(#"{"operationIds":["\#(opId)","unknown"]}"#), token: device.token))
            #expect(marked["success"] == .bool(true))
            // The processor may have applied it already (then it is synced and not marked again)
            #expect(["Marked 1 operations as synced", "Marked 0 operations as synced"].contains(marked["message"]?.stringValue ?? ""))
            await components.queue.drain()
            #expect(try decode(JSONValue.self, try await client.get("/api/sync/pending", token: device.token))["operations"] == .array([]))
            let cleared = try await client.execute(uri: "/api/sync/clear", method: .delete, headers: bearer(device.token))
            #expect(try decode(JSONValue.self, cleared)["message"] == "Cleared synced operations")
        }
    }

    @Test func fullSyncReplacesTheNamedEntitiesInOneTransaction() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "booky-full@example.com")
            _ = try await client.post(
                "/api/sync/operations",
                jsonBody(#"{"operations":[{"id":"o1","type":"create","entity":"book","entityId":"old-book","data":{"title":"Old"}},{"id":"o2","type":"create","entity":"tag","entityId":"keep-tag","data":{"name":"t"}}]}"#),
                token: device.token
            )
            let full = try await client.post(
                "/api/sync/full",
                jsonBody(#"{"books":[{"id":"b1","title":"New"},{"id":"b2","title":"Newer"}],"collections":[],"readings":[{"id":"r1","page":10}],"settings":{"theme":"dark"}}"#),
                token: device.token
            )
            #expect(full.status == .ok)
            let body = try decode(JSONValue.self, full)
            #expect(body["success"] == .bool(true))
            #expect(body["syncedAt"]?.stringValue != nil)
            let changes = try decode(JSONValue.self, try await client.get("/api/sync/changes?since=0", token: device.token))
            guard case .array(let list)? = changes["changes"] else { Issue.record("no changes"); return }
            let live = list.filter { $0["data"]?["deleted"] == .bool(false) }
            #expect(Set(live.compactMap { $0["data"]?["id"]?.stringValue }) == ["b1", "b2", "r1", "settings", "keep-tag"])
            // The replaced book is a tombstone, so other devices learn it is gone
            #expect(list.contains { $0["data"]?["id"] == "old-book" && $0["data"]?["deleted"] == .bool(true) })
            // Invalid input changes nothing
            let before = try await device.pull(since: 0).cursor
            #expect(try await client.post("/api/sync/full", jsonBody(#"{"spaceships":[]}"#), token: device.token).status == .badRequest)
            #expect(try await client.post("/api/sync/full", jsonBody(#"{"books":[{"id":"ok"},{"id":"bad id!"}]}"#), token: device.token).status == .badRequest)
            #expect(try await device.pull(since: 0).cursor == before)
        }
    }

    @Test func badOperationsGetTheDocumentedErrors() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "booky-bad@example.com")
            let answer = try decode(JSONValue.self, try await client.post(
                "/api/sync/operations",
                jsonBody(#"{"operations":[{"id":"a","type":"create","entity":"spaceship","entityId":"x","data":{}},{"id":"b","type":"explode","entity":"book","entityId":"x","data":{}},{"id":"c","type":"update","entity":"book","entityId":"missing","data":{"t":1}}]}"#),
                token: device.token
            ))
            #expect(answer["results"]?[0]?["status"] == "error")
            #expect(answer["results"]?[0]?["error"]?["code"] == "VALIDATION_ERROR")
            #expect(answer["results"]?[1]?["error"]?["code"] == "VALIDATION_ERROR")
            #expect(answer["results"]?[2]?["error"]?["code"] == "NOT_FOUND")
            #expect(try await client.post("/api/sync/queue", jsonBody(#"{"type":"update","entity":"spaceship","entityId":"x"}"#), token: device.token).status == .badRequest)
            #expect(try await client.get("/api/sync/changes?since=yesterday", token: device.token).status == .badRequest)
            let unauthorized = try await client.get("/api/sync/pending")
            #expect(try decode(ErrorEnvelope.self, unauthorized).error.code == "UNAUTHORIZED")
        }
    }
}

@Suite("Seed 002: Pawkit workspaces")
struct Seed002Tests {
    @Test func theSuccessMetrics() async throws {
        try await withTestServer { client, _ in
            let deviceA = try await Device.register(client, "pawkit@example.com")
            let deviceB = try await deviceA.withAPIKey()
            let workspace = try decode(JSONValue.self, try await client.post("/api/workspaces", jsonBody(#"{"name":"Research"}"#), token: deviceA.token))["workspace"]
            let workspaceId = try #require(workspace?["id"]?.stringValue)
            // A card created on device A (client-generated cuid) appears on device B
            let created = try await client.post("/api/cards", jsonBody(#"{"id":"clx1a2b3c4d5e6f7g8h9","workspaceId":"\#(workspaceId)","title":"Swift","url":"https://swift.org"}"#), token: deviceA.token)
            #expect(created.status == .created)
            #expect(try decode(JSONValue.self, created)["card"]?["id"] == "clx1a2b3c4d5e6f7g8h9")
            let delta = try decode(JSONValue.self, try await client.get("/api/sync/delta?workspaceId=\(workspaceId)&since=0", token: deviceB.token))
            #expect(delta["cards"]?[0]?["title"] == "Swift")
            for key in ["cards", "collections", "events", "todos", "viewSettings", "serverTime"] { #expect(delta[key] != nil, "\(key)") }
            let serverTime = try #require(delta["serverTime"]?.stringValue)
            // Equal counts on every device, no ghost cards
            let listA = try decode(JSONValue.self, try await client.get("/api/cards?workspaceId=\(workspaceId)", token: deviceA.token))
            let listB = try decode(JSONValue.self, try await client.get("/api/cards?workspaceId=\(workspaceId)", token: deviceB.token))
            #expect(listA == listB)
            // Offline edits not lost: B patches, A's next delta from serverTime carries it
            let patched = try await client.execute(uri: "/api/cards/clx1a2b3c4d5e6f7g8h9?workspaceId=\(workspaceId)", method: .patch, headers: bearer(deviceB.token), body: jsonBody(#"{"title":"Swift.org"}"#))
            #expect(try decode(JSONValue.self, patched)["card"]?["title"] == "Swift.org")
            let next = try decode(JSONValue.self, try await client.get("/api/sync/delta?workspaceId=\(workspaceId)&since=\(serverTime)", token: deviceA.token))
            #expect(next["cards"]?[0]?["title"] == "Swift.org")
            // Deletions propagate as soft deletes with deletedAt and updatedAt
            let deleted = try await client.execute(uri: "/api/cards/clx1a2b3c4d5e6f7g8h9?workspaceId=\(workspaceId)", method: .delete, headers: bearer(deviceA.token))
            #expect(try decode(JSONValue.self, deleted)["card"]?["deleted"] == .bool(true))
            let afterDelete = try decode(JSONValue.self, try await client.get("/api/sync/delta?workspaceId=\(workspaceId)&since=\(serverTime)", token: deviceB.token))
            #expect(afterDelete["cards"]?[0]?["deleted"] == .bool(true))
            #expect(afterDelete["cards"]?[0]?["deletedAt"]?.stringValue != nil)
            #expect(afterDelete["cards"]?[0]?["updatedAt"]?.stringValue != nil)
            #expect(try decode(JSONValue.self, try await client.get("/api/cards?workspaceId=\(workspaceId)", token: deviceB.token))["cards"] == .array([]))
        }
    }

    @Test func anotherUsersWorkspaceIsNeverReadableOrWritable() async throws {
        try await withTestServer { client, _ in
            let alice = try await Device.register(client, "pawkit-a@example.com")
            let mallory = try await Device.register(client, "pawkit-m@example.com")
            let workspaceId = try #require(try decode(JSONValue.self, try await client.post("/api/workspaces", jsonBody(#"{"name":"Private"}"#), token: alice.token))["workspace"]?["id"]?.stringValue)
            _ = try await client.post("/api/todos", jsonBody(#"{"id":"todo-1","workspaceId":"\#(workspaceId)","title":"secret"}"#), token: alice.token)
            for (method, uri, body) in [
                (HTTPRequest.Method.get, "/api/todos?workspaceId=\(workspaceId)", nil as String?),
                (.get, "/api/todos/todo-1?workspaceId=\(workspaceId)", nil),
                (.patch, "/api/todos/todo-1?workspaceId=\(workspaceId)", #"{"title":"x"}"#),
                (.delete, "/api/todos/todo-1?workspaceId=\(workspaceId)", nil),
                (.post, "/api/todos", #"{"workspaceId":"\#(workspaceId)","title":"x"}"#),
                (.get, "/api/sync/delta?workspaceId=\(workspaceId)", nil),
                (.get, "/api/workspaces/\(workspaceId)", nil),
                (.put, "/api/view-settings", #"{"workspaceId":"\#(workspaceId)","viewKey":"grid"}"#),
            ] {
                let response = try await client.execute(uri: uri, method: method, headers: bearer(mallory.token), body: body.map(jsonBody))
                #expect(response.status == .notFound, "\(method) \(uri)")
            }
            let todo = try decode(JSONValue.self, try await client.get("/api/todos/todo-1?workspaceId=\(workspaceId)", token: alice.token))
            #expect(todo["todo"]?["title"] == "secret")
        }
    }

    @Test func viewSettingsUpsertByViewKey() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "views@example.com")
            let first = try await client.execute(uri: "/api/view-settings", method: .put, headers: bearer(device.token), body: jsonBody(#"{"viewKey":"library/grid view","layout":"grid","sort":"title"}"#))
            #expect(first.status == .created)
            let second = try await client.execute(uri: "/api/view-settings", method: .put, headers: bearer(device.token), body: jsonBody(#"{"viewKey":"library/grid view","layout":"list"}"#))
            #expect(second.status == .ok)
            let all = try decode(JSONValue.self, try await client.get("/api/view-settings", token: device.token))
            guard case .array(let settings)? = all["viewSettings"] else { Issue.record("no list"); return }
            #expect(settings.count == 1)
            #expect(settings.first?["layout"] == "list")
            #expect(settings.first?["viewKey"] == "library/grid view")
            #expect(settings.first?["sort"] == nil)
            #expect(try await client.execute(uri: "/api/view-settings", method: .put, headers: bearer(device.token), body: jsonBody(#"{"layout":"x"}"#)).status == .badRequest)
        }
    }
}

@Suite("Seed 004: Peek items")
struct Seed004Tests {
    func save(_ client: any TestClientProtocol, _ key: String, _ body: String, profile: String = "default") async throws -> JSONValue {
        let response = try await client.post("/items?profile=\(profile)", jsonBody(body), token: key)
        #expect(response.status == .ok || response.status == .created, "\(body) → \(response.status)")
        return try decode(JSONValue.self, response)
    }

    func count(_ client: any TestClientProtocol, _ key: String) async throws -> Int {
        let items = try decode(JSONValue.self, try await client.get("/items", token: key))
        if case .array(let list)? = items["items"] { return list.count }
        return -1
    }

    @Test func theThreeWayEndToEndPhasesAsAPICalls() async throws {
        try await withTestServer { client, _ in
            let session = try await client.register("peek@example.com")
            let desktop = try decode(CreatedAPIKey.self, try await client.post("/api/keys", jsonBody(#"{"name":"desktop"}"#), token: session.token)).secret
            let mobile = try decode(CreatedAPIKey.self, try await client.post("/api/keys", jsonBody(#"{"name":"mobile"}"#), token: session.token)).secret
            // Phase 1: server seeded with 2, desktop pushes 2, mobile pushes 2 → 6 everywhere
            for index in 0..<2 { _ = try await self.save(client, session.token, #"{"type":"text","content":"server \#(index)"}"#) }
            var desktopIds: [String] = []
            for index in 0..<2 {
                desktopIds.append(try #require(try await self.save(client, desktop, #"{"type":"url","content":"https://desktop.example/\#(index)","sync_id":"desk-\#(index)","updated_at":1700000000000}"#)["id"]?.stringValue))
            }
            for index in 0..<2 { _ = try await self.save(client, mobile, #"{"type":"text","content":"mobile \#(index)","sync_id":"mob-\#(index)","updated_at":"2023-11-14T22:13:20Z"}"#) }
            #expect(try await self.count(client, desktop) == 6)
            #expect(try await self.count(client, mobile) == 6)
            // Phase 2: re-pushing an item with its own sync_id does not grow the set
            _ = try await self.save(client, desktop, #"{"type":"url","content":"https://desktop.example/0","sync_id":"\#(desktopIds[0])","updated_at":1700000000000}"#)
            #expect(try await self.count(client, desktop) == 6)
            // The same URL from two devices WITH sync_ids stays two…
            _ = try await self.save(client, desktop, #"{"type":"url","content":"https://shared.example","sync_id":"desk-shared"}"#)
            _ = try await self.save(client, mobile, #"{"type":"url","content":"https://shared.example","sync_id":"mob-shared"}"#)
            // …and identical tagsets with sync_ids too
            _ = try await self.save(client, desktop, #"{"type":"tagset","content":null,"tags":["a","b"],"sync_id":"desk-tags"}"#)
            _ = try await self.save(client, mobile, #"{"type":"tagset","content":null,"tags":["b","a"],"sync_id":"mob-tags"}"#)
            #expect(try await self.count(client, desktop) == 10)
            // …while without sync_id (extension, API) the same content dedups
            let again = try await self.save(client, desktop, #"{"type":"url","content":"https://shared.example"}"#)
            #expect(again["created"] == .bool(false))
            let tagsAgain = try await self.save(client, mobile, #"{"type":"tagset","tags":["a","b"]}"#)
            #expect(tagsAgain["created"] == .bool(false))
            #expect(try await self.count(client, mobile) == 10)
            // Re-sync stability: pulling since the last server_time brings nothing new to push or pull
            let since = try decode(JSONValue.self, try await client.get("/items/since/0", token: desktop))
            let serverTime = try #require(since["server_time"]?.intValue)
            let nothing = try decode(JSONValue.self, try await client.get("/items/since/\(serverTime + 1)", token: desktop))
            #expect(nothing["items"] == .array([]))
            // Phase 4: a tombstone pushed by one device is pulled by the others; counts match
            let tombstone = try await self.save(client, desktop, #"{"type":"url","content":"https://desktop.example/1","sync_id":"\#(desktopIds[1])","deleted_at":1700000001000,"updated_at":1800000000000}"#)
            #expect(tombstone["item"]?["deleted_at"] != .null)
            let pulled = try decode(JSONValue.self, try await client.get("/items/since/\(serverTime)", token: mobile))
            guard case .array(let pulledItems)? = pulled["items"] else { Issue.record("no items"); return }
            let pulledTombstone = try #require(pulledItems.first { $0["id"] == .string(desktopIds[1]) })
            #expect(pulledTombstone["deleted_at"] != .null)
            #expect(try await self.count(client, desktop) == 9)
            #expect(try await self.count(client, mobile) == 9)
            let withTombstones = try decode(JSONValue.self, try await client.get("/items?includeDeleted=true", token: mobile))
            if case .array(let all)? = withTombstones["items"] { #expect(all.count == 10) }
        }
    }

    @Test func deleteKeepsATombstoneWithoutContentAndTagsCanBePatched() async throws {
        try await withTestServer { client, _ in
            let session = try await client.register("peek-delete@example.com")
            let key = try decode(CreatedAPIKey.self, try await client.post("/api/keys", jsonBody(#"{"name":"k"}"#), token: session.token)).secret
            let item = try await self.save(client, key, #"{"type":"text","content":"private note","tags":["x"]}"#)
            let id = try #require(item["id"]?.stringValue)
            let tagged = try await client.execute(uri: "/items/\(id)/tags", method: .patch, headers: bearer(key), body: jsonBody(#"{"tags":["y","z","y"]}"#))
            #expect(try decode(JSONValue.self, tagged)["item"]?["tags"] == ["y", "z"])
            #expect(try await client.execute(uri: "/items/\(id)", method: .delete, headers: bearer(key)).status == .ok)
            #expect(try await client.get("/items/\(id)", token: key).status == .notFound)
            let tombstone = try decode(JSONValue.self, try await client.get("/items/\(id)?includeDeleted=true", token: key))
            #expect(tombstone["item"]?["content"] == .null)
            #expect(tombstone["item"]?["deleted_at"]?.intValue != nil)
            // Images within the record limit are fine, over it refused
            let image = "data:image/png;base64," + String(repeating: "A", count: 100 * 1024)
            _ = try await self.save(client, key, #"{"type":"image","content":"\#(image)"}"#)
            let tooBig = "data:image/png;base64," + String(repeating: "A", count: 300 * 1024)
            #expect(try await client.post("/items", jsonBody(#"{"type":"image","content":"\#(tooBig)"}"#), token: key).status == .contentTooLarge)
            // Bad input
            #expect(try await client.post("/items", jsonBody(#"{"type":"video","content":"x"}"#), token: key).status == .badRequest)
            #expect(try await client.post("/items", jsonBody(#"{"type":"url","content":"javascript-ish"}"#), token: key).status == .badRequest)
            #expect(try await client.get("/items/since/not-a-time", token: key).status == .badRequest)
            #expect(try await client.get("/items").status == .unauthorized)
        }
    }

    @Test func profilesAreSeparateAndResolvedByUUIDOrSlug() async throws {
        try await withTestServer { client, _ in
            let session = try await client.register("peek-profiles@example.com")
            let created = try await client.post("/profiles", jsonBody(#"{"name":"work"}"#), token: session.token)
            #expect(created.status == .created)
            let workId = try #require(try decode(JSONValue.self, created)["profile"]?["id"]?.stringValue)
            _ = try await self.save(client, session.token, #"{"type":"text","content":"work item"}"#, profile: workId)
            _ = try await self.save(client, session.token, #"{"type":"text","content":"by slug"}"#, profile: "work")
            let work = try decode(JSONValue.self, try await client.get("/items?profile=\(workId)", token: session.token))
            if case .array(let list)? = work["items"] { #expect(list.count == 2) }
            #expect(try await self.count(client, session.token) == 0)
            let profiles = try decode(JSONValue.self, try await client.get("/profiles", token: session.token))
            if case .array(let list)? = profiles["profiles"] { #expect(list.count == 2) }
            #expect(try await client.execute(uri: "/profiles/\(workId)", method: .delete, headers: bearer(session.token)).status == .ok)
            #expect(try await client.get("/items?profile=\(workId)", token: session.token).status == .notFound)
        }
    }
}
