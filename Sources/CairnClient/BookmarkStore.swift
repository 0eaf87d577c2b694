import CairnCore
import Foundation
import GRDB

/// A bookmark or folder as the local replica holds it.
public struct BookmarkNode: Sendable, Equatable, Codable {
    public var id: String
    /// The parent folder (`nil` for the four roots).
    public var parentId: String?
    public var title: String
    /// The URL; `nil` for a folder.
    public var url: String?
    public var isFolder: Bool
    public var tags: [String]
    public var notes: String?
    /// The fractional-index key that orders siblings (with the id as tie-breaker).
    public var position: String
    /// The server version last seen (0: not synced yet).
    public var version: Int64
    /// Whether a local edit of it waits to be pushed.
    public var pending: Bool
    /// A folder's children in order (filled by ``BookmarkStore/tree()``).
    public var children: [BookmarkNode]?

    init(_ record: LocalRecord) {
        let data = record.data
        self.id = record.id
        self.parentId = data["parentId"]?.stringValue
        self.title = data["title"]?.stringValue ?? ""
        self.url = data["url"]?.stringValue
        self.isFolder = data["isFolder"]?.boolValue ?? (self.url == nil)
        self.tags = data["tags"]?.arrayValue?.compactMap(\.stringValue) ?? []
        self.notes = data["notes"]?.stringValue
        self.position = data["position"]?.stringValue ?? ""
        self.version = record.version
        self.pending = record.pending
    }

    /// The sibling order: position, then id.
    static func ordered(_ a: BookmarkNode, _ b: BookmarkNode) -> Bool {
        (a.position, a.id) < (b.position, b.id)
    }
}

extension JSONValue {
    var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }
}

/// The bookmark tree of the local replica: `client.bookmarks`.
///
/// Writes apply locally at once (with the placement computed here, as a fractional-index key,
/// so that they never renumber siblings) and are queued for the server; reads never touch the
/// network. The four roots `toolbar`, `menu`, `other` and `mobile` always exist.
public struct BookmarkStore: Sendable {
    let client: CairnClient
    static let collection = "bookmarks"
    /// The bookmark fields a client writes.
    static let writableFields = ["title", "url", "tags", "notes", "favicon"]

    /// Adds a bookmark. `parentId` defaults to `other`; `index` places it among the live children
    /// (default: last).
    @discardableResult
    public func add(
        url: String, title: String? = nil, parentId: String = "other", index: Int? = nil, tags: [String] = [], notes: String? = nil
    ) async throws -> BookmarkNode {
        do { try BookmarkURL.validate(url, maxBytes: 16 * 1024) } catch { throw CairnClientError.invalid("\(error.message)") }
        var data: [String: JSONValue] = [
            "title": .string(title ?? url), "url": .string(url), "isFolder": false, "tags": .array(tags.map(JSONValue.string)),
            "dateAdded": .number(Double(self.client.clock.now)),
        ]
        if let notes { data["notes"] = .string(notes) }
        return try await self.create(data: data, parentId: parentId, index: index)
    }

    /// Adds a folder.
    @discardableResult
    public func addFolder(title: String, parentId: String = "other", index: Int? = nil) async throws -> BookmarkNode {
        try await self.create(
            data: ["title": .string(title), "isFolder": true, "tags": [], "dateAdded": .number(Double(self.client.clock.now))], parentId: parentId, index: index)
    }

    private func create(data: [String: JSONValue], parentId: String, index: Int?) async throws -> BookmarkNode {
        let id = self.client.newRecordId()
        let opId = self.client.newOpId()
        let events = try await self.client.write { db, clock, _ in
            try Self.requireFolder(db, parentId)
            let position = try Self.position(db, in: parentId, at: index, excluding: nil)
            return [SyncOperation(
                opId: opId, type: .create, collection: Self.collection, id: id, data: .object(data), parentId: .string(parentId),
                position: position, hlc: clock.next())]
        }
        return BookmarkNode(try RecordCollection.record(from: events, id: id))
    }

    /// Changes a bookmark's title, URL, tags or notes (`nil` leaves a field as it is).
    @discardableResult
    public func update(_ id: String, title: String? = nil, url: String? = nil, tags: [String]? = nil, notes: String? = nil) async throws -> BookmarkNode {
        var patch: [String: JSONValue] = [:]
        if let title { patch["title"] = .string(title) }
        if let url {
            do { try BookmarkURL.validate(url, maxBytes: 16 * 1024) } catch { throw CairnClientError.invalid("\(error.message)") }
            patch["url"] = .string(url)
        }
        if let tags { patch["tags"] = .array(tags.map(JSONValue.string)) }
        if let notes { patch["notes"] = .string(notes) }
        let changes = patch
        let opId = self.client.newOpId()
        let events = try await self.client.write { db, clock, _ in
            let node = try Self.require(db, id)
            if url != nil && node.isFolder { throw CairnClientError.invalid("a folder has no URL") }
            return [SyncOperation(
                opId: opId, type: .update, collection: Self.collection, id: id, patch: .object(changes),
                expectedVersion: try Replica.expectedVersion(db, Self.collection, id), hlc: clock.next())]
        }
        return BookmarkNode(try RecordCollection.record(from: events, id: id))
    }

    /// Moves a bookmark or folder into `parentId` at `index` (default: last). Refuses to move a
    /// root or to move a folder into itself.
    @discardableResult
    public func move(_ id: String, to parentId: String, index: Int? = nil) async throws -> BookmarkNode {
        if Bookmark.isRoot(id) { throw CairnClientError.invalid("the roots cannot be moved") }
        let opId = self.client.newOpId()
        let events = try await self.client.write { db, clock, _ in
            _ = try Self.require(db, id)
            try Self.requireFolder(db, parentId)
            // Walk up from the target. The local view can hold a cycle that does not go through
            // `id` (concurrent moves not yet resolved by the server): stop at the first node seen
            // twice instead of walking the loop (it used to go round it 100,000 times).
            var cursor: String? = parentId
            var seen = Set<String>()
            while let current = cursor, seen.insert(current).inserted {
                if current == id { throw CairnClientError.invalid("a folder cannot move into itself") }
                cursor = try Replica.record(db, Self.collection, current)?.data["parentId"]?.stringValue
            }
            let position = try Self.position(db, in: parentId, at: index, excluding: id)
            return [SyncOperation(
                opId: opId, type: .move, collection: Self.collection, id: id, expectedVersion: try Replica.expectedVersion(db, Self.collection, id),
                parentId: .string(parentId), position: position, hlc: clock.next())]
        }
        return BookmarkNode(try RecordCollection.record(from: events, id: id))
    }

    /// Deletes a bookmark, or a folder with everything in it.
    public func delete(_ id: String) async throws {
        if Bookmark.isRoot(id) { throw CairnClientError.invalid("the roots cannot be deleted") }
        let opId = self.client.newOpId()
        _ = try await self.client.write { db, clock, _ in
            _ = try Self.require(db, id)
            return [SyncOperation(
                opId: opId, type: .delete, collection: Self.collection, id: id,
                expectedVersion: try Replica.expectedVersion(db, Self.collection, id), hlc: clock.next())]
        }
    }

    /// The bookmark or folder, if it is live.
    public func get(_ id: String) async throws -> BookmarkNode? {
        guard let record = try await self.client.replica.record(Self.collection, id), !record.deleted else { return nil }
        return BookmarkNode(record)
    }

    /// The live children of a folder, in order.
    public func children(of parentId: String) async throws -> [BookmarkNode] {
        try self.client.replica.read { db in try Self.children(db, parentId) }
    }

    /// The whole tree: the top-level folders (the roots first) with their descendants. A node
    /// whose parent is deleted or missing is not part of the tree.
    public func tree() async throws -> [BookmarkNode] {
        let nodes = try await self.client.replica.records(Self.collection).map(BookmarkNode.init)
        var byParent: [String: [BookmarkNode]] = [:]
        var top: [BookmarkNode] = []
        for node in nodes {
            if let parent = node.parentId { byParent[parent, default: []].append(node) } else { top.append(node) }
        }
        func build(_ node: BookmarkNode, depth: Int) -> BookmarkNode {
            var node = node
            if node.isFolder {
                node.children = depth > 512 ? [] : (byParent[node.id] ?? []).sorted(by: BookmarkNode.ordered).map { build($0, depth: depth + 1) }
            }
            return node
        }
        let rootOrder = Dictionary(uniqueKeysWithValues: Bookmark.rootIds.enumerated().map { ($1, $0) })
        top.sort { (rootOrder[$0.id] ?? 99, $0.position, $0.id) < (rootOrder[$1.id] ?? 99, $1.position, $1.id) }
        return top.map { build($0, depth: 0) }
    }

    /// Bookmarks of the tree whose title, URL, tags or notes contain every word of `query`
    /// (case-insensitive), titles matches first.
    public func search(_ query: String, limit: Int = 100) async throws -> [BookmarkNode] {
        let words = query.lowercased().split(whereSeparator: \.isWhitespace).map(String.init)
        guard !words.isEmpty else { return [] }
        var results: [(Int, BookmarkNode)] = []
        func visit(_ node: BookmarkNode) {
            if !node.isFolder {
                let title = node.title.lowercased()
                let text = ([title, node.url ?? "", node.notes ?? ""] + node.tags).joined(separator: "\n").lowercased()
                if words.allSatisfy({ text.contains($0) }) {
                    results.append((words.allSatisfy { title.contains($0) } ? 0 : 1, node))
                }
            }
            for child in node.children ?? [] { visit(child) }
        }
        for root in try await self.tree() { visit(root) }
        return results.sorted { ($0.0, $0.1.title, $0.1.id) < ($1.0, $1.1.title, $1.1.id) }.prefix(limit).map {
            var node = $0.1
            node.children = nil
            return node
        }
    }

    /// Finds a folder by id, root id or a `/`-separated path of titles from a root
    /// (`toolbar/Dev/Swift`, matching titles case-insensitively).
    public func folder(named path: String) async throws -> BookmarkNode? {
        try self.client.replica.read { db in
            if let record = try Replica.record(db, Self.collection, path), !record.deleted, BookmarkNode(record).isFolder {
                return BookmarkNode(record)
            }
            let parts = path.split(separator: "/").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let first = parts.first else { return nil }
            let roots = Bookmark.rootIds.compactMap { try? Replica.record(db, Self.collection, $0) }.map(BookmarkNode.init)
            guard var current = roots.first(where: { $0.id == first || $0.title.lowercased() == first }) else { return nil }
            for part in parts.dropFirst() {
                guard let next = try Self.children(db, current.id).first(where: { $0.isFolder && $0.title.lowercased() == part }) else { return nil }
                current = next
            }
            return current
        }
    }

    /// Imports a parsed bookmark file (``NetscapeBookmarkFile/parse(_:)``) as local writes queued
    /// for the server. Without `parentId`, the browser roots of the file map onto Cairn's roots
    /// and everything else goes into `other`; with one, the whole file goes into that folder.
    /// `progress` is called with (done, total) after each batch. Returns the number of nodes.
    @discardableResult
    public func importTree(
        _ nodes: [BookmarkTreeNode], into parentId: String? = nil, progress: (@Sendable (Int, Int) -> Void)? = nil
    ) async throws -> Int {
        struct Item: Sendable {
            var node: BookmarkTreeNode
            var id: String
            var parent: String
        }
        var items: [Item] = []
        func flatten(_ nodes: [BookmarkTreeNode], parent: String, top: Bool) {
            for node in nodes {
                if top, parentId == nil, node.isFolder, let hint = node.rootHint {
                    flatten(node.children, parent: hint.rawValue, top: false)
                    continue
                }
                let id = UUID().uuidString.lowercased()
                items.append(Item(node: node, id: id, parent: parent))
                if node.isFolder { flatten(node.children, parent: id, top: false) }
            }
        }
        if let parentId {
            _ = try self.client.replica.read { db in try Self.requireFolder(db, parentId) }
        }
        flatten(nodes, parent: parentId ?? "other", top: true)
        let total = items.count
        var done = 0
        // The last position handed out in each folder ("" for none yet), carried across batches.
        var lastPositions: [String: String] = [:]
        for start in stride(from: 0, to: items.count, by: 500) {
            let chunk = Array(items[start..<min(start + 500, items.count)])
            let known = lastPositions
            let opIds = chunk.map { _ in self.client.newOpId() }
            let (_, updated) = try await self.client.write { db, clock, _ -> ([SyncOperation], [String: String]) in
                var last = known
                var ops: [SyncOperation] = []
                for (item, opId) in zip(chunk, opIds) {
                    if last[item.parent] == nil { last[item.parent] = try Self.children(db, item.parent).last?.position ?? "" }
                    let lower = last[item.parent].flatMap { $0.isEmpty ? nil : $0 }
                    let position = FractionalIndex.between(lower, nil)
                    last[item.parent] = position
                    var data: [String: JSONValue] = [
                        "title": .string(item.node.title), "isFolder": .bool(item.node.isFolder),
                        "tags": .array(item.node.tags.map(JSONValue.string)),
                    ]
                    if let url = item.node.url { data["url"] = .string(url) }
                    if let notes = item.node.notes { data["notes"] = .string(notes) }
                    if let added = item.node.dateAdded { data["dateAdded"] = .number(Double(added)) }
                    if let icon = item.node.icon, icon.utf8.count <= 64 * 1024 { data["favicon"] = .string(icon) }
                    ops.append(SyncOperation(
                        opId: opId, type: .create, collection: Self.collection, id: item.id, data: .object(data),
                        parentId: .string(item.parent), position: position, hlc: clock.next()))
                }
                return (ops, last)
            }
            lastPositions = updated
            done += chunk.count
            progress?(done, total)
        }
        return total
    }

    /// The tree in the shape of a bookmark file (``NetscapeBookmarkFile/render(_:)``): the four
    /// roots as the browser roots.
    public func exportTree() async throws -> [BookmarkTreeNode] {
        func convert(_ node: BookmarkNode) -> BookmarkTreeNode {
            BookmarkTreeNode(
                title: node.title, url: node.isFolder ? nil : node.url, children: (node.children ?? []).map(convert), tags: node.tags,
                notes: node.notes, rootHint: Bookmark.isRoot(node.id) ? BookmarkTreeNode.RootHint(rawValue: node.id) : nil)
        }
        return try await self.tree().map(convert)
    }

    // MARK: Helpers inside a local transaction

    static func children(_ db: Database, _ parentId: String) throws -> [BookmarkNode] {
        let rows = try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT id, view, deleted, base_version, pending FROM records
                    WHERE collection = 'bookmarks' AND json_extract(view, '$.parentId') = ? AND deleted = 0 AND view IS NOT NULL
                    """),
            arguments: [parentId])
        return try rows.map { row in
            BookmarkNode(LocalRecord(
                collection: collection, id: row["id"], data: try Replica.decodeFields(row["view"]) ?? [:],
                deleted: row["deleted"], version: row["base_version"], pending: row["pending"]))
        }.sorted(by: BookmarkNode.ordered)
    }

    static func require(_ db: Database, _ id: String) throws -> BookmarkNode {
        guard let record = try Replica.record(db, collection, id), !record.deleted else { throw CairnClientError.notFound(id) }
        return BookmarkNode(record)
    }

    static func requireFolder(_ db: Database, _ id: String) throws {
        let node = try require(db, id)
        if !node.isFolder { throw CairnClientError.invalid("\(id) is not a folder") }
    }

    /// The key for a node placed at `index` among the live children of `parentId` (default: last).
    static func position(_ db: Database, in parentId: String, at index: Int?, excluding id: String?) throws -> String {
        // Only the keys of the siblings: nothing else of them is decoded.
        let siblings = try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT id, json_extract(view, '$.position') AS position FROM records
                    WHERE collection = 'bookmarks' AND json_extract(view, '$.parentId') = ? AND deleted = 0 AND view IS NOT NULL
                    """),
            arguments: [parentId]
        ).compactMap { row -> (position: String, id: String)? in
            let sibling: String = row["id"]
            return sibling == id ? nil : ((row["position"] as String?) ?? "", sibling)
        }.sorted { ($0.position, $0.id) < ($1.position, $1.id) }
        let at = min(max(index ?? siblings.count, 0), siblings.count)
        let lower = at > 0 ? siblings[at - 1].position : nil
        let upper = at < siblings.count ? siblings[at].position : nil
        return FractionalIndex.between(lower, upper)
    }

    /// The four roots exist locally before the first sync, so that a device can add bookmarks
    /// offline from the start. They carry version 0 until the server's copies are pulled.
    static func seedRoots(_ db: Database) throws {
        for (index, id) in Bookmark.rootIds.enumerated() where try Replica.record(db, collection, id) == nil {
            let data: [String: JSONValue] = [
                "id": .string(id), "title": .string(Bookmark.rootTitles[id] ?? id), "isFolder": true, "parentId": .null,
                "position": .string(FractionalIndex.sequence(count: 4)[index]), "tags": [], "isDeleted": false,
            ]
            try Replica.rebase(db, collection, id, base: (RecordState(data: data, deleted: false), 0))
        }
    }
}

