/// What a client pushes: one change to one record.
///
/// ```json
/// {"opId": "c1-42", "type": "update", "collection": "bookmarks", "id": "b1",
///  "patch": {"title": "New"}, "expectedVersion": 17, "hlc": "001795297342377-000000-phone"}
/// ```
public struct SyncOperation: Codable, Sendable, Equatable {
    /// The kind of change.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case create, update, upsert, delete, move
    }

    /// Client-chosen id making the op exactly-once; a retry with the same id returns the first result.
    public var opId: String
    public var type: Kind
    /// The collection; defaults to `bookmarks` on the bookmark routes.
    public var collection: String
    /// The record id; absent on a create means "assign one" (and, for bookmarks, the non-sync
    /// path that deduplicates by URL).
    public var id: String?
    /// Full data for create/upsert.
    public var data: JSONValue?
    /// Changed fields for update.
    public var patch: JSONValue?
    /// The record version the client last saw.
    public var expectedVersion: Int64?
    /// Tree placement (bookmarks): the new parent, and one of index / afterId / beforeId / position.
    public var parentId: JSONValue?
    public var index: Int?
    public var afterId: String?
    public var beforeId: String?
    public var position: String?
    /// The client's hybrid logical clock stamp of the edit.
    public var hlc: HLC?

    public init(
        opId: String, type: Kind, collection: String = "bookmarks", id: String? = nil, data: JSONValue? = nil,
        patch: JSONValue? = nil, expectedVersion: Int64? = nil, parentId: JSONValue? = nil, index: Int? = nil,
        afterId: String? = nil, beforeId: String? = nil, position: String? = nil, hlc: HLC? = nil
    ) {
        self.opId = opId
        self.type = type
        self.collection = collection
        self.id = id
        self.data = data
        self.patch = patch
        self.expectedVersion = expectedVersion
        self.parentId = parentId
        self.index = index
        self.afterId = afterId
        self.beforeId = beforeId
        self.position = position
        self.hlc = hlc
    }

    /// Whether the op names a parent (`parentId` present, possibly `null` for the top level).
    public var movesParent: Bool { self.parentId != nil }
}

/// How a conflicting write is resolved.
public enum ConflictStrategy: String, Codable, Sendable, CaseIterable {
    /// Field by field, the later HLC stamp wins; untouched fields never clash (the default).
    case merge
    /// Whole record, the later HLC wins.
    case lww
    /// The server's state stays.
    case serverWins = "server-wins"
    /// The client's write is applied.
    case clientWins = "client-wins"
    /// Nothing is applied; the conflict is logged for the user to resolve.
    case manual
}

/// The outcome of one operation.
public struct OperationResult: Codable, Sendable, Equatable {
    /// What happened.
    public enum Status: String, Codable, Sendable {
        case applied, merged, conflict, rejected, duplicate
    }

    public var opId: String
    public var status: Status
    /// For `duplicate`: the status of the first attempt.
    public var originalStatus: Status?
    public var collection: String
    public var id: String?
    /// The record's version after the op (or its current version when nothing was applied).
    public var version: Int64?
    /// The server record, for `merged` and `conflict` (and on the REST answers).
    public var record: JSONValue?
    /// Why the op was rejected, or the conflict code (`CONFLICT_DETECTED`, `CYCLE`).
    public var error: OperationError?
    /// The client's HLC stamp was too far ahead and was clamped to the server clock.
    public var clockClamped: Bool?
    /// Ids of other records changed by this op (subtree deletes, revived ancestors).
    public var affected: [String]?
    /// A create that matched an existing record (non-sync path).
    public var deduplicated: Bool?

    public init(
        opId: String, status: Status, collection: String, id: String?, version: Int64? = nil, record: JSONValue? = nil,
        error: OperationError? = nil
    ) {
        self.opId = opId
        self.status = status
        self.collection = collection
        self.id = id
        self.version = version
        self.record = record
        self.error = error
    }
}

/// The error part of a rejected or conflicting op.
public struct OperationError: Codable, Sendable, Equatable {
    public var code: String
    public var message: String
    public var field: String?

    public init(code: String, message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    public init(_ error: CairnError) {
        self.init(code: error.code.rawValue, message: error.message, field: error.field)
    }
}

/// One changed record as a pull returns it.
public struct RecordChange: Codable, Sendable, Equatable {
    public var collection: String
    public var id: String
    public var version: Int64
    public var deleted: Bool
    public var deletedAt: Int64?
    public var createdAt: Int64
    public var updatedAt: Int64
    /// The record's data after the change (bookmarks: the seed 000 bookmark fields).
    public var data: JSONValue

    public init(collection: String, id: String, version: Int64, deleted: Bool, deletedAt: Int64?, createdAt: Int64, updatedAt: Int64, data: JSONValue) {
        self.collection = collection
        self.id = id
        self.version = version
        self.deleted = deleted
        self.deletedAt = deletedAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.data = data
    }
}

/// `GET /api/sync/pull` answer.
public struct PullResponse: Codable, Sendable, Equatable {
    public var changes: [RecordChange]
    /// Pass as `since` next time.
    public var cursor: Int64
    /// More changes wait: pull again at once.
    public var hasMore: Bool

    public init(changes: [RecordChange], cursor: Int64, hasMore: Bool) {
        self.changes = changes
        self.cursor = cursor
        self.hasMore = hasMore
    }
}
