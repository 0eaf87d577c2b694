import CairnCore
import Foundation

extension SyncEngine {
    // MARK: Roots

    /// Creates the bookmark roots of a profile if they are missing.
    public func prepareBookmarks(profileId: String) async throws {
        let clock = self.clock
        let hlc = self.hlc
        let limits = self.limits
        let changed = try await self.store.write(profileId: profileId) { tx -> Int64? in
            // Timestamps are taken under the write lock, so they follow commit order.
            let now = clock.nowMilliseconds
            guard let profile = try tx.profileState(profileId) else { throw CairnError.notFound("Profile") }
            if try tx.record(profileId, BookmarkRules.collection, "toolbar") != nil { return nil }
            let applier = try BatchApplier(tx: tx, request: PushRequest(profileId: profileId, operations: []), profile: profile, now: now, hlc: hlc, limits: limits)
            try BookmarkRules(applier: applier).ensureRoots()
            try applier.finish()
            return applier.seq
        }
        if let changed { self.notifier.profileChanged(profileId: profileId, sequence: changed, originClientId: nil) }
    }

    // MARK: Reads

    /// Every bookmark of the profile (live only unless asked) and the profile's sequence.
    public func bookmarks(profileId: String, includeDeleted: Bool) async throws -> (bookmarks: [Bookmark], syncVersion: Int64) {
        try await self.prepareBookmarks(profileId: profileId)
        return try await self.store.read { reader in
            guard let profile = try reader.profileState(profileId) else { throw CairnError.notFound("Profile") }
            let records = try reader.allRecords(profileId, BookmarkRules.collection, includeDeleted: includeDeleted)
                .sorted { ($0.parentId ?? "", $0.position ?? "", $0.id) < ($1.parentId ?? "", $1.position ?? "", $1.id) }
            return (BookmarkView.bookmarks(records), profile.seq)
        }
    }

    /// One bookmark (tombstones only when asked).
    public func bookmark(profileId: String, id: String, includeDeleted: Bool = false) async throws -> Bookmark {
        try await self.store.read { reader in
            guard let record = try reader.record(profileId, BookmarkRules.collection, id), includeDeleted || !record.deleted else {
                throw CairnError.notFound("Bookmark")
            }
            let order = try record.siblingKey.map { try reader.siblingIndex(profileId, BookmarkRules.collection, parentId: record.parentId, key: $0) } ?? 0
            return BookmarkView.bookmark(record, sortOrder: record.deleted ? 0 : order)
        }
    }

    /// Full-text search (title, URL, tags, notes), best match first; every word is a prefix term.
    /// The index is first brought up to date with every change committed before the search.
    public func searchBookmarks(profileId: String, query: String, limit: Int, offset: Int) async throws -> (results: [Bookmark], total: Int) {
        guard let match = Self.ftsQuery(query) else { return ([], 0) }
        let limit = max(1, min(limit, 200))
        let offset = max(0, offset)
        try await self.catchUpSearchIndex(profileId: profileId)
        return try await self.store.read { reader in
            let (hits, total) = try reader.searchBookmarks(profileId, match: match, limit: limit, offset: offset)
            let records = try reader.records(profileId, BookmarkRules.collection, ids: hits.map(\.recordId))
            let live = hits.compactMap { records[$0.recordId] }.filter { !$0.deleted }
            let orders = try Self.sortOrders(for: live, reader: reader, profileId: profileId)
            return (live.map { BookmarkView.bookmark($0, sortOrder: orders[$0.id] ?? 0) }, total)
        }
    }

    /// Brings the bookmark search index up to date with the profile's changes, like a CouchDB
    /// view: writes leave the index alone (it was a tenth of a push's work), and the first search
    /// after them indexes the bookmarks changed since the last one. Each transaction indexes at
    /// most `chunk` bookmarks, so a large catch-up (after an import) never holds the write lock
    /// for long.
    func catchUpSearchIndex(profileId: String, chunk: Int = 2_000) async throws {
        // Only a bookmark changed since the index's sequence takes the write lock: changes to
        // other collections leave the index as it is.
        let behind = try await self.store.read { reader in
            guard let state = try reader.searchIndexState(profileId) else { throw CairnError.notFound("Profile") }
            guard state.indexed < state.seq else { return false }
            return try !reader.changedRecords(profileId, since: state.indexed, collections: [BookmarkRules.collection], limit: 1).isEmpty
        }
        guard behind else { return }
        var done = false
        while !done {
            done = try await self.store.write(profileId: profileId) { tx in
                guard let state = try tx.searchIndexState(profileId) else { throw CairnError.notFound("Profile") }
                guard state.indexed < state.seq else { return true }
                let records = try tx.changedRecords(profileId, since: state.indexed, collections: [BookmarkRules.collection], limit: chunk)
                for record in records {
                    try tx.indexBookmark(
                        profileId, id: record.id, fields: record.deleted ? nil : BookmarkRules.searchFields(record),
                        isNew: record.createdSeq > state.indexed)
                }
                // Fewer than a chunk: every bookmark change up to the profile's sequence is in.
                let finished = records.count < chunk
                try tx.setSearchSequence(profileId, finished ? state.seq : records.last?.version ?? state.seq)
                return finished
            }
        }
    }

    /// The FTS5 query for free text: each word quoted (no operator injection) as a prefix term.
    static func ftsQuery(_ text: String) -> String? {
        let words = text.split(whereSeparator: { $0.isWhitespace }).prefix(16).map { word in
            String(word.filter { $0 != "\"" && !$0.isNewline })
        }.filter { !$0.isEmpty && $0.count <= 100 }
        guard !words.isEmpty else { return nil }
        return words.map { "\"\($0)\"*" }.joined(separator: " AND ")
    }

    /// Groups of live bookmarks sharing a normalised URL across folders (suggestions only).
    public func duplicateBookmarks(profileId: String) async throws -> [[Bookmark]] {
        try await self.store.read { reader in
            let records = try reader.allRecords(profileId, BookmarkRules.collection, includeDeleted: false)
            let bookmarks = BookmarkView.bookmarks(records)
            var groups: [String: [Bookmark]] = [:]
            for bookmark in bookmarks where !bookmark.isFolder {
                if let url = bookmark.url { groups[BookmarkURL.normalized(url), default: []].append(bookmark) }
            }
            return groups.values.filter { $0.count > 1 }
                .map { $0.sorted { $0.dateAdded < $1.dateAdded } }
                .sorted { ($0.first?.url ?? "") < ($1.first?.url ?? "") }
        }
    }

    // MARK: Seed 000 batch sync

    /// The records changed after `since` and up to `upTo` (another client's changes, not this push's own).
    public func changesBetween(profileId: String, since: Int64, upTo: Int64, collections: [String]? = ["bookmarks"], limit: Int) async throws -> (changes: [(record: RecordChange, clientId: String?, createdSeq: Int64)], hasMore: Bool) {
        try await self.store.read { reader in
            guard let profile = try reader.profileState(profileId) else { throw CairnError.notFound("Profile") }
            try Self.checkCursor(since, profile: profile)
            var records = try reader.changedRecords(profileId, since: since, collections: collections, limit: limit + 1)
                .filter { $0.version <= upTo }
            let hasMore = records.count > limit
            if hasMore { records = Array(records.prefix(limit)) }
            let changes = try Self.changes(records, reader: reader, profileId: profileId)
            return (zip(records, changes).map { record, change in (change, record.clientId, record.createdSeq) }, hasMore)
        }
    }
}
