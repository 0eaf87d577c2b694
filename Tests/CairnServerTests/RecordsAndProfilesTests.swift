import CairnCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import CairnServer

@Suite("Records, profiles and the generic sync API")
struct RecordsAndProfilesTests {
    @Test func recordsOfAnyCollectionThroughTheEngine() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "records@example.com")
            let created = try await client.post("/api/records/notes", jsonBody(#"{"id":"n1","data":{"text":"first","pinned":false}}"#), token: device.token)
            #expect(created.status == .created)
            let etag = try #require(created.headers[.eTag])
            // PATCH merges fields; PUT replaces the data; strict If-Match
            var headers = bearer(device.token)
            headers[.ifMatch] = etag
            let patched = try await client.execute(uri: "/api/records/notes/n1", method: .patch, headers: headers, body: jsonBody(#"{"data":{"pinned":true}}"#))
            #expect(patched.status == .ok)
            #expect(try decode(JSONValue.self, patched)["data"] == ["text": "first", "pinned": true])
            let stale = try await client.execute(uri: "/api/records/notes/n1", method: .put, headers: headers, body: jsonBody(#"{"data":{"text":"x"}}"#))
            #expect(stale.status == .preconditionFailed)
            let put = try await client.execute(uri: "/api/records/notes/n1", method: .put, headers: bearer(device.token), body: jsonBody(#"{"data":{"text":"replaced"}}"#))
            #expect(try decode(JSONValue.self, put)["data"] == ["text": "replaced"])
            // List, delete (tombstone), pull shows the tombstone
            let list = try decode(JSONValue.self, try await client.get("/api/records/notes", token: device.token))
            #expect(list["records"]?[0]?["id"] == "n1")
            let deleted = try await client.execute(uri: "/api/records/notes/n1", method: .delete, headers: bearer(device.token))
            #expect(try decode(JSONValue.self, deleted)["deleted"] == .bool(true))
            #expect(try await client.get("/api/records/notes/n1", token: device.token).status == .notFound)
            let pulled = try await device.pull(since: 0, collections: "notes")
            #expect(pulled.changes.map(\.id) == ["n1"])
            #expect(pulled.changes.first?.deleted == true)
            // If-Match on a deleted or a missing record: 412 with no current record, and nothing
            // written (the check runs in the write's transaction)
            for id in ["n1", "never"] {
                let refused = try await client.execute(
                    uri: "/api/records/notes/\(id)", method: .patch, headers: headers, body: jsonBody(#"{"data":{"pinned":false}}"#))
                #expect(refused.status == .preconditionFailed)
                #expect(try decode(JSONValue.self, refused)["error"]?["details"]?["current"] == .null)
            }
            let afterRefusals = try await device.pull(since: 0, collections: "notes")
            #expect(afterRefusals.changes.map(\.id) == ["n1"] && afterRefusals.cursor == pulled.cursor)
            // Bad input
            #expect(try await client.post("/api/records/Bad!", jsonBody(#"{"data":{}}"#), token: device.token).status == .badRequest)
            #expect(try await client.post("/api/records/notes", jsonBody(#"{"data":[1]}"#), token: device.token).status == .badRequest)
            let huge = String(repeating: "x", count: 300 * 1024)
            let big = try await client.post("/api/records/notes", jsonBody(#"{"data":{"t":"\#(huge)"}}"#), token: device.token)
            #expect(big.status == .contentTooLarge)
        }
    }

    /// A REST write that sends an `opId` is kept under it, so resending it replays; one that sends
    /// none gets an id no client knows, so nothing is kept for it (the table would only grow).
    @Test func onlyWritesThatSentAnOpIdKeepTheirResult() async throws {
        try await withTestServer { client, components in
            let device = try await Device.register(client, "opids@example.com")
            let profileId = try await device.profileId()
            func keptResults() async throws -> Int {
                try await (components.store as! SQLiteSyncStore).pool.read { db in
                    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM applied_ops WHERE profile_id = ?", arguments: [profileId]) ?? -1
                }
            }
            // Without opIds: a record's create, PATCH, PUT and DELETE, a bookmark's create,
            // update, move and delete keep no result…
            #expect(try await client.post("/api/records/notes", jsonBody(#"{"id":"n1","data":{"text":"a"}}"#), token: device.token).status == .created)
            for (method, body) in [(HTTPRequest.Method.patch, #"{"data":{"text":"b"}}"#), (.put, #"{"data":{"text":"c"}}"#)] {
                #expect(try await client.execute(uri: "/api/records/notes/n1", method: method, headers: bearer(device.token), body: jsonBody(body)).status == .ok)
            }
            #expect(try await client.execute(uri: "/api/records/notes/n1", method: .delete, headers: bearer(device.token)).status == .ok)
            let folder = try decode(JSONValue.self, try await client.post("/api/bookmarks", jsonBody(#"{"title":"F","isFolder":true}"#), token: device.token))
            let folderId = try #require(folder["id"]?.stringValue)
            #expect(try await client.post("/api/bookmarks", jsonBody(#"{"id":"b1","title":"B","url":"https://b.example"}"#), token: device.token).status == .created)
            #expect(try await client.execute(uri: "/api/bookmarks/b1", method: .patch, headers: bearer(device.token), body: jsonBody(#"{"title":"B2"}"#)).status == .ok)
            #expect(
                try await client.execute(uri: "/api/bookmarks/b1/move", method: .post, headers: bearer(device.token), body: jsonBody(#"{"parentId":"\#(folderId)"}"#))
                    .status == .ok)
            #expect(try await client.execute(uri: "/api/bookmarks/b1", method: .delete, headers: bearer(device.token)).status == .ok)
            // …nor does seed 001's full replace, whose op ids the server makes up too
            #expect(try await client.post("/api/sync/full", jsonBody(#"{"books":[{"id":"k1","title":"K"}]}"#), token: device.token).status == .ok)
            #expect(try await keptResults() == 0)

            // With an opId: kept, and the resend is a replay that writes nothing more
            let body = jsonBody(#"{"opId":"laptop-1","data":{"text":"d"}}"#)
            let first = try await client.execute(uri: "/api/records/notes/n2", method: .put, headers: bearer(device.token), body: body)
            #expect(first.status == .created)
            let sequence = try await device.pull(since: 0).cursor
            let again = try await client.execute(uri: "/api/records/notes/n2", method: .put, headers: bearer(device.token), body: jsonBody(#"{"opId":"laptop-1","data":{"text":"d"}}"#))
            #expect(again.status == .created)
            #expect(try await device.pull(since: 0).cursor == sequence)
            #expect(try await keptResults() == 1)
        }
    }

    @Test func checkpointsKeepOneCursorPerCollection() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "checkpoint@example.com")
            _ = try await device.push([
                SyncOperation(opId: "1", type: .create, collection: "todos", id: "t1", data: ["title": "a"]),
                SyncOperation(opId: "2", type: .create, collection: "users", id: "u1", data: ["name": "b"]),
            ])
            let first = try decode(JSONValue.self, try await client.get("/api/sync/pull?cursors=todos:0,users:0", token: device.token))
            let todos = try #require(first["checkpoint"]?["collections"]?["todos"]?.intValue)
            #expect(first["checkpoint"]?["serverSequence"] != nil)
            _ = try await device.push([SyncOperation(opId: "3", type: .create, collection: "todos", id: "t2", data: ["title": "c"])])
            let second = try decode(JSONValue.self, try await client.get("/api/sync/pull?cursors=todos:\(todos),users:0", token: device.token))
            guard case .array(let changes)? = second["changes"] else { Issue.record("no changes"); return }
            #expect(Set(changes.compactMap { $0["id"]?.stringValue }) == ["t2", "u1"])
            #expect(try await client.get("/api/sync/pull?cursors=todos", token: device.token).status == .badRequest)
        }
    }

    @Test func profilesAreSeparateDataSpacesAndIsolatedPerUser() async throws {
        try await withTestServer { client, _ in
            let alice = try await Device.register(client, "profiles-a@example.com")
            let bob = try await Device.register(client, "profiles-b@example.com")
            let created = try await client.post("/api/profiles", jsonBody(#"{"name":"work","settings":{"conflictStrategy":"lww"}}"#), token: alice.token)
            #expect(created.status == .created)
            let work = try decode(JSONValue.self, created)
            let workId = try #require(work["id"]?.stringValue)
            #expect(work["settings"]?["conflictStrategy"] == "lww")
            // Work has its own roots and data; default does not see it
            _ = try await client.post("/api/records/notes?profile=work", jsonBody(#"{"id":"w1","data":{"t":"work"}}"#), token: alice.token)
            #expect(try await client.get("/api/records/notes/w1?profile=work", token: alice.token).status == .ok)
            #expect(try await client.get("/api/records/notes/w1", token: alice.token).status == .notFound)
            #expect(try decode(BookmarkList.self, try await client.get("/api/bookmarks?profile=\(workId)", token: alice.token)).bookmarks.count == 4)
            // Bob cannot see or touch Alice's profile: exactly like a missing one
            let missing = try await client.get("/api/profiles/\(UUID().uuidString.lowercased())", token: bob.token)
            let foreign = try await client.get("/api/profiles/\(workId)", token: bob.token)
            #expect(foreign.status == .notFound)
            #expect(String(buffer: foreign.body) == String(buffer: missing.body))
            #expect(try await client.get("/api/records/notes/w1?profile=\(workId)", token: bob.token).status == .notFound)
            #expect(try await client.post("/api/records/notes?profile=\(workId)", jsonBody(#"{"data":{"t":"x"}}"#), token: bob.token).status == .notFound)
            // Duplicate names, bad settings, the default profile
            #expect(try await client.post("/api/profiles", jsonBody(#"{"name":"work"}"#), token: alice.token).status == .conflict)
            #expect(try await client.post("/api/profiles", jsonBody(#"{"name":"x","settings":{"conflictStrategy":"coinflip"}}"#), token: alice.token).status == .badRequest)
            #expect(try await client.execute(uri: "/api/profiles/default", method: .delete, headers: bearer(alice.token)).status == .forbidden)
            // Rename and delete: the profile's records are tombstoned, the profile is gone
            let renamed = try await client.execute(uri: "/api/profiles/\(workId)", method: .patch, headers: bearer(alice.token), body: jsonBody(#"{"name":"job"}"#))
            #expect(try decode(JSONValue.self, renamed)["name"] == "job")
            #expect(try await client.execute(uri: "/api/profiles/\(workId)", method: .delete, headers: bearer(alice.token)).status == .noContent)
            #expect(try await client.get("/api/profiles/\(workId)", token: alice.token).status == .notFound)
            let names = try decode(JSONValue.self, try await client.get("/api/profiles", token: alice.token))["profiles"]
            #expect(names?[0]?["name"] == "default")
            #expect(names?[1] == nil)
        }
    }

    /// Requests resolve their profile from the store's memory after the first time; a rename, a
    /// deletion and a new profile taking a freed name are seen by the very next request.
    @Test func profilesResolvedFromMemoryFollowRenamesAndDeletions() async throws {
        try await withTestServer { client, _ in
            let alice = try await Device.register(client, "profile-cache@example.com")
            let created = try decode(JSONValue.self, try await client.post("/api/profiles", jsonBody(#"{"name":"work"}"#), token: alice.token))
            let workId = try #require(created["id"]?.stringValue)
            #expect(try await client.post("/api/records/notes?profile=work", jsonBody(#"{"id":"w1","data":{}}"#), token: alice.token).status == .created)
            #expect(try await client.get("/api/records/notes/w1?profile=work", token: alice.token).status == .ok)
            #expect(try await client.get("/api/records/notes/w1?profile=\(workId)", token: alice.token).status == .ok)
            // Rename: the old name is gone at once, the new one finds the same data
            let renamed = try await client.execute(uri: "/api/profiles/work", method: .patch, headers: bearer(alice.token), body: jsonBody(#"{"name":"job"}"#))
            #expect(renamed.status == .ok)
            #expect(try await client.get("/api/records/notes/w1?profile=work", token: alice.token).status == .notFound)
            #expect(try await client.get("/api/records/notes/w1?profile=job", token: alice.token).status == .ok)
            // The answers that show the sequence read it fresh, not from memory
            let before = try decode(JSONValue.self, try await client.get("/api/profiles/job", token: alice.token))["syncVersion"]
            #expect(try await client.post("/api/records/notes?profile=job", jsonBody(#"{"id":"w2","data":{}}"#), token: alice.token).status == .created)
            let after = try decode(JSONValue.self, try await client.get("/api/profiles/job", token: alice.token))["syncVersion"]
            #expect(try #require(after?.intValue) > (try #require(before?.intValue)))
            let status = try decode(JSONValue.self, try await client.get("/api/sync/status?profile=job", token: alice.token))
            #expect(status["syncVersion"] == after)
            // Delete: neither name nor id resolves, and nothing can be written there
            #expect(try await client.execute(uri: "/api/profiles/job", method: .delete, headers: bearer(alice.token)).status == .noContent)
            #expect(try await client.get("/api/records/notes/w1?profile=job", token: alice.token).status == .notFound)
            #expect(try await client.get("/api/records/notes/w1?profile=\(workId)", token: alice.token).status == .notFound)
            #expect(try await client.post("/api/records/notes?profile=\(workId)", jsonBody(#"{"id":"w3","data":{}}"#), token: alice.token).status == .notFound)
            // A new profile may take the freed name, and that name now means the new profile
            let again = try decode(JSONValue.self, try await client.post("/api/profiles", jsonBody(#"{"name":"job"}"#), token: alice.token))
            #expect(again["id"]?.stringValue != workId)
            #expect(try await client.get("/api/records/notes/w1?profile=job", token: alice.token).status == .notFound)
        }
    }

    @Test func profileStrategySettingIsApplied() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "strategy-setting@example.com")
            _ = try await client.execute(uri: "/api/profiles/default", method: .patch, headers: bearer(device.token), body: jsonBody(#"{"settings":{"collections":{"notes":{"conflictStrategy":"manual"}}}}"#))
            let v1 = try #require(try await device.push([SyncOperation(opId: "1", type: .create, collection: "notes", id: "n", data: ["t": "a"])]).results.first?.version)
            _ = try await device.push([SyncOperation(opId: "2", type: .update, collection: "notes", id: "n", patch: ["t": "b"], expectedVersion: v1)])
            let stale = try await device.push([SyncOperation(opId: "3", type: .update, collection: "notes", id: "n", patch: ["t": "c"], expectedVersion: v1)])
            #expect(stale.results.first?.status == .conflict)
            let status = try decode(JSONValue.self, try await client.get("/api/sync/status", token: device.token))
            #expect(status["conflicts"] == .number(1))
        }
    }

    @Test func apiKeysScopedToAProfileSeeOnlyIt() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "scoped@example.com")
            _ = try await client.post("/api/profiles", jsonBody(#"{"name":"ext"}"#), token: device.token)
            let key = try decode(CreatedAPIKey.self, try await client.post("/api/keys", jsonBody(#"{"name":"k","profile":"ext"}"#), token: device.token))
            _ = try await client.post("/api/records/notes", jsonBody(#"{"id":"mine","data":{}}"#), token: key.secret)
            #expect(try await client.get("/api/records/notes/mine?profile=ext", token: device.token).status == .ok)
            #expect(try await client.get("/api/records/notes?profile=default", token: key.secret).status == .notFound)
            let list = try decode(JSONValue.self, try await client.get("/api/profiles", token: key.secret))["profiles"]
            #expect(list?[0]?["name"] == "ext")
            #expect(list?[1] == nil)
            #expect(try await client.post("/api/profiles", jsonBody(#"{"name":"sneaky"}"#), token: key.secret).status == .forbidden)
        }
    }

    @Test func statusReportsCursorDevicesAndPending() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "status@example.com")
            _ = try await client.get("/api/sync/pull?since=0&clientId=laptop", token: device.token)
            let status = try decode(JSONValue.self, try await client.get("/api/sync/status", token: device.token))
            #expect(status["success"] == .bool(true))
            #expect(status["status"] == "ready")
            #expect(status["pendingOperations"] == .number(0))
            #expect(status["devices"]?[0]?["clientId"] == "laptop")
            #expect(status["syncVersion"] == .number(4))
            // The last change is the time of the record at the profile's sequence: here a note
            // written after the root folders
            _ = try await client.post("/api/records/notes", jsonBody(#"{"id":"last","data":{}}"#), token: device.token)
            let note = try decode(JSONValue.self, try await client.get("/api/records/notes/last", token: device.token))
            let after = try decode(JSONValue.self, try await client.get("/api/sync/status", token: device.token))
            #expect(after["syncVersion"] == note["version"])
            let lastSync = try #require(after["lastSync"]?.stringValue.flatMap(Timestamps.milliseconds))
            #expect(lastSync == note["updatedAt"]?.intValue)
        }
    }
}
