import CairnCore
import Foundation

extension SyncEngine {
    // MARK: Profiles

    /// Tombstones every record of a profile and then removes the profile: from then on it
    /// answers 404 everywhere, like a profile that never existed, and its devices drop it.
    public func deleteProfile(profileId: String, clientId: String?) async throws {
        let clock = self.clock
        let hlc = self.hlc
        let limits = self.limits
        let sequence = try await self.store.write(profileId: profileId) { tx -> Int64 in
            // Timestamps are taken under the write lock, so they follow commit order.
            let now = clock.nowMilliseconds
            guard let profile = try tx.profileState(profileId) else { throw CairnError.notFound("Profile") }
            let applier = try BatchApplier(
                tx: tx, request: PushRequest(profileId: profileId, clientId: clientId, operations: []), profile: profile, now: now, hlc: hlc, limits: limits
            )
            let stamp = hlc.now()
            for var record in try tx.changedRecords(profileId, since: 0, collections: nil, limit: Int.max) where !record.deleted {
                record.deleted = true
                record.deletedAt = now
                record.fieldStamps["_deleted"] = stamp
                try applier.commit(&record, isNew: false)
            }
            try applier.finish()
            try tx.dropSearchIndex(profileId)
            try tx.markProfileDeleted(profileId, at: now)
            return applier.seq
        }
        self.profileRoots.forget(profileId)
        self.notifier.profileChanged(profileId: profileId, sequence: sequence, originClientId: clientId)
    }

    // MARK: Replace-all (seed 001 full sync)

    /// Replaces the whole content of the named collections in one transaction: every given
    /// record is written as sent (client wins), every live record not given is tombstoned.
    public func replaceCollections(profileId: String, clientId: String?, contents: [String: [[String: JSONValue]]]) async throws -> PushOutcome {
        var operations: [SyncOperation] = []
        let batch = Identifiers.uuid()
        var sequenceNumber = 0
        var given: [String: Set<String>] = [:]
        for (collection, records) in contents.sorted(by: { $0.key < $1.key }) {
            guard RecordRules.isValidCollection(collection), collection != BookmarkRules.collection else {
                throw CairnError(.validation, "\(collection) cannot be replaced here", field: collection)
            }
            for record in records {
                let id = record["id"]?.stringValue ?? Identifiers.uuid()
                guard RecordRules.isValidId(id) else { throw CairnError(.validation, "Invalid id in \(collection)", field: "\(collection).id") }
                given[collection, default: []].insert(id)
                sequenceNumber += 1
                operations.append(
                    SyncOperation(opId: "full-\(batch)-\(sequenceNumber)", type: .upsert, collection: collection, id: id, data: .object(record.filter { $0.key != "id" }))
                )
            }
        }
        let existing = try await self.store.read { reader in
            try contents.keys.map { collection in
                (collection, try reader.allRecords(profileId, collection, includeDeleted: false).map(\.id))
            }
        }
        for (collection, ids) in existing {
            for id in ids where !(given[collection]?.contains(id) ?? false) {
                sequenceNumber += 1
                operations.append(SyncOperation(opId: "full-\(batch)-\(sequenceNumber)", type: .delete, collection: collection, id: id))
            }
        }
        let outcome = try await self.pushUnbounded(
            PushRequest(profileId: profileId, clientId: clientId, operations: operations, atomic: true, strategy: .clientWins, mintedOpIds: true)
        )
        guard outcome.committed else {
            let failure = outcome.results.first { $0.error?.code != CairnError.Code.syncFailed.rawValue && $0.status == .rejected }
            throw CairnError(.validation, failure?.error?.message ?? "The full sync was rejected", field: failure?.error?.field)
        }
        return outcome
    }

    // MARK: Timestamp pulls (seeds 001, 002, 004)

    /// Records of `collections` updated at or after `since` (ms), oldest update first, and the
    /// newest update time in those collections at the same instant: the `since` to use next.
    /// (Timestamps are taken under the write lock, so a later commit never carries an earlier
    /// time; asking again from that newest time, inclusive, misses nothing.)
    public func recordsUpdated(profileId: String, collections: [String], since: Int64, limit: Int) async throws -> (records: [StoredRecord], next: Int64) {
        let limit = max(1, min(limit, 10_000))
        return try await self.store.read { reader in
            var records = try reader.recordsUpdated(profileId, collections: collections, since: since, limit: limit)
            let newest = try reader.newestUpdate(profileId, collections: collections) ?? since
            guard records.count >= limit, let boundary = records.last?.updatedAt else { return (records, max(since, newest)) }
            // A full page: take every record of the boundary millisecond too, and continue after
            // it, so a page can never repeat forever (a batch stamps all its records alike).
            let atBoundary = try reader.recordsUpdated(profileId, collections: collections, since: boundary, limit: Int.max)
                .filter { $0.updatedAt == boundary }
            let seen = Set(records.map { RecordKey(collection: $0.collection, id: $0.id) })
            records += atBoundary.filter { !seen.contains(RecordKey(collection: $0.collection, id: $0.id)) }
            return (records, boundary + 1)
        }
    }

    /// Every record of a collection (live only unless asked).
    public func records(profileId: String, collection: String, includeDeleted: Bool) async throws -> [StoredRecord] {
        try await self.store.read { reader in try reader.allRecords(profileId, collection, includeDeleted: includeDeleted) }
    }

    /// When the profile last changed (ms), if ever.
    public func lastChangeTime(profileId: String) async throws -> Int64? {
        try await self.store.read { reader in
            guard let profile = try reader.profileState(profileId), profile.seq > 0 else { return nil }
            return try reader.changeTime(profileId, version: profile.seq)
        }
    }

    /// One record (tombstones included).
    public func record(profileId: String, collection: String, id: String) async throws -> StoredRecord? {
        try await self.store.read { reader in try reader.record(profileId, collection, id) }
    }
}
