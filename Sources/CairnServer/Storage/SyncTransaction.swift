import CairnCore
import Foundation

/// A record as stored: its data, per-field HLC stamps and tree placement.
public struct StoredRecord: Sendable, Equatable {
    public var profileId: String
    public var collection: String
    public var id: String
    /// The profile sequence of the record's last change.
    public var version: Int64
    /// The record's fields.
    public var data: [String: JSONValue]
    /// For each field, the HLC stamp of the write that set it.
    public var fieldStamps: [String: HLC]
    /// For each field, the version (profile sequence) of the change that last set it; a field
    /// unchanged since a client's `expectedVersion` takes that client's edit without a clash.
    public var fieldVersions: [String: Int64] = [:]
    /// The latest stamp of any field (the whole-record stamp for `lww`).
    public var hlc: HLC
    /// Tree parent (bookmarks).
    public var parentId: String?
    /// Fractional-index key among siblings (bookmarks).
    public var position: String?
    public var createdAt: Int64
    public var updatedAt: Int64
    public var deleted: Bool
    public var deletedAt: Int64?
    /// The sequence of the change that created it.
    public var createdSeq: Int64
    /// The device (`clientId`) of the request that made the record's last change (a push, a
    /// single write, an import, a profile's deletion, or a push that made the root folders on
    /// its way); `nil` when that request named none.
    public var clientId: String?

    public init(
        profileId: String, collection: String, id: String, version: Int64, data: [String: JSONValue], fieldStamps: [String: HLC],
        hlc: HLC, parentId: String? = nil, position: String? = nil, createdAt: Int64, updatedAt: Int64, deleted: Bool = false,
        deletedAt: Int64? = nil, createdSeq: Int64, clientId: String? = nil
    ) {
        self.profileId = profileId
        self.collection = collection
        self.id = id
        self.version = version
        self.data = data
        self.fieldStamps = fieldStamps
        self.hlc = hlc
        self.parentId = parentId
        self.position = position
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.deleted = deleted
        self.deletedAt = deletedAt
        self.createdSeq = createdSeq
        self.clientId = clientId
    }
}

/// A changed record as a pull reads it: its columns, with `data` still the stored JSON text. A
/// pull page copies that text into its answer; `record` parses it where values are needed.
public struct ChangedRow: Sendable, Equatable {
    public var profileId: String
    public var collection: String
    public var id: String
    public var version: Int64
    /// The stored JSON text of the record's data (an object).
    public var dataText: String
    public var parentId: String?
    public var position: String?
    public var createdAt: Int64
    public var updatedAt: Int64
    public var deleted: Bool
    public var deletedAt: Int64?
    public var createdSeq: Int64
    /// The device of the request that made the last change (``StoredRecord/clientId``).
    public var clientId: String? = nil

    /// The record with its data parsed (`[:]` if the text is not an object), as a pull shows it:
    /// without the field stamps and HLC that only merges read (a zero HLC), so it must never be
    /// merged into or saved.
    public var record: StoredRecord {
        StoredRecord(
            profileId: self.profileId, collection: self.collection, id: self.id, version: self.version,
            data: (try? JSONValue.parseObject(self.dataText)) ?? [:], fieldStamps: [:], hlc: HLC(wall: 0, node: ""), parentId: self.parentId,
            position: self.position, createdAt: self.createdAt, updatedAt: self.updatedAt, deleted: self.deleted,
            deletedAt: self.deletedAt, createdSeq: self.createdSeq, clientId: self.clientId
        )
    }
}

/// A processed operation, kept so that a retry returns the original result.
public struct StoredOpResult: Sendable, Equatable {
    public var profileId: String
    public var opId: String
    public var payloadHash: Data
    /// The op's result; `nil` when it is the op's plain result, `applied` at `version` and
    /// nothing more (``BatchApplier/plainResult(_:version:)``), stored as an empty text: a retry
    /// carries the same op (its payload hash says so), from which the result is rebuilt.
    /// Most pushed ops end so, and the text was half of each stored row.
    public var result: OperationResult?
    /// The record's version after the op (the result's `version`).
    public var version: Int64?
    public var createdAt: Int64

    public init(profileId: String, opId: String, payloadHash: Data, result: OperationResult?, version: Int64?, createdAt: Int64) {
        self.profileId = profileId
        self.opId = opId
        self.payloadHash = payloadHash
        self.result = result
        self.version = version
        self.createdAt = createdAt
    }
}

/// A logged conflict (strategy `manual`).
public struct StoredConflict: Sendable, Equatable, Codable {
    public var id: Int64
    public var collection: String
    public var recordId: String
    public var opId: String?
    /// What the client wanted to write.
    public var clientData: JSONValue
    /// The server record at the time.
    public var serverData: JSONValue?
    public var serverVersion: Int64?
    public var createdAt: Int64
    public var resolvedAt: Int64?

    public init(
        id: Int64, collection: String, recordId: String, opId: String?, clientData: JSONValue, serverData: JSONValue?, serverVersion: Int64?,
        createdAt: Int64, resolvedAt: Int64?
    ) {
        self.id = id
        self.collection = collection
        self.recordId = recordId
        self.opId = opId
        self.clientData = clientData
        self.serverData = serverData
        self.serverVersion = serverVersion
        self.createdAt = createdAt
        self.resolvedAt = resolvedAt
    }
}

/// One full-text hit.
public struct SearchHit: Sendable, Equatable {
    public var recordId: String
    public var rank: Double
}

/// Synchronous reads inside one consistent snapshot of one profile. Implementations run the
/// body on a thread of their own, except a lone push of a few ops, which runs on its caller's
/// (`SQLiteSyncStore.write`): blocking is allowed, but waiting on other Swift tasks is not.
public protocol SyncReader {
    /// The profile row (sequence, purge horizon, settings).
    func profileState(_ profileId: String) throws -> StoredProfile?
    /// One record, live or tombstoned.
    func record(_ profileId: String, _ collection: String, _ id: String) throws -> StoredRecord?
    /// Several records by id (missing ones are absent from the answer).
    func records(_ profileId: String, _ collection: String, ids: [String]) throws -> [String: StoredRecord]
    /// The children of `parentId` (`nil` = top level) in `collection`, live only unless asked.
    func children(_ profileId: String, _ collection: String, parentId: String?, includeDeleted: Bool) throws -> [StoredRecord]
    /// Every record of a collection (live only unless asked), in no particular order.
    func allRecords(_ profileId: String, _ collection: String, includeDeleted: Bool) throws -> [StoredRecord]
    /// Records whose version is above `since`, oldest change first, at most `limit`.
    func changedRecords(_ profileId: String, since: Int64, collections: [String]?, limit: Int) throws -> [StoredRecord]
    /// The same records as `changedRecords`, as rows for a pull: data left as stored text, no
    /// field stamps read.
    func changedRows(_ profileId: String, since: Int64, collections: [String]?, limit: Int) throws -> [ChangedRow]
    /// A processed op, if this op id was seen in this profile.
    func opResult(_ profileId: String, _ opId: String) throws -> StoredOpResult?
    /// Which of `opIds` were processed in this profile.
    func storedOpIds(_ profileId: String, among opIds: [String]) throws -> Set<String>
    /// Open (or all) logged conflicts, newest first.
    func conflicts(_ profileId: String, includeResolved: Bool, limit: Int) throws -> [StoredConflict]
    /// The ids of a folder's live children in order (an id's index in the array is its
    /// `sortOrder`), read from the sibling index alone.
    func siblingIds(_ profileId: String, _ collection: String, parentId: String?) throws -> [String]
    /// Live children of a parent ordered by (position, id), skipping `excluding`, from `offset`.
    func siblingSlice(_ profileId: String, _ collection: String, parentId: String?, excluding: String?, offset: Int, limit: Int) throws -> [SiblingKey]
    /// The live sibling right after (or before) the key `(position, id)`, skipping `excluding`.
    func siblingNext(_ profileId: String, _ collection: String, parentId: String?, excluding: String?, after key: SiblingKey, forward: Bool) throws -> SiblingKey?
    /// The last live child of a parent, skipping `excluding`.
    func lastSibling(_ profileId: String, _ collection: String, parentId: String?, excluding: String?) throws -> SiblingKey?
    /// How many live siblings sort before `(position, id)`: the computed `sortOrder`.
    func siblingIndex(_ profileId: String, _ collection: String, parentId: String?, key: SiblingKey) throws -> Int
    /// Records of `collections` whose `updatedAt` is at or after `since` (ms), oldest update first.
    func recordsUpdated(_ profileId: String, collections: [String], since: Int64, limit: Int) throws -> [StoredRecord]
    /// The newest `updatedAt` among records of `collections` (ms), if any.
    func newestUpdate(_ profileId: String, collections: [String]) throws -> Int64?
    /// When the record whose version is `version` was last changed (ms): the time of the change
    /// with that sequence while the record still has it.
    func changeTime(_ profileId: String, version: Int64) throws -> Int64?
    /// The sequence the bookmark search index reflects, and the profile's sequence (`nil`: no
    /// such live profile). Changes above `indexed` are not in the index yet.
    func searchIndexState(_ profileId: String) throws -> (indexed: Int64, seq: Int64)?
    /// Full-text search over the bookmark index (as of `searchIndexState`'s `indexed`); ranked
    /// best first, with the total match count.
    func searchBookmarks(_ profileId: String, match: String, limit: Int, offset: Int) throws -> (hits: [SearchHit], total: Int)
}

/// Writes inside one transaction that holds the profile's write lock: the sequence assigned here
/// is in commit order, so a pull by cursor can never skip a change.
public protocol SyncTransaction: SyncReader {
    /// Opens a savepoint inside the transaction (one at a time: the op being applied).
    func beginSavepoint() throws
    /// Keeps the savepoint's writes in the transaction and closes it.
    func releaseSavepoint() throws
    /// Undoes the savepoint's writes and closes it; the transaction goes on.
    func rollbackSavepoint() throws
    /// Saves the profile's sequence after the changes of this transaction.
    func setSequence(_ profileId: String, _ seq: Int64) throws
    /// Inserts or replaces a record. `isNew`: the caller takes the profile to have no row with
    /// its id (a plain insert, which fails rather than replace one: the write then throws
    /// ``KeyAlreadyStored``, at the latest when its body returns). `encodedData`: the compact
    /// JSON text of `record.data`, when the caller has it (the store writes it, not its own).
    func saveRecord(_ record: StoredRecord, isNew: Bool, encodedData: String?) throws
    /// Stores an op's result under its op id, which must be new: else the write throws
    /// ``KeyAlreadyStored``, at the latest when its body returns.
    func saveOpResult(_ result: StoredOpResult) throws
    /// Logs a conflict; returns its id.
    func logConflict(_ profileId: String, _ conflict: StoredConflict) throws -> Int64
    /// Marks the open conflicts of a record resolved.
    func resolveConflicts(_ profileId: String, _ collection: String, _ recordId: String, at: Int64) throws
    /// Removes tombstones deleted before `deletedBefore` (ms) and raises the profile's purge
    /// horizon to the newest of their versions (cursors older than it must resync). Returns the
    /// number of tombstones removed.
    func purgeTombstones(_ profileId: String, deletedBefore: Int64) throws -> Int
    /// Marks a profile deleted (its records are tombstoned by the engine first).
    func markProfileDeleted(_ profileId: String, at: Int64) throws
    /// Puts a bookmark in (or, with `nil` fields, takes it out of) the full-text index.
    /// `isNew` says the bookmark is probably not in the index yet (a hint: either way is right).
    func indexBookmark(_ profileId: String, id: String, fields: BookmarkSearchFields?, isNew: Bool) throws
    /// Records that the search index reflects every change up to `seq` (it never goes back).
    func setSearchSequence(_ profileId: String, _ seq: Int64) throws
    /// Removes every search index entry of a profile and marks the index current (a deleted
    /// profile).
    func dropSearchIndex(_ profileId: String) throws
}

/// Where a node sits among its siblings.
public struct SiblingKey: Sendable, Equatable {
    public var id: String
    public var position: String
}

/// The text of a bookmark that search looks at.
public struct BookmarkSearchFields: Sendable, Equatable {
    public var title: String
    public var url: String
    public var tags: String
    public var notes: String
}

