import CairnCore
import Crypto
import Foundation

/// Applies the operations of one push inside one transaction. Lives only for the duration of the
/// transaction closure and is confined to its thread.
final class BatchApplier {
    let tx: any SyncTransaction
    let profileId: String
    let clientId: String?
    let now: Int64
    let hlc: ServerHLC
    let limits: Limits
    let settings: [String: JSONValue]
    let requestStrategy: ConflictStrategy?
    let strictVersion: Bool
    let deduplicateCreates: Bool
    /// Whether each op's result is looked up before and stored after (not for op ids the server
    /// made up: see ``PushRequest/mintedOpIds``).
    let keepsResults: Bool
    /// The profile sequence; each change takes the next value.
    var seq: Int64
    /// Whether the bookmark roots were checked in this batch, or known to be committed before it
    /// (``ProfileRoots``).
    var rootsEnsured = false
    /// Each record this batch changed, with its version before the batch (0 when created).
    var touched: [RecordKey: Int64] = [:]
    /// Records this batch read or wrote (`nil` = known not to exist), so that a batch reads a
    /// parent, an anchor or an ancestor once, not once per op.
    private var cache: [RecordKey: StoredRecord?] = [:]
    /// Records first touched by the op being applied (undone if it fails).
    private var touchedByOp: [RecordKey] = []

    /// A folder's last live child, when the op before the current one appended it there: the
    /// next append into that folder is placed after it without asking the store (a batch of
    /// creates into one folder read its last child once per op). Only consecutive applied appends
    /// carry it: any other op that is applied, and any op that fails, drops it (`apply`); a
    /// replayed op id writes nothing and leaves it.
    var appendedLast: (parentId: String?, key: SiblingKey)?
    /// What the op being applied appended last into its folder (set by `BookmarkRules.create`).
    var appendedByOp: (parentId: String?, key: SiblingKey)?

    /// What the op being applied has written, and so what a refusal of it must undo.
    private var opWrites = OpWrites()

    /// The op ids of this batch that were stored before it or by it, when `prefetch` looked
    /// them up for the whole batch (`nil`: ask the store op by op).
    private var storedOpIds: Set<String>?

    init(tx: any SyncTransaction, request: PushRequest, profile: StoredProfile, now: Int64, hlc: ServerHLC, limits: Limits) throws {
        self.tx = tx
        self.profileId = request.profileId
        self.clientId = request.clientId
        self.now = now
        self.hlc = hlc
        self.limits = limits
        self.settings = profile.settings
        self.requestStrategy = request.strategy
        self.strictVersion = request.strictVersion
        self.deduplicateCreates = request.deduplicateCreates
        self.keepsResults = !request.mintedOpIds
        self.seq = profile.seq
    }

    /// The strategy for `collection`: the request's, else the profile's per-collection, else the
    /// profile's, else `merge`.
    func strategy(for collection: String) -> ConflictStrategy {
        if let requestStrategy { return requestStrategy }
        if let name = self.settings["collections"]?[collection]?["conflictStrategy"]?.stringValue, let strategy = ConflictStrategy(rawValue: name) {
            return strategy
        }
        if let name = self.settings["conflictStrategy"]?.stringValue, let strategy = ConflictStrategy(rawValue: name) { return strategy }
        return .merge
    }

    /// Whether a delete beats a concurrent update (the default) in this profile.
    var deleteWins: Bool { self.settings["deleteWins"]?.boolValue ?? true }

    // MARK: One operation

    /// Reads what a batch's ops will ask for, in a few queries instead of two per op: which of
    /// their op ids were already applied, and the records they name (the ones that do not exist
    /// are remembered as absent). `assumingNew`: reads nothing, and takes every op id for new
    /// and every record named for absent (``SyncEngine/assumesNewIds``).
    func prefetch(_ ops: [SyncOperation], assumingNew: Bool = false) throws {
        if self.keepsResults {
            self.storedOpIds = assumingNew ? [] : try self.tx.storedOpIds(self.profileId, among: Array(Set(ops.map(\.opId))))
        }
        // A batch touches about one record per op, and reads a few parents besides.
        self.cache.reserveCapacity(self.cache.count + ops.count + 16)
        self.touched.reserveCapacity(self.touched.count + ops.count)
        var named: [String: Set<String>] = [:]
        for op in ops where RecordRules.isValidCollection(op.collection) {
            guard let id = op.id, RecordRules.isValidId(id) else { continue }
            if assumingNew {
                self.cache[RecordKey(collection: op.collection, id: id)] = .some(nil)
            } else {
                named[op.collection, default: []].insert(id)
            }
        }
        for (collection, ids) in named {
            let found = try self.tx.records(self.profileId, collection, ids: Array(ids))
            for id in ids { self.cache[RecordKey(collection: collection, id: id)] = .some(found[id]) }
        }
    }

    /// Applies one op (or replays its stored result) and stores its result under its op id.
    /// `hash`: the op's `payloadHash`, when the caller took it already.
    func apply(_ op: SyncOperation, hash known: Data? = nil) throws -> OperationResult {
        let hash = self.keepsResults ? (known ?? Self.payloadHash(op)) : Data()
        let mayBeStored = self.keepsResults && (self.storedOpIds?.contains(op.opId) ?? true)
        if mayBeStored, let stored = try self.tx.opResult(self.profileId, op.opId) {
            // Ops stored before the direct writer carry the JSONEncoder hash.
            guard stored.payloadHash == hash || stored.payloadHash == (try? Self.legacyPayloadHash(op)) else {
                var result = OperationResult(
                    opId: op.opId, status: .rejected, collection: op.collection, id: op.id,
                    error: OperationError(code: CairnError.Code.idempotencyMismatch.rawValue, message: "This opId was already used with a different payload")
                )
                result.version = stored.version
                return result
            }
            var replay = stored.result ?? Self.plainResult(op, version: stored.version)
            replay.originalStatus = replay.status == .duplicate ? replay.originalStatus : replay.status
            replay.status = .duplicate
            return replay
        }
        var result: OperationResult
        let sequenceBefore = self.seq
        let rootsEnsuredBefore = self.rootsEnsured
        self.touchedByOp.removeAll(keepingCapacity: true)
        self.appendedByOp = nil
        // Each op's writes go in a savepoint, opened before its first write (`willWrite`): a
        // refused op leaves nothing behind (no parent revived for a create whose position was
        // then refused), and the batch goes on. An op refused before writing, or whose only
        // write is its last step, needs none: a savepoint per op was a tenth of a push's time.
        // Any other error rolls the whole transaction back, savepoint or not.
        self.opWrites.begin()
        defer { self.opWrites.end() }
        do {
            try Self.validateEnvelope(op)
            if op.collection == BookmarkRules.collection {
                result = try BookmarkRules(applier: self).apply(op)
            } else {
                result = try RecordRules(applier: self).apply(op)
            }
            if self.opWrites.state == .savepoint { try self.tx.releaseSavepoint() }
        } catch let error as CairnError {
            if try self.opWrites.refused(opId: op.opId, error) { try self.tx.rollbackSavepoint() }
            self.seq = sequenceBefore
            self.rootsEnsured = rootsEnsuredBefore
            for key in self.touchedByOp { self.touched.removeValue(forKey: key) }
            self.cache.removeAll()
            result = OperationResult(opId: op.opId, status: .rejected, collection: op.collection, id: op.id, error: OperationError(error))
        }
        self.appendedLast = result.status == .applied ? self.appendedByOp : nil
        if self.keepsResults {
            let plain = result == Self.plainResult(op, version: result.version)
            try self.tx.saveOpResult(
                StoredOpResult(
                    profileId: self.profileId, opId: op.opId, payloadHash: hash, result: plain ? nil : result, version: result.version,
                    createdAt: self.now
                )
            )
            // A second op of this batch with the same id is then a replay of this one.
            self.storedOpIds?.insert(op.opId)
        }
        return result
    }

    /// The result most ops end with: `op` applied at `version`, nothing more. It is not stored
    /// (``StoredOpResult/result``), but rebuilt from the op when a retry of it comes.
    static func plainResult(_ op: SyncOperation, version: Int64?) -> OperationResult {
        OperationResult(opId: op.opId, status: .applied, collection: op.collection, id: op.id, version: version)
    }

    static func validateEnvelope(_ op: SyncOperation) throws(CairnError) {
        guard !op.opId.isEmpty, op.opId.utf8.count <= 128 else {
            throw CairnError(.validation, "opId must be 1 to 128 characters", field: "opId")
        }
        guard RecordRules.isValidCollection(op.collection) else {
            throw CairnError(.validation, "collection must match [a-z][a-zA-Z0-9_-]{0,63}", field: "collection")
        }
        if let id = op.id, !RecordRules.isValidId(id) {
            throw CairnError(.validation, "id must match [A-Za-z0-9_.:-]{1,128}", field: "id")
        }
        if let version = op.expectedVersion, version < 0 {
            throw CairnError(.validation, "expectedVersion must not be negative", field: "expectedVersion")
        }
    }

    /// SHA-256 of the op's canonical JSON (keys sorted, written directly): a retry with the same
    /// id must carry the same bytes of meaning.
    static func payloadHash(_ op: SyncOperation) -> Data {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        op.writeCanonicalJSON(to: &bytes)
        return Data(SHA256.hash(data: bytes))
    }

    /// The hash stored by versions that used `JSONEncoder` (sorted keys, escaped slashes).
    static func legacyPayloadHash(_ op: SyncOperation) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Data(SHA256.hash(data: try encoder.encode(op)))
    }

    // MARK: Stamps

    /// The HLC stamp for `op`, clamped if it runs ahead of the server.
    func stamp(for op: SyncOperation) -> (HLC, Bool) {
        self.hlc.stamp(for: op.hlc, defaultNode: self.clientId ?? "client")
    }

    // MARK: Records

    /// A record of this profile, read at most once per batch.
    func record(_ collection: String, _ id: String) throws -> StoredRecord? {
        let key = RecordKey(collection: collection, id: id)
        if let cached = self.cache[key] { return cached }
        let record = try self.tx.record(self.profileId, collection, id)
        self.cache[key] = .some(record)
        return record
    }

    // MARK: Committing changes

    /// Before each write of the op being applied: opens its savepoint before its first write.
    /// `last`: the op writes nothing after this and cannot be refused after it (it only builds
    /// its result), so an op that has not written yet needs no savepoint.
    func willWrite(last: Bool = false) throws {
        if try self.opWrites.willWrite(last: last) { try self.tx.beginSavepoint() }
    }

    /// Gives `record` the next version and saves it with the pushing device's `clientId`: the
    /// record's row is the whole trace of a change (docs/sync.md, "What the server keeps per
    /// change"). `last`: see `willWrite`.
    /// `encodedData`: the JSON text of `record.data`, when the caller wrote it already (see
    /// ``RecordRules/encodedWithinLimit(_:)``).
    func commit(_ record: inout StoredRecord, isNew: Bool, last: Bool = false, encodedData: String? = nil) throws {
        try self.willWrite(last: last)
        let key = RecordKey(collection: record.collection, id: record.id)
        if self.touched[key] == nil {
            // A record rebuilt from scratch (version 0 but not new) had an unknown past: report it.
            self.touched[key] = isNew ? 0 : (record.version == 0 ? Int64.max : record.version)
            self.touchedByOp.append(key)
        }
        self.seq += 1
        record.version = self.seq
        record.updatedAt = self.now
        if isNew {
            record.createdSeq = self.seq
            record.createdAt = self.now
            if record.fieldVersions.isEmpty {
                // Same keys, same layout: no rehash.
                let seq = self.seq
                record.fieldVersions = record.fieldStamps.mapValues { _ in seq }
            } else {
                for field in record.fieldStamps.keys { record.fieldVersions[field] = self.seq }
            }
        }
        for (field, version) in record.fieldVersions where version == Self.pendingVersion {
            record.fieldVersions[field] = self.seq
        }
        record.clientId = self.clientId
        try self.tx.saveRecord(record, isNew: isNew, encodedData: encodedData)
        self.cache[key] = .some(record)
    }

    /// Ends the batch inside its transaction: saves the profile's sequence. Every user of an
    /// applier calls it once, after its last change. The search index is not written here: a
    /// search brings it up to date (`SyncEngine.catchUpSearchIndex`).
    func finish() throws {
        try self.tx.setSequence(self.profileId, self.seq)
    }

    // MARK: Field merge

    /// The outcome of merging an op's fields into a record.
    struct FieldMerge {
        var record: StoredRecord
        var appliedFields: [String] = []
        var skippedFields: [String] = []
        var changed: Bool = false
    }

    /// Marks a field set by the change being committed (replaced by its sequence in `commit`).
    static let pendingVersion: Int64 = -1

    /// Merges `fields` (a `nil` value removes the field) into `record` under `strategy`.
    /// `causal` means the writer saw the current version: everything applies. Under `merge`, a
    /// field also takes the write when it has not changed since the writer's `expectedVersion`
    /// (the writer saw its current value), else the later HLC stamp wins.
    func mergeFields(
        into record: StoredRecord, fields: [String: JSONValue?], stamp: HLC, strategy: ConflictStrategy, causal: Bool, blind: Bool,
        expectedVersion: Int64? = nil
    ) -> FieldMerge {
        var merge = FieldMerge(record: record)
        let wholeRecordWins: Bool
        switch strategy {
        case .clientWins: wholeRecordWins = true
        case .lww: wholeRecordWins = causal || stamp > record.hlc
        case .serverWins, .manual: wholeRecordWins = causal || (blind && stamp > record.hlc)
        case .merge: wholeRecordWins = causal
        }
        for (field, value) in fields.sorted(by: { $0.key < $1.key }) {
            let current = record.fieldStamps[field] ?? record.hlc
            let fieldVersion = record.fieldVersions[field] ?? record.version
            // A version the record never had (ahead of it) proves nothing: stamps decide.
            let unchangedSinceBase = expectedVersion.map { $0 <= record.version && fieldVersion <= $0 } ?? false
            let wins = wholeRecordWins || (strategy == .merge && (unchangedSinceBase || stamp > current))
            guard wins else {
                merge.skippedFields.append(field)
                continue
            }
            merge.appliedFields.append(field)
            let newStamp = stamp > current ? stamp : current.successor(after: stamp, node: stamp.node)
            merge.record.fieldStamps[field] = newStamp
            merge.record.fieldVersions[field] = Self.pendingVersion
            if newStamp > merge.record.hlc { merge.record.hlc = newStamp }
            if let value {
                if merge.record.data[field] != value {
                    merge.record.data[field] = value
                    merge.changed = true
                }
            } else if merge.record.data[field] != nil {
                merge.record.data.removeValue(forKey: field)
                merge.changed = true
            }
        }
        return merge
    }

    // MARK: Conflicts

    /// Marks the open conflicts of a record resolved.
    func resolveConflicts(_ collection: String, _ id: String) throws {
        try self.willWrite()
        try self.tx.resolveConflicts(self.profileId, collection, id, at: self.now)
    }

    /// Logs a `manual` conflict.
    func logConflict(op: SyncOperation, record: StoredRecord, clientData: JSONValue, serverJSON: JSONValue) throws {
        try self.willWrite()
        _ = try self.tx.logConflict(
            self.profileId,
            StoredConflict(
                id: 0, collection: record.collection, recordId: record.id, opId: op.opId, clientData: clientData, serverData: serverJSON,
                serverVersion: record.version, createdAt: self.now, resolvedAt: nil
            )
        )
    }
}

/// What the op being applied has written, and so whether a refusal of it has anything to undo:
/// its savepoint is opened before its first write, unless that write is its last step.
struct OpWrites {
    enum State {
        /// No op is being applied (roots for a read, an import, a profile's deletion): writes
        /// belong to the transaction alone.
        case outsideOp
        /// The op has written nothing yet: a refusal has nothing to undo.
        case nothing
        /// The op's writes are in a savepoint, opened before the first.
        case savepoint
        /// The op made its last write without a savepoint (`willWrite(last: true)`): it can no
        /// longer be refused, nor write again.
        case lastWithoutSavepoint
    }

    /// An op broke the contract of `willWrite(last: true)`: it wrote again, or was refused after
    /// its last write. Not a `CairnError`, so the whole transaction rolls back and nothing of it
    /// is half-applied.
    struct UnguardedWrite: Error, CustomStringConvertible {
        var description: String
    }

    private(set) var state = State.outsideOp

    /// An op starts.
    mutating func begin() { self.state = .nothing }

    /// The op is over (applied or refused).
    mutating func end() { self.state = .outsideOp }

    /// Before a write of the op; true when a savepoint must be opened first.
    mutating func willWrite(last: Bool) throws -> Bool {
        switch self.state {
        case .outsideOp, .savepoint:
            return false
        case .nothing:
            self.state = last ? .lastWithoutSavepoint : .savepoint
            return !last
        case .lastWithoutSavepoint:
            throw UnguardedWrite(description: "an op wrote after its last write")
        }
    }

    /// The op was refused; true when its savepoint must be rolled back. Throws when its writes
    /// cannot be undone.
    func refused(opId: String, _ error: CairnError) throws -> Bool {
        switch self.state {
        case .savepoint: return true
        case .lastWithoutSavepoint: throw UnguardedWrite(description: "op \(opId) was refused after its last write: \(error)")
        case .nothing, .outsideOp: return false
        }
    }
}
