import CairnCore
import Foundation

extension SyncEngine {
    /// Changed records since `since`, oldest first, at most `limit` (except that a page from
    /// behind the purge horizon, a resync from 0, reaches the horizon); `410 RESYNC_REQUIRED` when
    /// `since` is behind the purge horizon or ahead of the profile.
    public func pull(profileId: String, since: Int64, collections: [String]?, limit: Int) async throws -> PullResponse {
        let limit = max(1, min(limit, 5000))
        return try await self.store.read { reader in
            let page = try Self.page(reader: reader, profileId: profileId, since: since, collections: collections, limit: limit)
            let changes = try Self.changes(page.rows.map(\.record), reader: reader, profileId: profileId, kept: self.keptOrders(page))
            return PullResponse(changes: changes, cursor: page.cursor, hasMore: page.hasMore)
        }
    }

    /// The same page as `pull`, written as its JSON answer (the `PullResponse` shape) straight
    /// from the rows: each record's stored data text is copied into the answer, not parsed and
    /// written again (a full pull spent half its time doing that). Also returns the cursor.
    public func pullJSON(profileId: String, since: Int64, collections: [String]?, limit: Int) async throws -> (json: [UInt8], cursor: Int64) {
        let limit = max(1, min(limit, 5000))
        return try await self.store.read { reader in
            let page = try Self.page(reader: reader, profileId: profileId, since: since, collections: collections, limit: limit)
            let orders = try Self.sortOrders(
                for: page.rows.lazy.filter { $0.collection == BookmarkRules.collection && !$0.deleted }, reader: reader, profileId: profileId,
                kept: self.keptOrders(page))
            var bytes: [UInt8] = []
            bytes.reserveCapacity(64 + page.rows.reduce(0) { $0 + $1.dataText.utf8.count + 320 })
            PullResponse.writeJSON(cursor: page.cursor, hasMore: page.hasMore, to: &bytes) { bytes in
                for (index, row) in page.rows.enumerated() {
                    if index > 0 { bytes.append(UInt8(ascii: ",")) }
                    Self.writeChange(row, sortOrder: orders[row.id] ?? 0, to: &bytes)
                }
            }
            return (bytes, page.cursor)
        }
    }

    /// One page of changed records after `since`, read in one snapshot: the rows, where the next
    /// page starts, whether there is one, and the profile's sequence in that snapshot.
    static func page(
        reader: any SyncReader, profileId: String, since: Int64, collections: [String]?, limit: Int
    ) throws -> (rows: [ChangedRow], cursor: Int64, hasMore: Bool, sequence: Int64) {
        guard let profile = try reader.profileState(profileId) else { throw CairnError.notFound("Profile") }
        try Self.checkCursor(since, profile: profile)
        var rows = try reader.changedRows(profileId, since: since, collections: collections, limit: limit + 1)
        var hasMore = rows.count > limit
        if hasMore { rows.removeLast() }
        var cursor = hasMore ? (rows.last?.version ?? since) : max(since, profile.seq)
        if hasMore, cursor < profile.purgeSeq {
            // A page of a pull from 0 that ended behind the purge horizon would hand out a cursor
            // the next pull refuses (410), and the resync could never finish. It goes on to the
            // horizon instead: every record up to it, and the horizon as its cursor.
            let chunk = max(limit, 500)
            while true {
                let more = try reader.changedRows(profileId, since: rows.last?.version ?? since, collections: collections, limit: chunk)
                let below = more.prefix { $0.version <= profile.purgeSeq }
                rows += below
                if below.count < more.count || more.count < chunk {
                    hasMore = below.count < more.count
                    break
                }
            }
            cursor = hasMore ? profile.purgeSeq : max(since, profile.seq)
        }
        return (rows, cursor, hasMore, profile.seq)
    }

    /// Where the sort orders of a page's busy folders are found, and kept for the next page when
    /// there is one.
    func keptOrders(_ page: (rows: [ChangedRow], cursor: Int64, hasMore: Bool, sequence: Int64)) -> KeptOrders {
        KeptOrders(cache: self.siblingOrders, sequence: page.sequence, keep: page.hasMore)
    }

    static func checkCursor(_ since: Int64, profile: StoredProfile) throws {
        guard since >= 0 else { throw CairnError(.validation, "since must not be negative", field: "since") }
        if since > profile.seq {
            throw CairnError(.resyncRequired, "The cursor is ahead of this profile; resync from 0", details: ["syncVersion": .number(Double(profile.seq))])
        }
        if since > 0, since < profile.purgeSeq {
            throw CairnError(.resyncRequired, "Changes before \(profile.purgeSeq) were purged; resync from 0", details: ["syncVersion": .number(Double(profile.seq))])
        }
    }

    /// Pull entries for records; bookmarks carry the seed 000 shape with `sortOrder`.
    static func changes(_ records: [StoredRecord], reader: any SyncReader, profileId: String, kept: KeptOrders? = nil) throws -> [RecordChange] {
        let sortOrders = try Self.sortOrders(
            for: records.filter { $0.collection == BookmarkRules.collection && !$0.deleted }, reader: reader, profileId: profileId, kept: kept)
        return records.map { Self.change($0, sortOrder: sortOrders[$0.id] ?? 0) }
    }

    /// The pull entry of one record.
    static func change(_ record: StoredRecord, sortOrder: Int) -> RecordChange {
        let data: JSONValue =
            record.collection == BookmarkRules.collection
            ? BookmarkView.json(BookmarkView.bookmark(record, sortOrder: sortOrder)) : .object(record.data)
        return RecordChange(
            collection: record.collection, id: record.id, version: record.version, deleted: record.deleted, deletedAt: record.deletedAt,
            createdAt: record.createdAt, updatedAt: record.updatedAt, data: data
        )
    }

    /// The JSON of `change(row.record, sortOrder:)`, written from the row's stored data text.
    static func writeChange(_ row: ChangedRow, sortOrder: Int, to bytes: inout [UInt8]) {
        RecordChange.writeJSON(
            collection: row.collection, id: row.id, version: row.version, deleted: row.deleted, createdAt: row.createdAt,
            updatedAt: row.updatedAt, deletedAt: row.deletedAt, to: &bytes
        ) { bytes in
            if row.collection == BookmarkRules.collection {
                BookmarkView.writeJSON(row, sortOrder: sortOrder, to: &bytes)
            } else {
                Self.writeObject(row.dataText, to: &bytes)
            }
        }
    }

    /// Stored object text as it is (the store writes it from a dictionary, so it repeats no
    /// key); text that is not one valid JSON object is written as `parseObject` reads it (`{}`),
    /// as the parsed path does.
    static func writeObject(_ text: String, to bytes: inout [UInt8]) {
        var text = text
        let copied = text.withUTF8 { utf8 in
            guard JSONMembers.scan(utf8, { _, _ in }) else { return false }
            bytes.append(contentsOf: utf8)
            return true
        }
        if !copied { JSONValue.object((try? JSONValue.parseObject(text)) ?? [:]).writeJSON(to: &bytes) }
    }

    /// `sortOrder` of live bookmarks: one sibling walk per busy parent, a count per lone one, so
    /// the cost follows the changes, not the size of the tree. With `kept`, a parent's order read
    /// at the same sequence by an earlier page is used instead of a walk or counts, and a walk's
    /// order is kept when another page follows.
    static func sortOrders<Records: Sequence>(
        for records: Records, reader: any SyncReader, profileId: String, kept: KeptOrders? = nil
    ) throws -> [String: Int] where Records.Element: SiblingPlaced {
        var byParent: [String?: [(id: String, key: SiblingKey?)]] = [:]
        for record in records { byParent[record.parentId, default: []].append((record.id, record.siblingKey)) }
        var orders: [String: Int] = [:]
        for (parent, group) in byParent {
            orders.reserveCapacity(orders.count + group.count)
            if let kept, let order = kept.cache.order(profileId: profileId, parentId: parent, sequence: kept.sequence) {
                for (id, _) in group { orders[id] = order[id] }
            } else if group.count > 16 {
                // One walk of the folder's index entries (ids only, no rows built); the ids of
                // this page get their index, and the whole order is kept when a page follows
                // and the cache can hold it.
                let ids = try reader.siblingIds(profileId, BookmarkRules.collection, parentId: parent)
                let keep = kept.map { $0.keep && ids.count <= $0.cache.capacity } ?? false
                let wanted = Set(group.lazy.map(\.id))
                var all: [String: Int] = [:]
                for (index, id) in ids.enumerated() {
                    if keep { all[id] = index }
                    if wanted.contains(id) { orders[id] = index }
                }
                if keep, let kept { kept.cache.keep(all, profileId: profileId, parentId: parent, sequence: kept.sequence) }
            } else {
                for (id, key) in group {
                    if let key { orders[id] = try reader.siblingIndex(profileId, BookmarkRules.collection, parentId: parent, key: key) }
                }
            }
        }
        return orders
    }
}

/// Sibling orders shared between the pages of a pull (`SiblingOrderCache`): the sequence this
/// page was read at, and whether a new order is worth keeping (another page follows).
struct KeptOrders {
    var cache: SiblingOrderCache
    var sequence: Int64
    var keep: Bool
}

/// A bookmark's place among its siblings, for `sortOrder`.
protocol SiblingPlaced {
    var id: String { get }
    var parentId: String? { get }
    var siblingKey: SiblingKey? { get }
}

extension StoredRecord: SiblingPlaced {}

extension ChangedRow: SiblingPlaced {
    var siblingKey: SiblingKey? {
        self.position.map { SiblingKey(id: self.id, position: $0) }
    }
}
