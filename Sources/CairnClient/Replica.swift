import CSQLiteTuning
import CairnCore
import Foundation
import GRDB

/// A record as the local replica holds it.
public struct LocalRecord: Sendable, Equatable {
    /// The collection.
    public var collection: String
    /// The record id.
    public var id: String
    /// The record's fields as this device sees them (server state plus pending local edits).
    public var data: [String: JSONValue]
    /// Whether the record is deleted.
    public var deleted: Bool
    /// The server version this device last saw (0: never synced).
    public var version: Int64
    /// Whether local edits of this record wait to be pushed.
    public var pending: Bool
}

/// A change of the local replica, from a local write or a pull.
public struct RecordEvent: Sendable, Equatable {
    /// Where the change came from.
    public enum Origin: String, Sendable, Equatable {
        /// A write made on this device.
        case local
        /// A change pulled from the server.
        case remote
    }

    /// The collection.
    public var collection: String
    /// The record id.
    public var id: String
    /// Local or remote.
    public var origin: Origin
    /// The record after the change (`deleted` tells a delete).
    public var record: LocalRecord?
}

/// A record's place in the replica.
struct ReplicaKey: Hashable, Sendable {
    var collection: String
    var id: String
}

/// An operation waiting in the outbox.
struct PendingOperation: Sendable {
    var seq: Int64
    var op: SyncOperation
}

/// The local SQLite replica: records (server state and local view), the durable outbox, and
/// sync metadata (cursor, server, profile). Every local write updates the view and appends to the
/// outbox in one transaction; every pull applies its changes and advances the cursor in one.
final class Replica: Sendable {
    let pool: DatabasePool

    init(path: URL) throws {
        try FileManager.default.createDirectory(at: path.deletingLastPathComponent(), withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        // Before the first connection: no process-wide allocation mutex between connections.
        _ = cairn_sqlite_disable_memstatus()
        self.pool = try DatabasePool(path: path.path, configuration: configuration)
        try self.pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        try Self.migrator.migrate(self.pool)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("2026-11-22-replica") { db in
            try db.execute(sql: """
                CREATE TABLE records (
                    collection TEXT NOT NULL,
                    id TEXT NOT NULL,
                    base TEXT,
                    base_version INTEGER NOT NULL DEFAULT 0,
                    base_deleted INTEGER NOT NULL DEFAULT 0,
                    view TEXT,
                    deleted INTEGER NOT NULL DEFAULT 0,
                    pending INTEGER NOT NULL DEFAULT 0,
                    updated_at INTEGER NOT NULL,
                    PRIMARY KEY (collection, id)
                );
                CREATE TABLE outbox (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    op_id TEXT NOT NULL UNIQUE,
                    collection TEXT NOT NULL,
                    record_id TEXT NOT NULL,
                    op TEXT NOT NULL,
                    created_at INTEGER NOT NULL
                );
                CREATE INDEX outbox_by_record ON outbox(collection, record_id, seq);
                CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                """)
        }
        migrator.registerMigration("2026-11-23-replica-children") { db in
            // A folder's live children by index (placing a node read every record before).
            try db.execute(sql: """
                CREATE INDEX records_by_parent ON records(collection, json_extract(view, '$.parentId'))
                    WHERE deleted = 0 AND view IS NOT NULL
                """)
        }
        return migrator
    }

    // MARK: JSON columns

    // Records and ops are read and written with CairnCore's JSON reader and writer: Foundation's
    // JSONEncoder and JSONDecoder took a fifth of the time of a local edit.

    /// A record's fields as stored (keys in no particular order: nothing compares the text).
    static func encode(_ fields: [String: JSONValue]) -> String {
        JSONValue.object(fields).jsonText
    }

    /// An op as stored in the outbox.
    static func encode(_ op: SyncOperation) -> String {
        op.jsonValue.jsonText
    }

    /// Any other value (sync statistics).
    static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Stored fields (`nil` for a NULL column).
    static func decodeFields(_ text: String?) throws -> [String: JSONValue]? {
        try text.map(JSONValue.parseObject)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String?) throws -> T? {
        guard let text else { return nil }
        return try JSONValueDecoder().decode(T.self, from: JSONValue.parse(text))
    }

    static var now: Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    // MARK: Meta

    static func meta(_ db: Database, _ key: String) throws -> String? {
        try String.fetchOne(db.cachedStatement(sql: "SELECT value FROM meta WHERE key = ?"), arguments: [key])
    }

    static func setMeta(_ db: Database, _ key: String, _ value: String?) throws {
        if let value {
            try db.cachedStatement(sql: "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").execute(arguments: [key, value])
        } else {
            try db.cachedStatement(sql: "DELETE FROM meta WHERE key = ?").execute(arguments: [key])
        }
    }

    /// Runs `body` in a read transaction, on the calling thread.
    ///
    /// Replica transactions are short (a few statements on a local file), so they run where they
    /// are called, not on GRDB's queue: its async access hops to the queue's thread and back, and
    /// the two hops cost more than the work (about a quarter of the R1 simulation's CPU).
    func read<T>(_ body: (Database) throws -> T) throws -> T { try self.pool.read(body) }

    /// Runs `body` in a write transaction, on the calling thread (see ``read(_:)``).
    func write<T>(_ body: (Database) throws -> T) throws -> T { try self.pool.write(body) }

    func meta(_ key: String) async throws -> String? {
        try self.read { db in try Self.meta(db, key) }
    }

    func setMeta(_ key: String, _ value: String?) async throws {
        try self.write { db in try Self.setMeta(db, key, value) }
    }

    // MARK: Records

    static func record(_ db: Database, _ collection: String, _ id: String) throws -> LocalRecord? {
        guard let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT view, deleted, base_version, pending FROM records WHERE collection = ? AND id = ? AND view IS NOT NULL"),
            arguments: [collection, id])
        else { return nil }
        return try Self.localRecord(collection: collection, id: id, row: row)
    }

    private static func localRecord(collection: String, id: String, row: Row) throws -> LocalRecord {
        LocalRecord(
            collection: collection, id: id,
            data: try Self.decodeFields(row["view"]) ?? [:],
            deleted: row["deleted"], version: row["base_version"], pending: row["pending"])
    }

    func record(_ collection: String, _ id: String) async throws -> LocalRecord? {
        try self.read { db in try Self.record(db, collection, id) }
    }

    func records(_ collection: String, includeDeleted: Bool = false) async throws -> [LocalRecord] {
        try self.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT id, view, deleted, base_version, pending FROM records WHERE collection = ? AND view IS NOT NULL"
                    + (includeDeleted ? "" : " AND deleted = 0") + " ORDER BY id",
                arguments: [collection])
            return try rows.map { try Self.localRecord(collection: collection, id: $0["id"], row: $0) }
        }
    }

    /// The id of a live record of a collection chosen by `index` (bookmark folders only, when
    /// `foldersOnly`), or `nil` when there is none; SQLite does the work (the simulation picks
    /// what to edit with it).
    func pickLive(_ collection: String, foldersOnly: Bool = false, index: UInt64) async throws -> String? {
        try self.read { db in
            // The key at `index % count` in the primary-key index (read from the index alone, no
            // row is loaded), then the first live match at or after it, wrapping around. Records
            // after a run of deleted ones are picked more often; the choice is still deterministic.
            let count = try Int.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM records WHERE collection = ?"), arguments: [collection]) ?? 0
            guard count > 0,
                let pivot = try String.fetchOne(
                    db.cachedStatement(sql: "SELECT id FROM records WHERE collection = ? ORDER BY id LIMIT 1 OFFSET ?"),
                    arguments: [collection, Int(index % UInt64(count))])
            else { return nil }
            let filter = "view IS NOT NULL AND deleted = 0" + (foldersOnly ? " AND json_extract(view, '$.isFolder') = 1" : "")
            if let id = try String.fetchOne(
                db.cachedStatement(sql: "SELECT id FROM records WHERE collection = ? AND id >= ? AND \(filter) ORDER BY id LIMIT 1"),
                arguments: [collection, pivot])
            {
                return id
            }
            return try String.fetchOne(
                db.cachedStatement(sql: "SELECT id FROM records WHERE collection = ? AND id < ? AND \(filter) ORDER BY id LIMIT 1"),
                arguments: [collection, pivot])
        }
    }

    /// The server versions this replica knows for records (0 for unknown ones).
    func knownVersions(_ keys: [(collection: String, id: String)]) async throws -> [Int64] {
        try self.read { db in
            try keys.map {
                try Int64.fetchOne(
                    db.cachedStatement(sql: "SELECT base_version FROM records WHERE collection = ? AND id = ?"), arguments: [$0.collection, $0.id]) ?? 0
            }
        }
    }

    /// The server state (base) of a record.
    private static func base(_ db: Database, _ collection: String, _ id: String) throws -> (RecordState, Int64) {
        guard let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT base, base_deleted, base_version FROM records WHERE collection = ? AND id = ?"), arguments: [collection, id])
        else { return (.absent, 0) }
        return (RecordState(data: try Self.decodeFields(row["base"]), deleted: row["base_deleted"]), row["base_version"])
    }

    /// Stores a record's server state (when given) and recomputes its view: the base with every
    /// pending op of the record applied in order.
    @discardableResult
    static func rebase(_ db: Database, _ collection: String, _ id: String, base newBase: (RecordState, Int64)? = nil) throws -> LocalRecord? {
        let (base, version) = try newBase ?? Self.base(db, collection, id)
        let ops = try String.fetchAll(
            db.cachedStatement(sql: "SELECT op FROM outbox WHERE collection = ? AND record_id = ? ORDER BY seq"), arguments: [collection, id])
        var view = base
        for text in ops {
            guard let op = try Self.decode(SyncOperation.self, text) else { continue }
            view = OperationFold.apply(op, to: view)
        }
        // Without pending ops the view is the base: encode it once.
        let baseText = base.data.map { Self.encode($0) }
        let viewText = ops.isEmpty ? baseText : view.data.map { Self.encode($0) }
        try db.cachedStatement(
            sql: """
                INSERT INTO records (collection, id, base, base_version, base_deleted, view, deleted, pending, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(collection, id) DO UPDATE SET base = excluded.base, base_version = excluded.base_version,
                    base_deleted = excluded.base_deleted, view = excluded.view, deleted = excluded.deleted,
                    pending = excluded.pending, updated_at = excluded.updated_at
                """
        ).execute(arguments: [collection, id, baseText, version, base.deleted, viewText, view.deleted, !ops.isEmpty, Self.now])
        // The record as `record(_:_:_:)` would read it back, without reading and decoding it again.
        guard let data = view.data else { return nil }
        return LocalRecord(collection: collection, id: id, data: data, deleted: view.deleted, version: version, pending: !ops.isEmpty)
    }

    // MARK: Outbox

    /// Appends `ops` to the outbox and applies them to the views, in one transaction.
    func enqueue(_ ops: [SyncOperation]) async throws -> [RecordEvent] {
        try self.write { db in try Self.enqueue(db, ops) }
    }

    static func enqueue(_ db: Database, _ ops: [SyncOperation]) throws -> [RecordEvent] {
        var events: [RecordEvent] = []
        for op in ops {
            guard let id = op.id else { throw CairnClientError.invalid("an operation needs an id") }
            try db.cachedStatement(sql: "INSERT INTO outbox (op_id, collection, record_id, op, created_at) VALUES (?, ?, ?, ?, ?)")
                .execute(arguments: [op.opId, op.collection, id, Self.encode(op), Self.now])
            let record = try Self.rebase(db, op.collection, id)
            events.append(RecordEvent(collection: op.collection, id: id, origin: .local, record: record))
        }
        return events
    }

    /// The oldest pending operations (of `collections`, when given).
    func pending(limit: Int, collections: [String]?) async throws -> [PendingOperation] {
        try self.read { db in
            var sql = "SELECT seq, op FROM outbox"
            var arguments: StatementArguments = []
            if let collections {
                sql += " WHERE collection IN (\(collections.map { _ in "?" }.joined(separator: ",")))"
                arguments = StatementArguments(collections)
            }
            sql += " ORDER BY seq LIMIT ?"
            arguments += [limit]
            // Without a collection filter the text is always the same: keep it prepared.
            let statement = collections == nil ? try db.cachedStatement(sql: sql) : try db.makeStatement(sql: sql)
            return try Row.fetchAll(statement, arguments: arguments).compactMap { row in
                try Self.decode(SyncOperation.self, row["op"]).map { PendingOperation(seq: row["seq"], op: $0) }
            }
        }
    }

    func pendingCount() async throws -> Int {
        try self.read { db in try Int.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM outbox")) ?? 0 }
    }

    /// The version the next op on a record should name: the record's server version when no other
    /// op of it is pending (a causal write), else `nil` (the earlier op changes the version; the
    /// later stamp orders the two).
    static func expectedVersion(_ db: Database, _ collection: String, _ id: String) throws -> Int64? {
        let pending = try Bool.fetchOne(
            db.cachedStatement(sql: "SELECT EXISTS(SELECT 1 FROM outbox WHERE collection = ? AND record_id = ?)"), arguments: [collection, id]) ?? false
        if pending { return nil }
        let version = try Int64.fetchOne(
            db.cachedStatement(sql: "SELECT base_version FROM records WHERE collection = ? AND id = ?"), arguments: [collection, id]) ?? 0
        return version > 0 ? version : nil
    }

    // MARK: Push and pull results

    /// What applying a push's results found.
    struct PushOutcome: Sendable {
        var acknowledged = 0
        var conflicts: [(op: SyncOperation, result: OperationResult)] = []
        var rejected: [OperationResult] = []
        var events: [RecordEvent] = []
    }

    /// Removes acknowledged ops from the outbox and records what the server said about each, in
    /// one transaction.
    func applyPushResults(_ ops: [SyncOperation], _ results: [OperationResult]) async throws -> PushOutcome {
        try self.write { db in
            var outcome = PushOutcome()
            let byOpId = Dictionary(ops.map { ($0.opId, $0) }, uniquingKeysWith: { first, _ in first })
            for result in results {
                guard let op = byOpId[result.opId], let id = op.id else { continue }
                if result.status == .rejected, result.error?.code == CairnError.Code.syncFailed.rawValue {
                    continue  // an atomic batch rolled back: the op stays queued
                }
                try db.cachedStatement(sql: "DELETE FROM outbox WHERE op_id = ?").execute(arguments: [op.opId])
                outcome.acknowledged += 1
                var (base, version) = try Self.base(db, op.collection, id)
                // The server state this device knows only moves forward: an answer about a version
                // older than the known one (a pull got there first) changes nothing. A
                // `duplicate` answer is the first attempt's result, not today's state, so it only
                // dequeues the op; the pull that follows brings the current state.
                switch result.status {
                case .applied:
                    if let resultVersion = result.version, resultVersion > version {
                        base = OperationFold.apply(op, to: base)
                        version = resultVersion
                    }
                case .merged, .conflict:
                    if let record = result.record {
                        let (state, recordVersion) = OperationFold.serverState(collection: op.collection, record: record)
                        let answered = recordVersion ?? result.version ?? 0
                        if answered >= version {
                            base = state
                            version = answered
                        }
                    }
                    if result.status == .conflict { outcome.conflicts.append((op, result)) }
                case .rejected:
                    outcome.rejected.append(result)
                case .duplicate:
                    if result.originalStatus == .conflict { outcome.conflicts.append((op, result)) }
                    if result.originalStatus == .rejected { outcome.rejected.append(result) }
                }
                let record = try Self.rebase(db, op.collection, id, base: (base, version))
                outcome.events.append(RecordEvent(collection: op.collection, id: id, origin: .local, record: record))
            }
            return outcome
        }
    }

    /// Applies pulled changes and moves the cursor, in one transaction.
    func applyPull(_ changes: [RecordChange], cursor: Int64) async throws -> [RecordEvent] {
        try self.write { db in
            var events: [RecordEvent] = []
            for change in changes {
                let known = try Int64.fetchOne(
                    db.cachedStatement(sql: "SELECT base_version FROM records WHERE collection = ? AND id = ?"), arguments: [change.collection, change.id]) ?? 0
                // Never move a record's known state backwards (a push answer got there first).
                if change.version < known { continue }
                let state = RecordState(data: change.data.objectValue ?? [:], deleted: change.deleted)
                let record = try Self.rebase(db, change.collection, change.id, base: (state, change.version))
                // A change this device already knows (the echo of its own acknowledged push) is
                // stored but not reported as news.
                if change.version > known {
                    events.append(RecordEvent(collection: change.collection, id: change.id, origin: .remote, record: record))
                }
            }
            try Self.setMeta(db, "cursor", String(cursor))
            return events
        }
    }

    /// After a resync from 0 (a `410`): every record the server once sent that was not in the
    /// resync (`kept`) no longer exists there, its tombstone purged. Its server state becomes
    /// absent; a record with pending ops keeps what they make of nothing (a create stays, an
    /// update of the gone record is the server's to refuse), one without is removed.
    func dropServerRecords(except kept: Set<ReplicaKey>, collections: [String]?) async throws -> [RecordEvent] {
        try self.write { db in
            var events: [RecordEvent] = []
            let rows = try Row.fetchAll(db, sql: "SELECT collection, id FROM records WHERE base_version > 0")
            for row in rows {
                let key = ReplicaKey(collection: row[0], id: row[1])
                if kept.contains(key) { continue }
                if let collections, !collections.contains(key.collection) { continue }
                let record = try Self.rebase(db, key.collection, key.id, base: (.absent, 0))
                try db.execute(
                    sql: "DELETE FROM records WHERE collection = ? AND id = ? AND view IS NULL AND pending = 0",
                    arguments: [key.collection, key.id])
                events.append(RecordEvent(collection: key.collection, id: key.id, origin: .remote, record: record))
            }
            return events
        }
    }

    /// After a switch of server or profile: forgets every server marker (versions, cursor) and
    /// replaces the outbox with one full-state write per live record, so everything is pushed to
    /// the new target once. Bookmark folders come before their children.
    func resetForNewTarget(node: String, clock: LocalClock) async throws -> Int {
        try self.write { db in
            try db.execute(sql: "DELETE FROM outbox")
            try db.execute(sql: "DELETE FROM meta WHERE key = 'cursor'")
            let rows = try Row.fetchAll(db, sql: "SELECT collection, id, view FROM records WHERE view IS NOT NULL AND deleted = 0")
            var live: [(String, String, [String: JSONValue])] = try rows.map {
                ($0["collection"], $0["id"], try Self.decodeFields($0["view"]) ?? [:])
            }
            live = BookmarkOrdering.parentsFirst(live)
            try db.execute(sql: "UPDATE records SET base = NULL, base_version = 0, base_deleted = 0")
            try db.execute(sql: "DELETE FROM records WHERE view IS NULL OR deleted = 1")
            var ops: [SyncOperation] = []
            for (collection, id, data) in live {
                if collection == OperationFold.bookmarks && Bookmark.isRoot(id) {
                    // The roots exist on every server; keep the local names as the base.
                    try db.execute(
                        sql: "UPDATE records SET base = view WHERE collection = ? AND id = ?", arguments: [collection, id])
                    continue
                }
                ops.append(Self.fullStateOp(collection: collection, id: id, data: data, stamp: clock.next(), node: node))
            }
            _ = try Self.enqueue(db, ops)
            return ops.count
        }
    }

    /// An `upsert` carrying a record's whole state (bookmarks: their fields and placement).
    static func fullStateOp(collection: String, id: String, data: [String: JSONValue], stamp: HLC, node: String) -> SyncOperation {
        if collection == OperationFold.bookmarks {
            var fields: [String: JSONValue] = [:]
            for key in ["title", "url", "isFolder", "tags", "notes", "favicon", "dateAdded"] where data[key] != nil && data[key] != .null {
                fields[key] = data[key]
            }
            return SyncOperation(
                opId: "\(node)-\(UUID().uuidString.lowercased())", type: .upsert, collection: collection, id: id,
                data: .object(fields), parentId: data["parentId"] ?? "other", position: data["position"]?.stringValue, hlc: stamp)
        }
        return SyncOperation(
            opId: "\(node)-\(UUID().uuidString.lowercased())", type: .upsert, collection: collection, id: id, data: .object(data), hlc: stamp)
    }

    /// Deletes the replica's files.
    static func destroy(at path: URL) {
        for suffix in ["", "-wal", "-shm", ".lock"] {
            try? FileManager.default.removeItem(atPath: path.path + suffix)
        }
    }
}

/// Orders records so that every bookmark folder comes before what it contains.
enum BookmarkOrdering {
    static func parentsFirst(_ records: [(String, String, [String: JSONValue])]) -> [(String, String, [String: JSONValue])] {
        let others = records.filter { $0.0 != OperationFold.bookmarks }
        let marks = records.filter { $0.0 == OperationFold.bookmarks }
        var children: [String: [(String, String, [String: JSONValue])]] = [:]
        var ids = Set<String>()
        for record in marks { ids.insert(record.1) }
        var roots: [(String, String, [String: JSONValue])] = []
        for record in marks {
            if let parent = record.2["parentId"]?.stringValue, ids.contains(parent) {
                children[parent, default: []].append(record)
            } else {
                roots.append(record)
            }
        }
        var ordered: [(String, String, [String: JSONValue])] = []
        var queue = roots.sorted { ($0.2["position"]?.stringValue ?? "", $0.1) < ($1.2["position"]?.stringValue ?? "", $1.1) }
        var index = 0
        while index < queue.count {
            let record = queue[index]
            index += 1
            ordered.append(record)
            queue += (children[record.1] ?? []).sorted {
                ($0.2["position"]?.stringValue ?? "", $0.1) < ($1.2["position"]?.stringValue ?? "", $1.1)
            }
        }
        return ordered + others
    }
}
