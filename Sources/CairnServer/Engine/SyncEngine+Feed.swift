import CairnCore
import Foundation

/// A page of the change feed a WebSocket connection streams.
public struct FeedPage: Sendable {
    /// Changed records since the cursor, oldest first, as seed 000 events.
    public var events: [SyncEventMessage]
    /// The version of each event's record (for filtering a connection's own changes).
    public var versions: [Int64]
    /// Each event's JSON text, encoded once for every socket that sends it.
    public var texts: [String]
    /// Where the next page starts.
    public var cursor: Int64
    public var hasMore: Bool
    /// The whole page as one `sync_incremental` message, when it has events and fits one message
    /// (what most sockets send after a commit).
    public var message: String?
}

extension SyncEngine {
    /// The records changed after `since` in `collections` (all when `nil`), as events; one
    /// consistent read, so a page never tears.
    public func feed(profileId: String, since: Int64, collections: [String]?, limit: Int) async throws -> FeedPage {
        let limit = max(1, min(limit, 1000))
        let key = FeedCache.Key(profileId: profileId, since: since, collections: collections, limit: limit)
        return try await self.feedCache.page(key) { try await self.readFeed(profileId: profileId, since: since, collections: collections, limit: limit) }
    }

    func readFeed(profileId: String, since: Int64, collections: [String]?, limit: Int) async throws -> FeedPage {
        try await self.store.read { reader in
            let read = try Self.page(reader: reader, profileId: profileId, since: since, collections: collections, limit: limit)
            let (cursor, hasMore) = (read.cursor, read.hasMore)
            let records = read.rows.map(\.record)
            let changes = try Self.changes(records, reader: reader, profileId: profileId, kept: self.keptOrders(read))
            var events: [SyncEventMessage] = []
            events.reserveCapacity(records.count)
            for (record, change) in zip(records, changes) {
                let data: JSONValue
                if record.collection == BookmarkRules.collection {
                    data = change.data
                } else {
                    data = RecordRules.json(record)
                }
                events.append(
                    SyncEventMessage(
                        id: String(record.version), type: record.deleted ? "delete" : (record.createdSeq > since ? "create" : "update"),
                        collection: record.collection, bookmarkId: record.id, data: data, timestamp: record.updatedAt,
                        clientId: record.clientId ?? "server", syncVersion: record.version
                    )
                )
            }
            let texts = events.map(\.jsonValue.jsonText)
            var page = FeedPage(events: events, versions: records.map(\.version), texts: texts, cursor: cursor, hasMore: hasMore)
            if !texts.isEmpty, Session.chunk(texts).count == 1 {
                page.message = Session.message(
                    type: "sync_incremental", listKey: "events", items: texts[...],
                    fields: ["syncVersion": .number(Double(cursor)), "hasMore": .bool(hasMore)]
                )
            }
            return page
        }
    }

    /// The profile's sequence and purge horizon.
    public func horizon(profileId: String) async throws -> (sequence: Int64, purged: Int64) {
        try await self.store.read { reader in
            guard let profile = try reader.profileState(profileId) else { throw CairnError.notFound("Profile") }
            return (profile.seq, profile.purgeSeq)
        }
    }
}
