import CairnCore
import CairnTestFixtures
import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import CairnServer

@Suite("Bookmark routes")
struct BookmarkRoutesTests {
    @Test func listsFlatTreeAndTombstones() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "list@example.com")
            _ = try await device.push([
                .createBookmark("1", id: "f", title: "Folder", parent: "toolbar"),
                .createBookmark("2", id: "b", title: "Inside", url: "https://in.example", parent: "f"),
                .createBookmark("3", id: "gone", title: "Gone", url: "https://gone.example", parent: "f"),
            ])
            _ = try await device.push([.deleteBookmark("4", id: "gone")])
            let flat = try await device.bookmarks()
            #expect(flat.bookmarks.map(\.id).contains("b"))
            #expect(!flat.bookmarks.map(\.id).contains("gone"))
            #expect(flat.syncVersion > 0)
            #expect(try await device.bookmarks(includeDeleted: true).bookmarks.contains { $0.id == "gone" && $0.isDeleted })
            let tree = try decode(BookmarkList.self, try await client.get("/api/bookmarks?format=tree", token: device.token))
            let toolbar = try #require(tree.bookmarks.first { $0.id == "toolbar" })
            #expect(toolbar.children?.first?.id == "f")
            #expect(toolbar.children?.first?.children?.map(\.id) == ["b"])
            // Seed 000 field names, with explicit nulls
            let raw = try decode(JSONValue.self, try await client.get("/api/bookmarks/f", token: device.token))
            for key in ["id", "parentId", "title", "url", "favicon", "dateAdded", "dateModified", "isFolder", "sortOrder", "syncVersion", "isDeleted", "deletedAt"] {
                #expect(raw[key] != nil, "missing \(key)")
            }
            #expect(raw["url"] == .null)
            let badFormat = try await client.get("/api/bookmarks?format=xml", token: device.token)
            #expect(badFormat.status == .badRequest)
        }
    }

    @Test func createReadUpdateMoveDeleteOverREST() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "crud@example.com")
            let created = try await client.post("/api/bookmarks", jsonBody(#"{"title":"Swift","url":"https://swift.org","tags":["lang"," lang ","dev"]}"#), token: device.token)
            #expect(created.status == .created)
            let bookmark = try decode(Bookmark.self, created)
            #expect(bookmark.parentId == "other")
            #expect(bookmark.tags == ["lang", "dev"])
            #expect(created.headers[.location] == "/api/bookmarks/\(bookmark.id)")
            let patched = try await client.execute(uri: "/api/bookmarks/\(bookmark.id)", method: .patch, headers: bearer(device.token), body: jsonBody(#"{"title":"Swift.org","notes":"home"}"#))
            #expect(patched.status == .ok)
            #expect(try decode(Bookmark.self, patched).title == "Swift.org")
            let moved = try await client.post("/api/bookmarks/\(bookmark.id)/move", jsonBody(#"{"parentId":"toolbar","index":0}"#), token: device.token)
            #expect(moved.status == .ok)
            #expect(try decode(Bookmark.self, moved).parentId == "toolbar")
            let deleted = try await client.execute(uri: "/api/bookmarks/\(bookmark.id)", method: .delete, headers: bearer(device.token))
            #expect(deleted.status == .ok)
            #expect(try await client.get("/api/bookmarks/\(bookmark.id)", token: device.token).status == .notFound)
            let tombstone = try await client.get("/api/bookmarks/\(bookmark.id)?includeDeleted=true", token: device.token)
            #expect(try decode(Bookmark.self, tombstone).isDeleted)
            // Updating a deleted bookmark over REST: 404
            let late = try await client.execute(uri: "/api/bookmarks/\(bookmark.id)", method: .patch, headers: bearer(device.token), body: jsonBody(#"{"title":"x"}"#))
            #expect(late.status == .notFound)
        }
    }

    @Test(arguments: [
        (#"{"title":"x","url":"gopher-evil://x"}"#, "url"),
        (#"{"title":"x","url":"ftp:"}"#, "url"),
        (#"{"title":"x","url":"notaurl"}"#, "url"),
        (#"{"title":"x","url":"https://a.example","favicon":"javascript:alert(1)"}"#, "favicon"),
        (#"{"title":"x","url":"https://a.example","tags":"not-a-list"}"#, "tags"),
        (#"{"title":"x","url":"https://a.example","tags":[1,2]}"#, "tags"),
        (#"{"title":5,"url":"https://a.example"}"#, "title"),
        (#"{"title":"x","isFolder":true,"url":"https://a.example"}"#, "url"),
        (#"{"title":"x"}"#, "url"),
        (#"{"title":"x","url":"https://a.example","parentId":"nope"}"#, "parentId"),
        (#"{"title":"x","url":"https://a.example","dateAdded":-5}"#, "dateAdded"),
    ])
    func rejectsInvalidBookmarks(body: String, field: String) async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "invalid@example.com")
            let before = try await device.bookmarks()
            let response = try await client.post("/api/bookmarks", jsonBody(body), token: device.token)
            #expect([400, 404, 413].contains(response.status.code), "\(body) → \(response.status)")
            #expect(try decode(ErrorEnvelope.self, response).error.details?["field"] == .string(field), "\(body)")
            #expect(try await device.bookmarks().syncVersion == before.syncVersion)
        }
    }

    @Test func rejectsOversizedTitleURLAndFavicon() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "big@example.com")
            let longTitle = String(repeating: "t", count: 4097)
            let longURL = "https://a.example/" + String(repeating: "u", count: 16 * 1024)
            let bigIcon = "data:image/png;base64," + String(repeating: "A", count: 64 * 1024)
            for (body, field) in [
                (#"{"title":"\#(longTitle)","url":"https://a.example"}"#, "title"),
                (#"{"title":"t","url":"\#(longURL)"}"#, "url"),
                (#"{"title":"t","url":"https://a.example","favicon":"\#(bigIcon)"}"#, "favicon"),
            ] {
                let response = try await client.post("/api/bookmarks", jsonBody(body), token: device.token)
                #expect(response.status.code >= 400 && response.status.code < 500)
                #expect(try decode(ErrorEnvelope.self, response).error.details?["field"] == .string(field))
            }
            // At the limit is fine
            let okTitle = String(repeating: "t", count: 4096)
            let ok = try await client.post("/api/bookmarks", jsonBody(#"{"title":"\#(okTitle)","url":"https://a.example","favicon":"data:image/png;base64,AAAA"}"#), token: device.token)
            #expect(ok.status == .created)
        }
    }

    @Test func savingThePageTwiceGivesOneBookmarkButTheSyncPathKeepsTwo() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "dedup@example.com")
            let first = try await client.post("/api/bookmarks", jsonBody(#"{"title":"Page","url":"https://Example.com/page/"}"#), token: device.token)
            let second = try await client.post("/api/bookmarks", jsonBody(#"{"title":"Page again","url":"https://example.com:443/page"}"#), token: device.token)
            #expect(first.status == .created)
            #expect(second.status == .ok)
            let twin = try decode(Bookmark.self, second)
            #expect(twin.deduplicated == true)
            #expect(twin.id == (try decode(Bookmark.self, first)).id)
            // The sync path (ids given) matches by id only: two devices saving the URL keep two
            _ = try await device.push([.createBookmark("d1", id: "phone-1", title: "P", url: "https://example.com/page")])
            let list = try await device.bookmarks().bookmarks.filter { $0.url.map(BookmarkURL.normalized) == "https://example.com/page" }
            #expect(list.count == 2)
            // Across folders, duplicates are suggested, not merged
            _ = try await device.push([.createBookmark("d2", id: "elsewhere", title: "E", url: "https://example.com/page", parent: "toolbar")])
            let duplicates = try decode(JSONValue.self, try await client.get("/api/bookmarks/duplicates", token: device.token))
            guard case .array(let groups)? = duplicates["duplicates"] else { Issue.record("no groups"); return }
            #expect(groups.count == 1)
            guard case .array(let members)? = groups.first?["bookmarks"] else { Issue.record("no members"); return }
            #expect(members.count == 3)
        }
    }

    @Test func searchRanksATitleMatchFirstAndPages() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "search@example.com")
            _ = try await device.push([
                .init(opId: "1", type: .create, id: "notes-hit", data: ["title": "Something else", "url": "https://a.example", "notes": "mentions kangaroo once"], parentId: "other"),
                .init(opId: "2", type: .create, id: "title-hit", data: ["title": "Kangaroo facts", "url": "https://b.example"], parentId: "other"),
                .init(opId: "3", type: .create, id: "tag-hit", data: ["title": "Animals", "url": "https://c.example", "tags": ["kangaroos"]], parentId: "other"),
                .init(opId: "4", type: .create, id: "url-hit", data: ["title": "Zoo", "url": "https://kangaroo.example/zoo"], parentId: "other"),
                .init(opId: "5", type: .create, id: "miss", data: ["title": "Koala", "url": "https://d.example"], parentId: "other"),
            ])
            let response = try decode(JSONValue.self, try await client.get("/api/bookmarks/search?q=kanga", token: device.token))
            guard case .array(let results)? = response["results"] else { Issue.record("no results"); return }
            #expect(results.first?["id"] == .string("title-hit"))
            #expect(Set(results.compactMap { $0["id"]?.stringValue }) == ["notes-hit", "title-hit", "tag-hit", "url-hit"])
            #expect(response["total"] == .number(4))
            let page = try decode(JSONValue.self, try await client.get("/api/bookmarks/search?q=kanga&limit=2&offset=2", token: device.token))
            guard case .array(let second)? = page["results"] else { Issue.record("no page"); return }
            #expect(second.count == 2)
            #expect(page["total"] == .number(4))
            // Deleted bookmarks leave the index; FTS syntax is taken literally
            _ = try await device.push([.deleteBookmark("6", id: "title-hit")])
            let after = try decode(JSONValue.self, try await client.get("/api/bookmarks/search?q=kangaroo", token: device.token))
            #expect(after["total"] == .number(3))
            for hostile in ["\"", "kanga OR", "NEAR(a b)", "*", "title:x", "'; DROP TABLE records; --"] {
                let encoded = hostile.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
                let answer = try await client.get("/api/bookmarks/search?q=\(encoded)", token: device.token)
                #expect(answer.status == .ok, "\(hostile)")
            }
            #expect(try await client.get("/api/bookmarks/search", token: device.token).status == .badRequest)
        }
    }

    /// Search indexes what was committed: what an op wrote is found only if the op stood, the
    /// last write of a bookmark in a batch is what is found, and an aborted atomic batch indexes
    /// nothing.
    @Test func searchIndexHoldsOnlyWhatABatchKept() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "search-batch@example.com")
            _ = try await device.push([
                .init(opId: "f", type: .create, id: "wombat-folder", data: ["title": "Wombat folder", "isFolder": true], parentId: "other"),
                .deleteBookmark("f-del", id: "wombat-folder"),
            ])
            let answer = try await device.push([
                .init(opId: "1", type: .create, id: "b1", data: ["title": "Echidna first", "url": "https://a.example"], parentId: "other"),
                .init(opId: "2", type: .update, id: "b1", patch: ["title": "Platypus second"]),
                // Creating into the deleted folder revives it, then the position is refused: the
                // op rolls back, revived folder and its index entry with it.
                .init(opId: "3", type: .create, id: "b2", data: ["title": "Quokka", "url": "https://b.example"], parentId: "wombat-folder", position: "not valid!"),
                .init(opId: "4", type: .create, id: "b3", data: ["title": "Numbat", "url": "https://c.example"], parentId: "other"),
            ])
            #expect(answer.results.map(\.status) == [.applied, .applied, .rejected, .applied])
            #expect(try await device.searchTotal("echidna") == .number(0))
            #expect(try await device.searchTotal("platypus") == .number(1))
            #expect(try await device.searchTotal("quokka") == .number(0))
            #expect(try await device.searchTotal("wombat") == .number(0))
            #expect(try await device.searchTotal("numbat") == .number(1))

            let aborted = try await device.push(
                [
                    .init(opId: "5", type: .create, id: "b4", data: ["title": "Bilby", "url": "https://d.example"], parentId: "other"),
                    .init(opId: "6", type: .update, id: "b3", patch: ["title": "Dingo"]),
                    .init(opId: "7", type: .create, id: "b5", data: ["title": "Bad"], parentId: "other"),
                ], atomic: true)
            #expect(aborted.results.map(\.status) == [.rejected, .rejected, .rejected])
            #expect(try await device.searchTotal("bilby") == .number(0))
            #expect(try await device.searchTotal("dingo") == .number(0))
            #expect(try await device.searchTotal("numbat") == .number(1))
        }
    }

    /// Writes leave the search index alone; the next search brings it up to date with every
    /// change before it: creates, edits and deletes.
    @Test func aSearchIndexesTheChangesSinceTheLastSearch() async throws {
        try await withTestServer { client, components in
            let device = try await Device.register(client, "search-lazy@example.com")
            let profile = try await device.profileId()
            _ = try await device.push((1...5).map { .createBookmark("c\($0)", id: "k\($0)", title: "Kiwi \($0)", url: "https://k\($0).example") })
            #expect(try await searchEntries(components, profile) == 0)
            #expect(try await device.searchTotal("kiwi") == .number(5))
            let indexed = try await searchEntries(components, profile)
            #expect(indexed >= 5)
            _ = try await device.push([.init(opId: "u1", type: .update, id: "k1", patch: ["title": "Mango"]), .deleteBookmark("d2", id: "k2")])
            #expect(try await searchEntries(components, profile) == indexed)
            #expect(try await device.searchTotal("kiwi") == .number(3))
            #expect(try await device.searchTotal("mango") == .number(1))
            #expect(try await searchEntries(components, profile) == indexed - 1)
            let state = try await components.store.read { try $0.searchIndexState(profile) }
            #expect(state?.indexed == state?.seq)
            // A change to another collection leaves the index (and its sequence) as it is
            _ = try await device.push([SyncOperation(opId: "t", type: .create, collection: "todos", id: "t1", data: ["title": "kiwi todo"])])
            #expect(try await device.searchTotal("kiwi") == .number(3))
            let after = try await components.store.read { try $0.searchIndexState(profile) }
            #expect(after?.indexed == state?.indexed)
            #expect(after?.seq ?? 0 > state?.seq ?? 0)
        }
    }

    /// A catch-up in small transactions (between other collections' changes, whose versions it
    /// skips) ends with the same index as one pass, and later changes start where it stopped.
    @Test func aSearchCatchUpInChunksMissesNothing() async throws {
        try await withTestServer { client, components in
            let device = try await Device.register(client, "search-chunks@example.com")
            let profile = try await device.profileId()
            for round in 0..<4 {
                _ = try await device.push([
                    .createBookmark("b\(round)a", id: "b\(round)a", title: "Quokka \(round)", url: "https://a\(round).example"),
                    SyncOperation(opId: "t\(round)", type: .create, collection: "todos", id: "t\(round)", data: ["title": "quokka todo"]),
                    .createBookmark("b\(round)b", id: "b\(round)b", title: "Quokka b \(round)", url: "https://b\(round).example"),
                ])
            }
            _ = try await device.push([.init(opId: "u", type: .update, id: "b0a", patch: ["title": "Wallaby"]), .deleteBookmark("d", id: "b1b")])
            try await components.engine.catchUpSearchIndex(profileId: profile, chunk: 2)
            let state = try await components.store.read { try $0.searchIndexState(profile) }
            #expect(state?.indexed == state?.seq)
            #expect(try await device.searchTotal("quokka") == .number(6))
            #expect(try await device.searchTotal("wallaby") == .number(1))
            _ = try await device.push([.init(opId: "u2", type: .update, id: "b2a", patch: ["title": "Wallaby too"])])
            try await components.engine.catchUpSearchIndex(profileId: profile, chunk: 2)
            #expect(try await device.searchTotal("quokka") == .number(5))
            #expect(try await device.searchTotal("wallaby") == .number(2))
        }
    }

    /// A purged tombstone and a deleted profile take their index entries with them, even when no
    /// search caught the index up with the delete.
    @Test func purgeAndProfileDeleteLeaveNoSearchEntryBehind() async throws {
        let manual = ManualClock()
        try await withTestServer(clock: manual.clock) { client, components in
            let device = try await Device.register(client, "search-purge@example.com").withAPIKey()
            let profile = try await device.profileId()
            _ = try await device.push([
                .createBookmark("1", id: "emu", title: "Emu", url: "https://emu.example"),
                .createBookmark("2", id: "cassowary", title: "Cassowary", url: "https://c.example"),
            ])
            #expect(try await device.searchTotal("emu") == .number(1))
            let indexed = try await searchEntries(components, profile)
            _ = try await device.push([.deleteBookmark("3", id: "emu")])
            manual.advance(by: 40 * 86_400)
            #expect(try await components.engine.purgeTombstones(olderThan: 30 * 86_400) == 1)
            #expect(try await searchEntries(components, profile) == indexed - 1)
            #expect(try await fullTextRows(components, "emu") == 0)
            #expect(try await device.searchTotal("emu") == .number(0))
            #expect(try await device.searchTotal("cassowary") == .number(1))

            _ = try await device.push([.createBookmark("4", id: "dingo", title: "Dingo", url: "https://d.example")])
            try await components.engine.deleteProfile(profileId: profile, clientId: nil)
            #expect(try await searchEntries(components, profile) == 0)
            #expect(try await fullTextRows(components, "cassowary OR dingo") == 0)
        }
    }

    @Test func importThenExportOfABrowserFileKeepsStructureOrderTagsAndDates() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "import@example.com")
            let response = try await client.execute(
                uri: "/api/bookmarks/import", method: .post,
                headers: [.authorization: "Bearer \(device.token)", .contentType: "text/html"], body: ByteBuffer(string: BookmarkFileFixtures.firefox)
            )
            #expect(response.status == .ok)
            let summary = try decode(ImportSummary.self, response)
            #expect(summary.bookmarksCreated == 9)
            #expect(summary.invalidSkipped == 0)
            try await device.assertTreeValid()
            // Roots mapped: toolbar content into the toolbar root, menu items into menu, unfiled into other
            let list = try await device.bookmarks().bookmarks
            let byTitle = Dictionary(list.map { ($0.title, $0) }, uniquingKeysWith: { first, _ in first })
            #expect(byTitle["Getting Started"]?.parentId == "toolbar")
            #expect(byTitle["Hacker News"]?.parentId == "other")
            #expect(byTitle["Search & Find"]?.parentId == "menu")
            #expect(byTitle["Search & Find"]?.tags == ["search", "tools"])
            #expect(byTitle["Search & Find"]?.dateAdded == 1_700_000_000_000)
            #expect(byTitle["Search & Find"]?.dateModified == 1_700_000_500_000)
            #expect(byTitle["Swift Forums"]?.parentId == byTitle["Swift"]?.id)
            // Export and parse back: the same structure, order, tags and dates
            let exported = try await client.get("/api/bookmarks/export?format=html", token: device.token)
            #expect(exported.headers[.contentType]?.hasPrefix("text/html") == true)
            let original = try NetscapeBookmarkFile.parse(BookmarkFileFixtures.firefox)
            let roundTrip = try NetscapeBookmarkFile.parse(String(buffer: exported.body))
            func folder(_ nodes: [BookmarkTreeNode], _ hint: BookmarkTreeNode.RootHint) -> BookmarkTreeNode? { nodes.first { $0.rootHint == hint } }
            func shape(_ nodes: [BookmarkTreeNode]) -> [String] {
                nodes.flatMap { node in
                    ["\(node.title)|\(node.url ?? "-")|\(node.tags.joined(separator: ","))|\(node.dateAdded ?? 0)"] + shape(node.children).map { "  " + $0 }
                }
            }
            #expect(shape(folder(roundTrip, .toolbar)?.children ?? []) == shape(folder(original, .toolbar)?.children ?? []))
            #expect(shape(folder(roundTrip, .other)?.children ?? []) == shape(folder(original, .other)?.children ?? []))
            let menuItems = original.filter { $0.rootHint == nil }
            #expect(shape(folder(roundTrip, .menu)?.children ?? []) == shape(menuItems))
            // Importing the same file again adds nothing
            let again = try decode(ImportSummary.self, try await client.execute(
                uri: "/api/bookmarks/import", method: .post,
                headers: [.authorization: "Bearer \(device.token)", .contentType: "text/html"], body: ByteBuffer(string: BookmarkFileFixtures.firefox)
            ))
            #expect(again.bookmarksCreated == 0)
            #expect(again.foldersCreated == 0)
            #expect(again.duplicatesSkipped == 9)
            // And the JSON export re-imports into a chosen folder
            let json = try await client.get("/api/bookmarks/export?format=json", token: device.token)
            _ = try await device.push([.createBookmark("f", id: "restore", title: "Restore", parent: "other")])
            let restored = try decode(ImportSummary.self, try await client.execute(
                uri: "/api/bookmarks/import?parentId=restore", method: .post, headers: bearer(device.token), body: json.body
            ))
            #expect(restored.bookmarksCreated == 9)
        }
    }

    @Test func importsTenThousandBookmarksInOneRequest() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "tenk@example.com")
            var html = "<!DOCTYPE NETSCAPE-Bookmark-file-1>\n<DL><p>\n"
            for folder in 0..<100 {
                html += "<DT><H3 ADD_DATE=\"1700000000\">Folder \(folder)</H3>\n<DL><p>\n"
                for item in 0..<100 {
                    html += "<DT><A HREF=\"https://example.com/\(folder)/\(item)\" ADD_DATE=\"1700000\(String(format: "%03d", item))\" TAGS=\"t\(item % 7)\">Item \(folder)-\(item)</A>\n"
                }
                html += "</DL><p>\n"
            }
            html += "</DL>\n"
            let response = try await client.execute(
                uri: "/api/bookmarks/import", method: .post,
                headers: [.authorization: "Bearer \(device.token)", .contentType: "text/html"], body: ByteBuffer(string: html)
            )
            #expect(response.status == .ok)
            let summary = try decode(ImportSummary.self, response)
            #expect(summary.bookmarksCreated == 10_000)
            #expect(summary.foldersCreated == 100)
            let list = try await device.bookmarks().bookmarks
            #expect(list.filter { !$0.isFolder }.count == 10_000)
            let folder7 = try #require(list.first { $0.title == "Folder 7" })
            let items = list.filter { $0.parentId == folder7.id }.sorted { $0.sortOrder < $1.sortOrder }.map(\.title)
            #expect(items == (0..<100).map { "Item 7-\($0)" })
        }
    }

    @Test func anotherUsersBookmarkIdAnswersExactlyLikeAMissingOne() async throws {
        try await withTestServer { client, _ in
            let alice = try await Device.register(client, "alice@example.com")
            let bob = try await Device.register(client, "bob@example.com")
            _ = try await alice.push([.createBookmark("a", id: "secret", title: "Alice's secret", url: "https://alice.example")])
            for (method, uri, body) in [
                (HTTPRequest.Method.get, "/api/bookmarks/secret", nil as String?),
                (.patch, "/api/bookmarks/secret", #"{"title":"pwned"}"#),
                (.delete, "/api/bookmarks/secret", nil),
                (.post, "/api/bookmarks/secret/move", #"{"parentId":"toolbar"}"#),
            ] {
                let foreign = try await client.execute(uri: uri, method: method, headers: bearer(bob.token), body: body.map(jsonBody))
                let missing = try await client.execute(uri: uri.replacingOccurrences(of: "secret", with: "never-existed"), method: method, headers: bearer(bob.token), body: body.map(jsonBody))
                #expect(foreign.status == .notFound, "\(method) \(uri)")
                #expect(String(buffer: foreign.body) == String(buffer: missing.body).replacingOccurrences(of: "never-existed", with: "secret"))
            }
            // Bob's sync path with Alice's id creates Bob's own record; Alice's is untouched
            let pushed = try await bob.push([.updateBookmark("b", id: "secret", ["title": "pwned"], expected: nil)])
            #expect(pushed.results.first?.error?.code == "NOT_FOUND")
            #expect(try await alice.bookmark("secret")?.title == "Alice's secret")
            #expect(!(try await bob.pull(since: 0)).changes.contains { $0.id == "secret" })
            let search = try decode(JSONValue.self, try await client.get("/api/bookmarks/search?q=secret", token: bob.token))
            #expect(search["total"] == .number(0))
            // Another user's profile id is a missing profile
            let aliceProfile = try decode(MeResponse.self, try await client.get("/api/me", token: alice.token)).profiles[0].id
            let viaProfile = try await client.get("/api/bookmarks?profile=\(aliceProfile)", token: bob.token)
            #expect(viaProfile.status == .notFound)
        }
    }

    @Test func seedSyncEndpointSpeaksTheSeedShapes() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "seed@example.com")
            let other = try await client.post(
                "/api/bookmarks/sync",
                jsonBody(#"{"lastSyncVersion":0,"clientId":"laptop","changes":[{"id":"ev-1","type":"create","bookmarkId":"b1","data":{"title":"From laptop","url":"https://l.example","parentId":"toolbar"},"timestamp":1700000000000,"clientId":"laptop","syncVersion":0},{"id":"ev-1b","type":"create","bookmarkId":"b2","data":{"title":"Also from laptop","url":"https://l2.example","parentId":"toolbar"},"timestamp":1700000000000,"clientId":"laptop","syncVersion":0}]}"#),
                token: device.token
            )
            let laptop = try decode(JSONValue.self, other)
            #expect(laptop["applied"] == ["ev-1", "ev-1b"])
            let laptopVersion = try #require(laptop["newSyncVersion"]?.intValue)
            // The phone, which last synced at 0, pushes its own change and receives the laptop's
            let phone = try decode(JSONValue.self, try await client.post(
                "/api/bookmarks/sync",
                jsonBody(#"{"lastSyncVersion":0,"clientId":"phone","changes":[{"id":"ev-2","type":"update","bookmarkId":"b1","data":{"title":"Renamed"},"timestamp":1700000001000,"clientId":"phone","syncVersion":\#(laptopVersion)}]}"#),
                token: device.token
            ))
            #expect(phone["applied"] == ["ev-2"])
            #expect(phone["conflicts"] == .array([]))
            guard case .array(let changes)? = phone["serverChanges"] else { Issue.record("no serverChanges"); return }
            // b1 was changed by this push last, but the laptop's creation of it is news to the phone:
            // its current state comes back too
            let b1 = try #require(changes.first { $0["bookmarkId"] == .string("b1") })
            #expect(b1["data"]?["title"] == "Renamed")
            #expect(b1["data"]?["url"] == "https://l.example")
            let laptopEvent = try #require(changes.first { $0["bookmarkId"] == .string("b2") })
            #expect(laptopEvent["type"] == .string("create"))
            #expect(laptopEvent["clientId"] == .string("laptop"))
            for key in ["id", "type", "bookmarkId", "data", "timestamp", "clientId", "syncVersion"] { #expect(laptopEvent[key] != nil) }
            #expect(phone["newSyncVersion"]?.intValue ?? 0 > laptopVersion)
            // A stale update of a deleted bookmark comes back as a conflict with the server version
            _ = try await device.push([.deleteBookmark("del", id: "b1")])
            let stale = try decode(JSONValue.self, try await client.post(
                "/api/bookmarks/sync",
                jsonBody(#"{"lastSyncVersion":\#(laptopVersion),"clientId":"laptop","changes":[{"id":"ev-3","type":"update","bookmarkId":"b1","data":{"title":"Too late"},"timestamp":1700000002000,"syncVersion":\#(laptopVersion)}]}"#),
                token: device.token
            ))
            guard case .array(let conflicts)? = stale["conflicts"] else { Issue.record("no conflicts"); return }
            #expect(conflicts.first?["bookmarkId"] == .string("b1"))
            #expect(conflicts.first?["serverVersion"]?["isDeleted"] == .bool(true))
            let malformed = try await client.post("/api/bookmarks/sync", jsonBody(#"{"changes":[{"type":"explode"}]}"#), token: device.token)
            #expect(malformed.status == .badRequest)
        }
    }

    @Test func pullPagesByCursorWithTombstonesAndRefusesAFutureCursor() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "pull@example.com")
            let start = try await device.pull(since: 0).cursor
            _ = try await device.push((0..<25).map { .createBookmark("c\($0)", id: "b\($0)", title: "B\($0)", url: "https://\($0).example") })
            _ = try await device.push([.deleteBookmark("d", id: "b3")])
            var cursor = start
            var seen: [String] = []
            var pages = 0
            while true {
                let page = try await device.pull(since: cursor, limit: 10)
                seen += page.changes.map(\.id)
                #expect(page.cursor >= cursor)
                cursor = page.cursor
                pages += 1
                if !page.hasMore { break }
            }
            #expect(pages == 3)
            #expect(seen.count == 25)
            #expect(Set(seen).count == 25)
            let tombstone = try #require(try await device.pull(since: start).changes.first { $0.id == "b3" })
            #expect(tombstone.deleted)
            // Nothing new: an empty page at the same cursor
            let empty = try await device.pull(since: cursor)
            #expect(empty.changes.isEmpty)
            #expect(empty.cursor == cursor)
            // A cursor from the future (another profile's, or a restored server) must resync
            let future = try await client.get("/api/sync/pull?since=\(cursor + 1000)", token: device.token)
            #expect(future.status == .gone)
            #expect(try decode(ErrorEnvelope.self, future).error.code == "RESYNC_REQUIRED")
            #expect(try await client.get("/api/sync/pull?since=-1", token: device.token).status == .badRequest)
            #expect(try await client.get("/api/sync/pull?since=abc", token: device.token).status == .badRequest)
        }
    }

    /// A busy folder's sibling order is kept between the pages of a pull (`SiblingOrderCache`),
    /// but only for pages read at the same profile sequence: after a write, the next page's
    /// `sortOrder`s are the folder's places after it.
    @Test func pagesOfABusyFolderGiveTheSortOrderOfTheirOwnSnapshot() async throws {
        try await withTestServer { client, components in
            let device = try await Device.register(client, "pages@example.com")
            let start = try await device.pull(since: 0).cursor
            _ = try await device.push((0..<60).map { .createBookmark("c\($0)", id: "b\($0)", title: "B\($0)", url: "https://\($0).example", parent: "toolbar") })
            func places() async throws -> [String: Int64] {
                let toolbar = try await device.bookmarks().bookmarks.filter { $0.parentId == "toolbar" }
                return Dictionary(uniqueKeysWithValues: toolbar.map { ($0.id, Int64($0.sortOrder)) })
            }
            func check(_ changes: [RecordChange], against expected: [String: Int64]) {
                for change in changes where change.collection == "bookmarks" && !change.deleted {
                    #expect(change.data["sortOrder"]?.intValue == expected[change.id], "\(change.id)")
                }
            }
            let before = try await places()
            let first = try await device.pull(since: start, limit: 25)
            #expect(first.changes.count == 25 && first.hasMore)
            check(first.changes, against: before)
            #expect(components.engine.siblingOrders.held >= 60, "the first page kept the folder's order")
            // A new first child moves every other one a place down: the kept order is stale now.
            _ = try await device.push([.createBookmark("c-front", id: "front", title: "F", url: "https://f.example", parent: "toolbar", index: 0)])
            let after = try await places()
            #expect(after["b30"] == (before["b30"] ?? -10) + 1)
            var cursor = first.cursor
            var later: [RecordChange] = []
            var pages = 0
            while true {
                let page = try await device.pull(since: cursor, limit: 25)
                later += page.changes
                cursor = page.cursor
                pages += 1
                if !page.hasMore { break }
            }
            #expect(pages == 2)
            #expect(later.count == 36)
            check(later, against: after)
        }
    }

    @Test func concurrentWritersAndCursorReadersSeeEveryChangeExactlyOnce() async throws {
        try await withTestServer(configure: { $0.apiBurst = 100_000 }) { client, _ in
            let device = try await Device.register(client, "race@example.com")
            let writers = 4
            let perWriter = 30
            let readers = 3
            let expected = Set((0..<writers).flatMap { writer in (0..<perWriter).map { "w\(writer)-\($0)" } })
            let seen = try await withThrowingTaskGroup(of: [String]?.self) { group in
                for writer in 0..<writers {
                    group.addTask {
                        for item in 0..<perWriter {
                            _ = try await device.named("writer\(writer)").push([
                                .createBookmark("w\(writer)-\(item)", id: "w\(writer)-\(item)", title: "x", url: "https://\(writer).example/\(item)")
                            ])
                        }
                        return nil
                    }
                }
                for _ in 0..<readers {
                    group.addTask {
                        var cursor: Int64 = 0
                        var received: [String] = []
                        var lastVersion: Int64 = 0
                        for _ in 0..<2000 {
                            let page = try await device.pull(since: cursor, limit: 7)
                            for change in page.changes {
                                #expect(change.version > lastVersion)
                                lastVersion = change.version
                                if change.id.hasPrefix("w") { received.append(change.id) }
                            }
                            cursor = page.cursor
                            if Set(received).isSuperset(of: expected) && !page.hasMore { break }
                            if page.changes.isEmpty { try await Task.sleep(for: .milliseconds(2)) }
                        }
                        return received
                    }
                }
                var all: [[String]] = []
                for try await result in group { if let result { all.append(result) } }
                return all
            }
            #expect(seen.count == readers)
            for received in seen {
                #expect(received.count == expected.count)
                #expect(Set(received) == expected)
            }
        }
    }
}

@Suite("Tombstone purge")
struct TombstonePurgeTests {
    @Test func aCursorOlderThanAPurgedTombstoneMustResyncWhileANewerOneKeepsPulling() async throws {
        let manual = ManualClock()
        try await withTestServer(clock: manual.clock) { client, components in
            let device = try await Device.register(client, "purge@example.com").withAPIKey()
            let base = try await device.pull(since: 0).cursor
            _ = try await device.push([
                .createBookmark("1", id: "old", title: "Old", url: "https://old.example"),
                .createBookmark("2", id: "keep", title: "Keep", url: "https://keep.example"),
            ])
            _ = try await device.push([.deleteBookmark("3", id: "old")])
            let afterDelete = try await device.pull(since: base).cursor
            manual.advance(by: 40 * 86_400)
            _ = try await device.push([.createBookmark("4", id: "fresh", title: "Fresh", url: "https://fresh.example")])
            // When tombstones older than 30 days are purged
            let purged = try await components.engine.purgeTombstones(olderThan: 30 * 86_400)
            #expect(purged == 1)
            // Then a device that synced before the delete must resync: no partial diff
            let stale = try await client.get("/api/sync/pull?since=\(base)", token: device.token)
            #expect(stale.status == .gone)
            #expect(try decode(ErrorEnvelope.self, stale).error.code == "RESYNC_REQUIRED")
            // A device past the horizon keeps pulling normally, and a full pull works
            let recent = try await device.pull(since: afterDelete)
            #expect(recent.changes.map(\.id) == ["fresh"])
            let full = try await device.pull(since: 0)
            #expect(!full.changes.contains { $0.id == "old" })
            #expect(full.changes.contains { $0.id == "keep" })
            // The seed 000 sync endpoint says the same
            let seed = try await client.post("/api/bookmarks/sync", jsonBody(#"{"changes":[],"lastSyncVersion":\#(base)}"#), token: device.token)
            #expect(seed.status == .gone)
            // A push with that cursor is refused with nothing stored: over REST, and in the
            // engine itself, whose transaction checks the cursor (no purge can land between the
            // check and the write)
            let late = SyncOperation.createBookmark("5", id: "late", title: "Late", url: "https://late.example")
            let body: [String: JSONValue] = ["operations": .array([late.jsonValue]), "cursor": .integer(base)]
            let refused = try await client.post("/api/sync/push", try jsonBody(body), token: device.token)
            #expect(refused.status == .gone)
            let profile = try await device.profileId()
            let sequence = try await components.engine.sequence(profileId: profile)
            var push = PushRequest(profileId: profile, operations: [late])
            push.cursor = base
            await #expect(throws: CairnError.self) { try await components.engine.push(push) }
            #expect(try await components.engine.sequence(profileId: profile) == sequence)
            #expect(try await !device.pull(since: 0).changes.contains { $0.id == "late" })
        }
    }
}

/// How many rows of the full-text table (any profile's) match an FTS5 query.
func fullTextRows(_ components: CairnServerComponents, _ match: String) async throws -> Int {
    try await (components.store as! SQLiteSyncStore).pool.read { db in
        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM bookmark_search WHERE bookmark_search MATCH ?", arguments: [match]) ?? -1
    }
}

/// How many bookmarks of a profile the search index holds.
func searchEntries(_ components: CairnServerComponents, _ profileId: String) async throws -> Int {
    try await (components.store as! SQLiteSyncStore).pool.read { db in
        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM bookmark_search_map WHERE profile_id = ?", arguments: [profileId]) ?? -1
    }
}
