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

extension BookmarkView {
    /// Writes `json(bookmark(row.record, sortOrder:))` from the row's stored data text: the
    /// values of `title`, `url`, `favicon`, `notes`, `tags` and the dates are copied as they are
    /// when they have the type the shape wants (as the stored text of a JSON writer does), and
    /// read as `bookmark(_:sortOrder:)` reads them otherwise. Text that is not one object goes
    /// the parsed way whole.
    static func writeJSON(_ row: ChangedRow, sortOrder: Int, to bytes: inout [UInt8]) {
        var text = row.dataText
        let written = text.withUTF8 { data -> Bool in
            var fields = StoredFields()
            guard JSONMembers.scan(data, { key, value in fields.note(key, value, in: data) }), !fields.escapedKey else { return false }
            Self.write(row, data, fields, sortOrder: sortOrder, to: &bytes)
            return true
        }
        if !written {
            Self.json(Self.bookmark(row.record, sortOrder: sortOrder)).writeJSON(to: &bytes)
        }
    }

    /// Where the values the seed 000 shape takes from a bookmark's data sit in its stored text.
    private struct StoredFields {
        var title: Range<Int>?
        var url: Range<Int>?
        var favicon: Range<Int>?
        var isFolder: Range<Int>?
        var tags: Range<Int>?
        var notes: Range<Int>?
        var dateAdded: Range<Int>?
        var dateModified: Range<Int>?
        /// A key written with an escape could still name one of the fields: the text is then
        /// read the parsed way.
        var escapedKey = false

        mutating func note(_ key: Range<Int>, _ value: Range<Int>, in data: UnsafeBufferPointer<UInt8>) {
            if data[key].contains(UInt8(ascii: "\\")) {
                self.escapedKey = true
            } else if JSONMembers.equals(data, key, "title") {
                self.title = value
            } else if JSONMembers.equals(data, key, "url") {
                self.url = value
            } else if JSONMembers.equals(data, key, "favicon") {
                self.favicon = value
            } else if JSONMembers.equals(data, key, "isFolder") {
                self.isFolder = value
            } else if JSONMembers.equals(data, key, "tags") {
                self.tags = value
            } else if JSONMembers.equals(data, key, "notes") {
                self.notes = value
            } else if JSONMembers.equals(data, key, "dateAdded") {
                self.dateAdded = value
            } else if JSONMembers.equals(data, key, "dateModified") {
                self.dateModified = value
            }
        }
    }

    /// The object `Bookmark.jsonValue` holds for the row, in `Bookmark.encode(to:)`'s order.
    private static func write(_ row: ChangedRow, _ data: UnsafeBufferPointer<UInt8>, _ fields: StoredFields, sortOrder: Int, to bytes: inout [UInt8]) {
        /// A string value as stored, else `fallback` (`stringValue ?? fallback`).
        func string(_ range: Range<Int>?, else fallback: StaticString) {
            if let range, data[range.lowerBound] == UInt8(ascii: "\"") {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: data[range]))
            } else {
                bytes.append(contentsOf: UnsafeBufferPointer(start: fallback.utf8Start, count: fallback.utf8CodeUnitCount))
            }
        }
        /// An integer value as stored, else `intValue` of the parsed value, else `fallback`.
        func integer(_ range: Range<Int>?, else fallback: Int64) {
            guard let range else { return JSONWriter.writeInteger(fallback, to: &bytes) }
            if JSONMembers.isPlainInteger(data, range) {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: data[range]))
            } else {
                JSONWriter.writeInteger((try? JSONValue.parse(bytes: UnsafeBufferPointer(rebasing: data[range])))?.intValue ?? fallback, to: &bytes)
            }
        }
        bytes.append(contentsOf: #"{"id":"#.utf8)
        JSONWriter.writeString(row.id, to: &bytes)
        bytes.append(contentsOf: #","parentId":"#.utf8)
        if let parentId = row.parentId { JSONWriter.writeString(parentId, to: &bytes) } else { bytes.append(contentsOf: "null".utf8) }
        bytes.append(contentsOf: #","title":"#.utf8)
        string(fields.title, else: #""""#)
        bytes.append(contentsOf: #","url":"#.utf8)
        string(fields.url, else: "null")
        bytes.append(contentsOf: #","favicon":"#.utf8)
        string(fields.favicon, else: "null")
        bytes.append(contentsOf: #","isFolder":"#.utf8)
        bytes.append(contentsOf: fields.isFolder.map { JSONMembers.equals(data, $0, "true") } == true ? "true".utf8 : "false".utf8)
        bytes.append(contentsOf: #","position":"#.utf8)
        JSONWriter.writeString(row.position ?? "", to: &bytes)
        bytes.append(contentsOf: #","sortOrder":"#.utf8)
        JSONWriter.writeInteger(Int64(sortOrder), to: &bytes)
        bytes.append(contentsOf: #","tags":"#.utf8)
        if let tags = fields.tags, JSONMembers.isStringArray(data, tags) {
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: data[tags]))
        } else if let tags = fields.tags, case .array(let items)? = try? JSONValue.parse(bytes: UnsafeBufferPointer(rebasing: data[tags])) {
            JSONValue.array(items.filter { $0.stringValue != nil }).writeJSON(to: &bytes)
        } else {
            bytes.append(contentsOf: "[]".utf8)
        }
        bytes.append(contentsOf: #","notes":"#.utf8)
        string(fields.notes, else: "null")
        bytes.append(contentsOf: #","dateAdded":"#.utf8)
        integer(fields.dateAdded, else: row.createdAt)
        bytes.append(contentsOf: #","dateModified":"#.utf8)
        integer(fields.dateModified, else: row.updatedAt)
        bytes.append(contentsOf: #","syncVersion":"#.utf8)
        JSONWriter.writeInteger(row.version, to: &bytes)
        bytes.append(contentsOf: row.deleted ? #","isDeleted":true"#.utf8 : #","isDeleted":false"#.utf8)
        bytes.append(contentsOf: #","deletedAt":"#.utf8)
        if let deletedAt = row.deletedAt { JSONWriter.writeInteger(deletedAt, to: &bytes) } else { bytes.append(contentsOf: "null".utf8) }
        bytes.append(UInt8(ascii: "}"))
    }
}
