import CairnCore
import Foundation
import Logging
import Synchronization

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
    /// Busy folders' sibling order, kept between the pages of a pull.
    let siblingOrders = SiblingOrderCache()
    /// The profiles whose bookmark roots are committed: a push does not read them again.
    let profileRoots = ProfileRoots()
    /// Whether a push of creates (`createsOnly`) first runs taking its ids for new: without the
    /// two reads of which op ids are stored and which named records exist (about 0.2 ms of the
    /// writer's time for 100 ops, done before the first insert can start). The store refuses a
    /// record or op result inserted as new whose key is taken, and an op that is not applied
    /// stops the attempt, so the attempt commits only when the reads would have found nothing:
    /// it is then the same transaction, and otherwise it is rolled back and the push runs again
    /// with the reads (a device resending a push whose answer it lost, a create of a known id).
    /// Off only in tests that compare the two.
    var assumesNewIds = true
    /// Pushes whose attempt without the reads was rolled back and run again (for tests).
    var pushesRunAgain: Int { self.counters.runAgain.load(ordering: .relaxed) }
    private let counters = Counters()
    /// Where `/metrics` counts them too (none in tests that build an engine alone).
    let metrics: ServerMetrics?

    private final class Counters: Sendable {
        let runAgain = Atomic<Int>(0)
    }

    init(
        store: any SyncStore, clock: ServerClock, limits: Limits, notifier: any ChangeNotifier, logger: Logger, maxClockDrift: Int64 = 60_000,
        metrics: ServerMetrics? = nil
    ) {
        self.store = store
        self.metrics = metrics
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
        // Each op's payload hash is taken off the transaction's path: the writer is the one thread
        // every push goes through (in a profile of pushed creates, hashing was a twentieth of its
        // samples). A small push is hashed here; a larger one by a helper thread while the
        // transaction begins and does its first reads (`PayloadHashes`).
        let hashes = request.mintedOpIds ? nil : PayloadHashes(request.operations)
        hashes?.start()
        defer { hashes?.cancel() }
        let outcome: PushOutcome
        do {
            // A push of creates of new ids (a device's new bookmarks, an import) first runs
            // without reading its ids: see `assumesNewIds`.
            if self.assumesNewIds, Self.createsOnly(request) {
                do {
                    outcome = try await self.apply(request, hashes: hashes, assumingNew: true)
                } catch let error where error is KeyAlreadyStored || error is NotAllNew {
                    self.counters.runAgain.add(1, ordering: .relaxed)
                    self.metrics?.pushesRunAgain.increment()
                    outcome = try await self.apply(request, hashes: hashes, assumingNew: false)
                }
            } else {
                outcome = try await self.apply(request, hashes: hashes, assumingNew: false)
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

    /// Whether a push may first run taking its ids for new (`assumesNewIds`): more than one op,
    /// each a create (or upsert) naming its id, not atomic (one refused op rolls it back whole,
    /// and it answers with every op's result), and nothing that reads the records besides the
    /// ops (`If-Match`, the non-sync path's deduplication, returned records).
    static func createsOnly(_ request: PushRequest) -> Bool {
        guard request.operations.count > 1, !request.atomic, !request.requireLiveRecords, !request.deduplicateCreates, !request.returnRecords
        else { return false }
        return request.operations.allSatisfy { ($0.type == .create || $0.type == .upsert) && $0.id != nil }
    }

    /// Thrown inside a push's transaction that took its ids for new, when an op was not applied:
    /// the push runs again with its reads.
    struct NotAllNew: Error {}

    /// Runs `request`'s ops in one write transaction. `assumingNew`: without reading which of
    /// its op ids are stored and which of the records it names exist, taking none for stored
    /// (``BatchApplier/prefetch(_:assumingNew:)``); such a transaction throws `NotAllNew` (or
    /// the store's ``KeyAlreadyStored``) and is rolled back when that was not so.
    private func apply(_ request: PushRequest, hashes: PayloadHashes?, assumingNew: Bool) async throws -> PushOutcome {
        let clock = self.clock
        let hlc = self.hlc
        let limits = self.limits
        precondition(!assumingNew || Self.createsOnly(request), "only a push of creates may take its ids for new")
        let rootsPresent = self.profileRoots.arePresent(request.profileId)
        let outcome = try await self.store.write(profileId: request.profileId, operations: request.operations.count) { tx in
            // Timestamps are taken under the write lock, so they follow commit order.
            let now = clock.nowMilliseconds
            guard let profile = try tx.profileState(request.profileId) else { throw CairnError.notFound("Profile") }
            if let cursor = request.cursor { try Self.checkCursor(cursor, profile: profile) }
            let applier = try BatchApplier(tx: tx, request: request, profile: profile, now: now, hlc: hlc, limits: limits)
            applier.rootsEnsured = rootsPresent
            if request.operations.count > 1 { try applier.prefetch(request.operations, assumingNew: assumingNew) }
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
            for (index, op) in request.operations.enumerated() {
                let result = try applier.apply(op, hash: hashes?.hash(index))
                // Every op applied is every id new: each wrote its record and its op result as
                // new rows, which the store refuses when one was not (the failure comes back
                // from a later call, at the latest when the body returns).
                if assumingNew, result.status != .applied { throw NotAllNew() }
                results.append(result)
                if request.atomic, result.status == .rejected || result.status == .conflict {
                    throw AtomicBatchAborted(results: results, sequence: profile.seq)
                }
            }
            try applier.finish()
            var outcome = PushOutcome(results: results, committed: true, previousSequence: profile.seq, sequence: applier.seq, touched: applier.touched)
            outcome.rootsEnsured = applier.rootsEnsured
            if request.returnRecords {
                for result in results {
                    guard let id = result.id, let record = try applier.record(result.collection, id) else { continue }
                    outcome.records[RecordKey(collection: result.collection, id: id)] = record
                }
            }
            return outcome
        }
        // Committed: the roots this transaction read or created are there for good.
        if outcome.rootsEnsured, !rootsPresent { self.profileRoots.notePresent(request.profileId) }
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
    public func pushOne(
        _ op: SyncOperation, profileId: String, clientId: String?, strictVersion: Bool = false, deduplicate: Bool = false, mintedOpId: Bool = false
    ) async throws -> (OperationResult, Int64) {
        let (result, sequence, _) = try await self.pushOneReturningRecord(
            op, profileId: profileId, clientId: clientId, strictVersion: strictVersion, deduplicate: deduplicate, mintedOpId: mintedOpId)
        return (result, sequence)
    }

    /// `pushOne`, also returning the op's record as it stands after the push (`nil` when there is none).
    public func pushOneReturningRecord(
        _ op: SyncOperation, profileId: String, clientId: String?, strictVersion: Bool = false, deduplicate: Bool = false, requireLive: Bool = false,
        mintedOpId: Bool = false
    ) async throws -> (OperationResult, Int64, StoredRecord?) {
        var request = PushRequest(profileId: profileId, clientId: clientId, operations: [op], strictVersion: strictVersion, deduplicateCreates: deduplicate)
        request.returnRecords = true
        request.requireLiveRecords = requireLive
        request.mintedOpIds = mintedOpId
        let outcome = try await self.push(request)
        guard let result = outcome.results.first else { throw CairnError(.internalError, "No result") }
        let record = result.id.flatMap { outcome.records[RecordKey(collection: result.collection, id: $0)] }
        return (result, outcome.sequence, record)
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
