import CairnCore
import Foundation
import Logging

/// The rules of sync, over any `SyncStore`. Every surface (REST, seed adapters, WebSocket) calls
/// these methods; none holds sync logic of its own.
///
/// ```swift
/// let outcome = try await engine.push(PushRequest(profileId: profile.id, operations: [op]))
/// ```
public struct SyncEngine: Sendable {
    let store: any SyncStore
    let clock: ServerClock
    let hlc: ServerHLC
    let limits: Limits
    let notifier: any ChangeNotifier
    let logger: Logger
    /// Feed pages shared among the sockets of a profile.
    let feedCache: FeedCache

    init(store: any SyncStore, clock: ServerClock, limits: Limits, notifier: any ChangeNotifier, logger: Logger, maxClockDrift: Int64 = 60_000) {
        self.store = store
        self.clock = clock
        self.hlc = ServerHLC(clock: clock, maxDrift: maxClockDrift)
        self.limits = limits
        let feedCache = FeedCache()
        self.feedCache = feedCache
        self.notifier = FeedCachingNotifier(cache: feedCache, next: notifier)
        self.logger = logger
    }

    // MARK: Push

    /// Applies a batch in one transaction; returns after the commit is durable.
    public func push(_ request: PushRequest) async throws -> PushOutcome {
        guard request.operations.count <= self.limits.maxOpsPerPush else {
            throw CairnError(.payloadTooLarge, "At most \(self.limits.maxOpsPerPush) operations per push", field: "operations")
        }
        return try await self.pushUnbounded(request)
    }

    /// `push` without the per-push op limit (server-side batches such as a full replace; the
    /// body limit still bounds them).
    func pushUnbounded(_ request: PushRequest) async throws -> PushOutcome {
        let clock = self.clock
        let hlc = self.hlc
        let limits = self.limits
        let outcome: PushOutcome
        do {
            outcome = try await self.store.write(profileId: request.profileId) { tx in
                // Timestamps are taken under the write lock, so they follow commit order.
                let now = clock.nowMilliseconds
                guard let profile = try tx.profileState(request.profileId) else { throw CairnError.notFound("Profile") }
                if let cursor = request.cursor { try Self.checkCursor(cursor, profile: profile) }
                let applier = try BatchApplier(tx: tx, request: request, profile: profile, now: now, hlc: hlc, limits: limits)
                if request.requireLiveRecords {
                    // Through the applier, whose cache then serves the op's own read of the record.
                    for op in request.operations {
                        guard let id = op.id, let record = try applier.record(op.collection, id), !record.deleted else {
                            throw CairnError(.conflict, "If-Match names a version, but the record does not exist", details: ["current": .null])
                        }
                    }
                }
                var results: [OperationResult] = []
                results.reserveCapacity(request.operations.count)
                for op in request.operations {
                    let result = try applier.apply(op)
                    results.append(result)
                    if request.atomic, result.status == .rejected || result.status == .conflict {
                        throw AtomicBatchAborted(results: results, sequence: profile.seq)
                    }
                }
                try tx.setSequence(request.profileId, applier.seq)
                var outcome = PushOutcome(results: results, committed: true, previousSequence: profile.seq, sequence: applier.seq, touched: applier.touched)
                if request.returnRecords {
                    for result in results {
                        guard let id = result.id, let record = try applier.record(result.collection, id) else { continue }
                        outcome.records[RecordKey(collection: result.collection, id: id)] = record
                    }
                }
                return outcome
            }
        } catch let aborted as AtomicBatchAborted {
            var results = aborted.results
            let failed = results.count - 1
            for index in 0..<failed where results[index].status != .rejected && results[index].status != .duplicate {
                results[index] = OperationResult(
                    opId: results[index].opId, status: .rejected, collection: results[index].collection, id: results[index].id,
                    error: OperationError(code: CairnError.Code.syncFailed.rawValue, message: "Not applied: the atomic batch was rolled back")
                )
            }
            for op in request.operations.dropFirst(results.count) {
                results.append(
                    OperationResult(
                        opId: op.opId, status: .rejected, collection: op.collection, id: op.id,
                        error: OperationError(code: CairnError.Code.syncFailed.rawValue, message: "Not applied: the atomic batch was rolled back")
                    )
                )
            }
            return PushOutcome(results: results, committed: false, previousSequence: aborted.sequence, sequence: aborted.sequence)
        }
        if outcome.sequence > outcome.previousSequence {
            self.notifier.profileChanged(profileId: request.profileId, sequence: outcome.sequence, originClientId: request.clientId)
        }
        return outcome
    }

    /// The current state of specific records, as pull entries (bookmarks in the seed 000 shape).
    public func currentChanges(profileId: String, keys: [RecordKey]) async throws -> [RecordChange] {
        guard !keys.isEmpty else { return [] }
        return try await self.store.read { reader in
            var records: [StoredRecord] = []
            for (collection, group) in Dictionary(grouping: keys, by: \.collection) {
                records += try reader.records(profileId, collection, ids: group.map(\.id)).values
            }
            records.sort { $0.version < $1.version }
            return try Self.changes(records, reader: reader, profileId: profileId)
        }
    }

    /// Pushes one op and returns its result (REST routes).
    public func pushOne(_ op: SyncOperation, profileId: String, clientId: String?, strictVersion: Bool = false, deduplicate: Bool = false) async throws -> (OperationResult, Int64) {
        let (result, sequence, _) = try await self.pushOneReturningRecord(op, profileId: profileId, clientId: clientId, strictVersion: strictVersion, deduplicate: deduplicate)
        return (result, sequence)
    }

    /// `pushOne`, also returning the op's record as it stands after the push (`nil` when there is none).
    public func pushOneReturningRecord(
        _ op: SyncOperation, profileId: String, clientId: String?, strictVersion: Bool = false, deduplicate: Bool = false, requireLive: Bool = false
    ) async throws -> (OperationResult, Int64, StoredRecord?) {
        var request = PushRequest(profileId: profileId, clientId: clientId, operations: [op], strictVersion: strictVersion, deduplicateCreates: deduplicate)
        request.returnRecords = true
        request.requireLiveRecords = requireLive
        let outcome = try await self.push(request)
        guard let result = outcome.results.first else { throw CairnError(.internalError, "No result") }
        let record = result.id.flatMap { outcome.records[RecordKey(collection: result.collection, id: $0)] }
        return (result, outcome.sequence, record)
    }

    // MARK: Pull

    /// Changed records since `since`, oldest first, at most `limit` (except that a page from
    /// behind the purge horizon, a resync from 0, reaches the horizon); `410 RESYNC_REQUIRED` when
    /// `since` is behind the purge horizon or ahead of the profile.
    public func pull(profileId: String, since: Int64, collections: [String]?, limit: Int) async throws -> PullResponse {
        let limit = max(1, min(limit, 5000))
        return try await self.store.read { reader in
            let page = try Self.page(reader: reader, profileId: profileId, since: since, collections: collections, limit: limit)
            return PullResponse(changes: page.changes, cursor: page.cursor, hasMore: page.hasMore)
        }
    }

    /// One page of changed records after `since`, read in one snapshot: the records, their pull
    /// entries, where the next page starts and whether there is one.
    static func page(
        reader: any SyncReader, profileId: String, since: Int64, collections: [String]?, limit: Int
    ) throws -> (records: [StoredRecord], changes: [RecordChange], cursor: Int64, hasMore: Bool) {
        guard let profile = try reader.profileState(profileId) else { throw CairnError.notFound("Profile") }
        try Self.checkCursor(since, profile: profile)
        var records = try reader.changedRecords(profileId, since: since, collections: collections, limit: limit + 1, withStamps: false)
        var hasMore = records.count > limit
        if hasMore { records.removeLast() }
        var cursor = hasMore ? (records.last?.version ?? since) : max(since, profile.seq)
        if hasMore, cursor < profile.purgeSeq {
            // A page of a pull from 0 that ended behind the purge horizon would hand out a cursor
            // the next pull refuses (410), and the resync could never finish. It goes on to the
            // horizon instead: every record up to it, and the horizon as its cursor.
            let chunk = max(limit, 500)
            while true {
                let more = try reader.changedRecords(profileId, since: records.last?.version ?? since, collections: collections, limit: chunk, withStamps: false)
                let below = more.prefix { $0.version <= profile.purgeSeq }
                records += below
                if below.count < more.count || more.count < chunk {
                    hasMore = below.count < more.count
                    break
                }
            }
            cursor = hasMore ? profile.purgeSeq : max(since, profile.seq)
        }
        let changes = try Self.changes(records, reader: reader, profileId: profileId)
        return (records, changes, cursor, hasMore)
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
    static func changes(_ records: [StoredRecord], reader: any SyncReader, profileId: String) throws -> [RecordChange] {
        let sortOrders = try Self.sortOrders(for: records.filter { $0.collection == BookmarkRules.collection && !$0.deleted }, reader: reader, profileId: profileId)
        return records.map { record in
            let data: JSONValue =
                record.collection == BookmarkRules.collection
                ? BookmarkView.json(BookmarkView.bookmark(record, sortOrder: sortOrders[record.id] ?? 0)) : .object(record.data)
            return RecordChange(
                collection: record.collection, id: record.id, version: record.version, deleted: record.deleted, deletedAt: record.deletedAt,
                createdAt: record.createdAt, updatedAt: record.updatedAt, data: data
            )
        }
    }

    /// `sortOrder` of live bookmarks: one sibling query per busy parent, a count per lone one, so
    /// the cost follows the changes, not the size of the tree.
    static func sortOrders(for records: [StoredRecord], reader: any SyncReader, profileId: String) throws -> [String: Int] {
        var byParent: [String?: [StoredRecord]] = [:]
        for record in records { byParent[record.parentId, default: []].append(record) }
        var orders: [String: Int] = [:]
        for (parent, group) in byParent {
            if group.count > 16 {
                // One walk of the folder's index entries (ids only, no rows built).
                let siblings = try reader.siblingIds(profileId, BookmarkRules.collection, parentId: parent)
                orders.reserveCapacity(orders.count + siblings.count)
                for (index, id) in siblings.enumerated() { orders[id] = index }
            } else {
                for record in group {
                    if let key = record.siblingKey {
                        orders[record.id] = try reader.siblingIndex(profileId, BookmarkRules.collection, parentId: parent, key: key)
                    }
                }
            }
        }
        return orders
    }

    // MARK: Reads

    /// The profile's current sequence.
    public func sequence(profileId: String) async throws -> Int64 {
        try await self.store.read { reader in
            guard let profile = try reader.profileState(profileId) else { throw CairnError.notFound("Profile") }
            return profile.seq
        }
    }

    /// Purges tombstones older than `retention` seconds in every profile; returns how many.
    /// Cursors older than a purged tombstone then get `410 RESYNC_REQUIRED`, never a partial diff.
    @discardableResult
    public func purgeTombstones(olderThan retention: TimeInterval) async throws -> Int {
        let cutoff = self.clock.nowMilliseconds - Int64(retention * 1000)
        var total = 0
        for profileId in try await self.store.profileIds() {
            total += try await self.store.write(profileId: profileId) { tx in try tx.purgeTombstones(profileId, deletedBefore: cutoff) }
        }
        if total > 0 { self.logger.info("Purged tombstones", metadata: ["count": "\(total)"]) }
        return total
    }

    /// The logged conflicts of a profile (open ones unless `includeResolved`).
    public func conflicts(profileId: String, includeResolved: Bool, limit: Int) async throws -> [StoredConflict] {
        try await self.store.read { reader in try reader.conflicts(profileId, includeResolved: includeResolved, limit: max(1, min(limit, 1000))) }
    }
}
