import CairnCore

/// One push through the engine, from any surface (REST, seed adapters, WebSocket).
public struct PushRequest: Sendable {
    public var profileId: String
    /// The pushing device, recorded on each change (so its own changes can be told apart).
    public var clientId: String?
    public var operations: [SyncOperation]
    /// All-or-nothing: one rejected or conflicting op rolls back the whole batch.
    public var atomic: Bool
    /// Overrides the profile's conflict strategy for this push.
    public var strategy: ConflictStrategy?
    /// REST `If-Match`: a stale `expectedVersion` is a conflict whatever the strategy.
    public var strictVersion: Bool
    /// The non-sync path: a bookmark create without an id returns an existing live bookmark with
    /// the same normalised URL in the same folder instead of a copy.
    public var deduplicateCreates: Bool
    /// Return each op's record as it stands after the batch (read in the same transaction), so a
    /// REST write can answer without reading it again.
    public var returnRecords: Bool = false
    /// The pushing client's cursor, when it sent one: checked against the profile inside the
    /// push's transaction, so a cursor behind the purge horizon (or ahead of the profile) gets
    /// `410 RESYNC_REQUIRED` with nothing applied, even when a purge lands just before the push.
    public var cursor: Int64?
    /// REST `If-Match` on a record: every op's record must exist and be live when the push's
    /// transaction starts, else `409 CONFLICT_DETECTED` with `current: null` and nothing applied
    /// (RFC 9110: no current representation means the precondition fails).
    public var requireLiveRecords = false
    /// The server made up every op id of this push, each a fresh one, for a write that sent none
    /// (a REST write without `opId`, a seed surface's write, a full replace). Its answer does not
    /// name the id, so no client resends it: there is no earlier result to look up, and none is
    /// kept (an `applied_ops` row per such write would only grow the database). Not for ids a
    /// client is told (a WebSocket write's `bookmark_ack` names its op id).
    public var mintedOpIds = false

    public init(
        profileId: String, clientId: String? = nil, operations: [SyncOperation], atomic: Bool = false, strategy: ConflictStrategy? = nil,
        strictVersion: Bool = false, deduplicateCreates: Bool = false, mintedOpIds: Bool = false
    ) {
        self.profileId = profileId
        self.clientId = clientId
        self.operations = operations
        self.atomic = atomic
        self.strategy = strategy
        self.strictVersion = strictVersion
        self.deduplicateCreates = deduplicateCreates
        self.mintedOpIds = mintedOpIds
    }
}

/// What a push did.
public struct PushOutcome: Sendable {
    /// One result per operation, in order.
    public var results: [OperationResult]
    /// `false` when an atomic batch was rolled back.
    public var committed: Bool
    /// The profile sequence before the push.
    public var previousSequence: Int64
    /// The profile sequence after the push (the newest change's version).
    public var sequence: Int64
    /// Every record the push changed, with its version before the push (0 when created). A
    /// record whose earlier version is newer than the client's cursor had changes the client has
    /// not seen, so its state must be sent back even though this push changed it last.
    public var touched: [RecordKey: Int64] = [:]
    /// With `returnRecords`: each op's record after the batch (absent when it does not exist).
    public var records: [RecordKey: StoredRecord] = [:]
    /// Whether the transaction read or created every bookmark root (``ProfileRoots``): set only
    /// when it ended with them there, as a refused op's savepoint takes back roots it created.
    var rootsEnsured = false

    /// The records this push changed that also carry changes newer than `cursor` from elsewhere.
    public func recordsWithUnseenChanges(since cursor: Int64) -> [RecordKey] {
        self.touched.filter { $0.value > cursor }.map(\.key).sorted { ($0.collection, $0.id) < ($1.collection, $1.id) }
    }
}

/// A record's identity within a profile.
public struct RecordKey: Hashable, Sendable {
    public var collection: String
    public var id: String

    public init(collection: String, id: String) {
        self.collection = collection
        self.id = id
    }
}

/// Thrown inside the transaction to roll back an atomic batch, carrying the results to report.
struct AtomicBatchAborted: Error {
    var results: [OperationResult]
    var sequence: Int64
}
