import CairnCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import CairnServer

/// Answers of the sync routes, as tests read them.
struct PushAnswer: Decodable {
    var results: [OperationResult]
    var committed: Bool
    var changes: [RecordChange]
    var cursor: Int64
    var hasMore: Bool
}

struct BookmarkList: Decodable {
    var bookmarks: [Bookmark]
    var syncVersion: Int64
}

/// A signed-in device talking to the real router.
struct Device: Sendable {
    let client: any TestClientProtocol
    let token: String
    let name: String

    static func register(_ client: any TestClientProtocol, _ email: String, name: String = "device") async throws -> Device {
        let session = try await client.register(email)
        return Device(client: client, token: session.token, name: name)
    }

    /// The same account authenticating with a fresh API key (which does not expire).
    func withAPIKey() async throws -> Device {
        let created = try await self.client.post("/api/keys", jsonBody(#"{"name":"test"}"#), token: self.token)
        return Device(client: self.client, token: try decode(CreatedAPIKey.self, created).secret, name: self.name)
    }

    func named(_ name: String) -> Device { Device(client: self.client, token: self.token, name: name) }

    /// The id of the account's first profile (`default`).
    func profileId() async throws -> String {
        try decode(MeResponse.self, try await self.client.get("/api/me", token: self.token)).profiles[0].id
    }

    /// The `total` of a bookmark search for `query` (sent as given).
    func searchTotal(_ query: String) async throws -> JSONValue? {
        try decode(JSONValue.self, try await self.client.get("/api/bookmarks/search?q=\(query)", token: self.token))["total"]
    }

    func push(_ operations: [SyncOperation], atomic: Bool = false, strategy: ConflictStrategy? = nil, cursor: Int64? = nil) async throws -> PushAnswer {
        var body: [String: JSONValue] = [
            "clientId": .string(self.name),
            "operations": try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(operations)),
            "atomic": .bool(atomic),
        ]
        if let strategy { body["strategy"] = .string(strategy.rawValue) }
        if let cursor { body["cursor"] = .number(Double(cursor)) }
        let response = try await self.client.post("/api/sync/push", try jsonBody(body), token: self.token)
        #expect(response.status == .ok, "push answered \(response.status): \(String(buffer: response.body))")
        return try decode(PushAnswer.self, response)
    }

    func pull(since: Int64, limit: Int = 1000, collections: String? = nil) async throws -> PullResponse {
        var uri = "/api/sync/pull?since=\(since)&limit=\(limit)"
        if let collections { uri += "&collections=\(collections)" }
        let response = try await self.client.get(uri, token: self.token)
        #expect(response.status == .ok, "pull answered \(response.status): \(String(buffer: response.body))")
        return try decode(PullResponse.self, response)
    }

    func bookmarks(includeDeleted: Bool = false) async throws -> BookmarkList {
        try decode(BookmarkList.self, try await self.client.get("/api/bookmarks?includeDeleted=\(includeDeleted)", token: self.token))
    }

    func bookmark(_ id: String) async throws -> Bookmark? {
        let response = try await self.client.get("/api/bookmarks/\(id)", token: self.token)
        return response.status == .ok ? try decode(Bookmark.self, response) : nil
    }

    /// Checks the tree invariants: every live node's parent is null or a live folder, no cycles.
    func assertTreeValid(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let all = try await self.bookmarks(includeDeleted: true).bookmarks
        let byId = Dictionary(all.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for node in all where !node.isDeleted {
            if let parent = node.parentId {
                let parentNode = byId[parent]
                #expect(parentNode != nil, "\(node.id) has a missing parent \(parent)", sourceLocation: sourceLocation)
                #expect(parentNode?.isDeleted == false, "\(node.id) is a live orphan under deleted \(parent)", sourceLocation: sourceLocation)
                #expect(parentNode?.isFolder == true, "\(node.id)'s parent is not a folder", sourceLocation: sourceLocation)
            }
            var seen: Set<String> = [node.id]
            var cursor = node.parentId
            while let current = cursor {
                #expect(seen.insert(current).inserted, "cycle through \(node.id)", sourceLocation: sourceLocation)
                if !seen.insert(current + "#").inserted { break }
                cursor = byId[current]?.parentId
                if seen.count > all.count * 2 + 4 { break }
            }
        }
        // sortOrder is a dense 0..n-1 per parent, in position order
        let live = all.filter { !$0.isDeleted }
        for (_, siblings) in Dictionary(grouping: live, by: { $0.parentId ?? "" }) {
            let ordered = siblings.sorted { ($0.position, $0.id) < ($1.position, $1.id) }
            #expect(ordered.map(\.sortOrder) == Array(0..<ordered.count), sourceLocation: sourceLocation)
        }
    }
}

extension SyncOperation {
    static func createBookmark(_ opId: String, id: String, title: String, url: String? = nil, parent: String = "other", index: Int? = nil, hlc: HLC? = nil) -> SyncOperation {
        var data: [String: JSONValue] = ["title": .string(title)]
        if let url { data["url"] = .string(url) } else { data["isFolder"] = true }
        return SyncOperation(opId: opId, type: .create, id: id, data: .object(data), parentId: .string(parent), index: index, hlc: hlc)
    }

    static func updateBookmark(_ opId: String, id: String, _ patch: [String: JSONValue], expected: Int64?, hlc: HLC? = nil) -> SyncOperation {
        SyncOperation(opId: opId, type: .update, id: id, patch: .object(patch), expectedVersion: expected, hlc: hlc)
    }

    static func moveBookmark(_ opId: String, id: String, to parent: String, expected: Int64? = nil, index: Int? = nil, hlc: HLC? = nil) -> SyncOperation {
        SyncOperation(opId: opId, type: .move, id: id, expectedVersion: expected, parentId: .string(parent), index: index, hlc: hlc)
    }

    static func deleteBookmark(_ opId: String, id: String, expected: Int64? = nil) -> SyncOperation {
        SyncOperation(opId: opId, type: .delete, id: id, expectedVersion: expected)
    }
}

/// A stamp `offset` ms from now on `node`.
func stamp(_ node: String, offset: Int64 = 0, base: Date = Date()) -> HLC {
    HLC(wall: Int64(base.timeIntervalSince1970 * 1000) + offset, counter: 0, node: node)
}
