import CairnCore
import Foundation

/// Turns stored bookmark records into the seed 000 `Bookmark` shape.
enum BookmarkView {
    static func bookmark(_ record: StoredRecord, sortOrder: Int, deduplicated: Bool? = nil) -> Bookmark {
        let data = record.data
        let tags: [String]
        if case .array(let items)? = data["tags"] {
            tags = items.compactMap(\.stringValue)
        } else {
            tags = []
        }
        return Bookmark(
            id: record.id, parentId: record.parentId, title: data["title"]?.stringValue ?? "", url: data["url"]?.stringValue,
            favicon: data["favicon"]?.stringValue, isFolder: data["isFolder"]?.boolValue ?? false, position: record.position ?? "",
            sortOrder: sortOrder, tags: tags, notes: data["notes"]?.stringValue, dateAdded: data["dateAdded"]?.intValue ?? record.createdAt,
            dateModified: data["dateModified"]?.intValue ?? record.updatedAt, syncVersion: record.version, isDeleted: record.deleted,
            deletedAt: record.deletedAt, deduplicated: deduplicated
        )
    }

    static func json(_ bookmark: Bookmark) -> JSONValue {
        bookmark.jsonValue
    }

    /// Bookmarks for many records, with `sortOrder` computed in memory per parent.
    static func bookmarks(_ records: [StoredRecord]) -> [Bookmark] {
        var byParent: [String: [StoredRecord]] = [:]
        for record in records where !record.deleted {
            byParent[record.parentId ?? "", default: []].append(record)
        }
        var order: [String: Int] = [:]
        for (_, siblings) in byParent {
            for (index, record) in siblings.sorted(by: Self.siblingOrder).enumerated() { order[record.id] = index }
        }
        return records.map { self.bookmark($0, sortOrder: order[$0.id] ?? 0) }
    }

    static func siblingOrder(_ lhs: StoredRecord, _ rhs: StoredRecord) -> Bool {
        let left = lhs.position ?? ""
        let right = rhs.position ?? ""
        return left != right ? left < right : lhs.id < rhs.id
    }

    /// Nests a flat list into trees (roots first by position).
    static func tree(_ bookmarks: [Bookmark]) -> [Bookmark] {
        var children: [String: [Bookmark]] = [:]
        let ids = Set(bookmarks.map(\.id))
        var top: [Bookmark] = []
        for bookmark in bookmarks {
            if let parent = bookmark.parentId, ids.contains(parent) {
                children[parent, default: []].append(bookmark)
            } else {
                top.append(bookmark)
            }
        }
        func build(_ node: Bookmark, depth: Int) -> Bookmark {
            var node = node
            if node.isFolder {
                let kids = (children[node.id] ?? []).sorted { ($0.position, $0.id) < ($1.position, $1.id) }
                node.children = depth < BookmarkRules.maximumDepth ? kids.map { build($0, depth: depth + 1) } : []
            }
            return node
        }
        return top.sorted { ($0.position, $0.id) < ($1.position, $1.id) }.map { build($0, depth: 0) }
    }
}
