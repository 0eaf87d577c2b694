import CairnCore
import Foundation

/// What an import did.
public struct ImportSummary: Codable, Sendable, Equatable {
    /// Bookmarks created.
    public var bookmarksCreated: Int
    /// Folders created.
    public var foldersCreated: Int
    /// Bookmarks skipped because the folder already holds the same URL.
    public var duplicatesSkipped: Int
    /// Folders merged into an existing folder of the same title.
    public var foldersMerged: Int
    /// Items refused (invalid URL, too long…), with the reason of the first few.
    public var invalidSkipped: Int
    public var errors: [String]
    /// The profile sequence after the import.
    public var syncVersion: Int64
}

extension SyncEngine {
    /// The most nodes one import may hold.
    static let maximumImportNodes = 100_000
    /// The deepest folder nesting an import keeps.
    static let maximumImportDepth = 100

    /// Imports a tree in one transaction. With `parentId`, everything goes under that folder;
    /// without, top-level folders that stand for a browser root go into that root and other
    /// top-level items into `menu` (as Firefox exports its menu). Re-importing the same file
    /// adds nothing: folders merge by title and a URL already in the folder is skipped.
    public func importBookmarks(profileId: String, nodes: [BookmarkTreeNode], parentId: String?, clientId: String?) async throws -> ImportSummary {
        let total = nodes.reduce(0) { $0 + Self.nodeCount($1) }
        guard total <= Self.maximumImportNodes else {
            throw CairnError(.payloadTooLarge, "At most \(Self.maximumImportNodes) bookmarks and folders per import")
        }
        let clock = self.clock
        let hlc = self.hlc
        let limits = self.limits
        let summary = try await self.store.write(profileId: profileId) { tx -> ImportSummary in
            // Timestamps are taken under the write lock, so they follow commit order.
            let now = clock.nowMilliseconds
            guard let profile = try tx.profileState(profileId) else { throw CairnError.notFound("Profile") }
            let applier = try BatchApplier(
                tx: tx, request: PushRequest(profileId: profileId, clientId: clientId, operations: []), profile: profile, now: now, hlc: hlc, limits: limits
            )
            let rules = BookmarkRules(applier: applier)
            try rules.ensureRoots()
            var importer = TreeImporter(rules: rules, stamp: hlc.now())
            if let parentId {
                guard let parent = try tx.record(profileId, BookmarkRules.collection, parentId), !parent.deleted,
                    parent.data["isFolder"]?.boolValue == true
                else { throw CairnError(.notFound, "Folder not found", field: "parentId") }
                try importer.insert(nodes, into: parentId, depth: 0)
            } else {
                var loose: [BookmarkTreeNode] = []
                for node in nodes {
                    if node.isFolder, let hint = node.rootHint {
                        try importer.insert(node.children, into: hint.rawValue, depth: 0)
                    } else {
                        loose.append(node)
                    }
                }
                try importer.insert(loose, into: "menu", depth: 0)
            }
            try applier.finish()
            var summary = importer.summary
            summary.syncVersion = applier.seq
            return summary
        }
        if summary.bookmarksCreated + summary.foldersCreated > 0 {
            self.notifier.profileChanged(profileId: profileId, sequence: summary.syncVersion, originClientId: clientId)
        }
        return summary
    }

    static func nodeCount(_ node: BookmarkTreeNode) -> Int {
        1 + node.children.reduce(0) { $0 + nodeCount($1) }
    }

    // MARK: Export

    /// The live tree as `BookmarkTreeNode`s, roots first, with their root hints.
    public func exportTree(profileId: String) async throws -> (nodes: [BookmarkTreeNode], syncVersion: Int64) {
        let (bookmarks, syncVersion) = try await self.bookmarks(profileId: profileId, includeDeleted: false)
        func convert(_ bookmark: Bookmark) -> BookmarkTreeNode {
            BookmarkTreeNode(
                title: bookmark.title, url: bookmark.isFolder ? nil : bookmark.url, children: (bookmark.children ?? []).map(convert),
                dateAdded: bookmark.dateAdded, dateModified: bookmark.dateModified, tags: bookmark.tags, notes: bookmark.notes,
                icon: bookmark.favicon, rootHint: Bookmark.isRoot(bookmark.id) && bookmark.parentId == nil ? BookmarkTreeNode.RootHint(rawValue: bookmark.id) : nil
            )
        }
        return (BookmarkView.tree(bookmarks).map(convert), syncVersion)
    }
}

/// Walks an imported tree, merging into what the profile already has.
struct TreeImporter {
    let rules: BookmarkRules
    let stamp: HLC
    var summary = ImportSummary(bookmarksCreated: 0, foldersCreated: 0, duplicatesSkipped: 0, foldersMerged: 0, invalidSkipped: 0, errors: [], syncVersion: 0)

    mutating func insert(_ nodes: [BookmarkTreeNode], into parentId: String, depth: Int) throws {
        guard !nodes.isEmpty else { return }
        let applier = self.rules.applier
        let existing = try applier.tx.children(applier.profileId, BookmarkRules.collection, parentId: parentId, includeDeleted: false)
        // Existing folders by title, in order: the n-th folder titled T in the file merges into the
        // n-th existing folder titled T, so re-importing a file with look-alike folders adds nothing.
        var folders: [String: [String]] = [:]
        var urls: Set<String> = []
        for child in existing {
            if child.data["isFolder"]?.boolValue == true {
                folders[child.data["title"]?.stringValue ?? "", default: []].append(child.id)
            } else if let url = child.data["url"]?.stringValue {
                urls.insert(BookmarkURL.normalized(url))
            }
        }
        // Decide what is new, then give the new ones positions after the existing children.
        var plan: [(node: BookmarkTreeNode, mergeInto: String?)] = []
        for node in nodes {
            if node.isFolder {
                if let id = folders[node.title]?.first {
                    folders[node.title]?.removeFirst()
                    plan.append((node, id))
                    self.summary.foldersMerged += 1
                } else {
                    plan.append((node, nil))
                }
            } else if let url = node.url {
                let normalized = BookmarkURL.normalized(url)
                if urls.contains(normalized) {
                    self.summary.duplicatesSkipped += 1
                } else if let reason = self.invalidReason(node) {
                    self.summary.invalidSkipped += 1
                    if self.summary.errors.count < 20 { self.summary.errors.append("\(node.title.prefix(80)): \(reason)") }
                } else {
                    urls.insert(normalized)
                    plan.append((node, nil))
                }
            }
        }
        let newCount = plan.filter { $0.mergeInto == nil }.count
        let last = try applier.tx.lastSibling(applier.profileId, BookmarkRules.collection, parentId: parentId, excluding: nil)
        var positions = FractionalIndex.sequence(count: newCount, between: last?.position, and: nil).makeIterator()
        for (node, mergeInto) in plan {
            if let mergeInto {
                if depth < SyncEngine.maximumImportDepth { try self.insert(node.children, into: mergeInto, depth: depth + 1) }
                continue
            }
            let id = Identifiers.uuid()
            var data: [String: JSONValue] = [
                "title": .string(String(node.title.prefix(applier.limits.maxTitleLength))), "isFolder": .bool(node.isFolder),
                "url": node.url.map { .string($0) } ?? .null, "tags": .array(Self.cleanTags(node.tags).map { .string($0) }),
                "dateAdded": .number(Double(node.dateAdded ?? applier.now)), "dateModified": .number(Double(node.dateModified ?? node.dateAdded ?? applier.now)),
                "parentId": .string(parentId),
            ]
            if let notes = node.notes, !notes.isEmpty, notes.utf8.count <= BookmarkRules.maximumNotesBytes { data["notes"] = .string(notes) }
            if let icon = node.icon, icon.utf8.count <= applier.limits.maxFaviconBytes,
                icon.hasPrefix("data:image/") || icon.hasPrefix("http://") || icon.hasPrefix("https://")
            {
                data["favicon"] = .string(icon)
            }
            let position = positions.next() ?? FractionalIndex.between(last?.position, nil)
            data["position"] = .string(position)
            var record = StoredRecord(
                profileId: applier.profileId, collection: BookmarkRules.collection, id: id, version: 0, data: data,
                fieldStamps: data.mapValues { _ in self.stamp }, hlc: self.stamp, parentId: parentId, position: position,
                createdAt: applier.now, updatedAt: applier.now, createdSeq: 0
            )
            try applier.commit(&record, isNew: true)
            if node.isFolder {
                self.summary.foldersCreated += 1
                if depth < SyncEngine.maximumImportDepth {
                    try self.insert(node.children, into: id, depth: depth + 1)
                } else if !node.children.isEmpty {
                    let dropped = node.children.reduce(0) { $0 + SyncEngine.nodeCount($1) }
                    self.summary.invalidSkipped += dropped
                    if self.summary.errors.count < 20 {
                        self.summary.errors.append("\(node.title.prefix(80)): \(dropped) items nested deeper than \(SyncEngine.maximumImportDepth) levels")
                    }
                }
            } else {
                self.summary.bookmarksCreated += 1
            }
        }
    }

    /// Trimmed, non-empty, at most 100 tags of at most 100 characters, without repeats.
    static func cleanTags(_ tags: [String]) -> [String] {
        var seen: Set<String> = []
        var clean: [String] = []
        for tag in tags {
            let trimmed = String(tag.trimmingWhitespace().prefix(BookmarkRules.maximumTagLength))
            if !trimmed.isEmpty, seen.insert(trimmed).inserted { clean.append(trimmed) }
            if clean.count == BookmarkRules.maximumTags { break }
        }
        return clean
    }

    func invalidReason(_ node: BookmarkTreeNode) -> String? {
        guard let url = node.url else { return nil }
        do {
            try BookmarkURL.validate(url, maxBytes: self.rules.applier.limits.maxURLBytes)
            return nil
        } catch {
            return error.message
        }
    }
}
