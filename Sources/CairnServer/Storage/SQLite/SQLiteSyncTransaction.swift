import CairnCore
import Foundation
import GRDB

/// `SyncTransaction` over one GRDB connection, used only inside a `write` or `read` closure.
/// Statements are cached per connection, so a batch of 1,000 ops prepares each SQL once.
final class SQLiteSyncTransaction: SyncTransaction {
    /// The connection, for everything but the inserts every pushed op makes: first waits until the
    /// write-behind thread has run the ones handed to it (and throws the error of one that failed).
    var db: Database {
        get throws {
            try self.writeBehind?.drain()
            return self.connection
        }
    }
    private let connection: Database
    /// The thread that runs this transaction's hot inserts, for a push of many ops.
    private let writeBehind: WriteBehind?
    /// Set when this transaction deleted a profile: the store then forgets the profiles it
    /// resolved from memory.
    private(set) var deletedProfile = false

    /// A transaction (or a read) whose inserts run on its caller's thread.
    init(_ db: Database) {
        self.connection = db
        self.writeBehind = nil
    }

    /// With `writeBehind`, the hot inserts run on that thread (``WriteBehind``): they are prepared
    /// now, before it may use the connection. The transaction must end with `finishWrites`
    /// (before it commits) or `abandonWrites` (before it rolls back).
    init(_ db: Database, writeBehind: WriteBehind?) throws {
        self.connection = db
        self.writeBehind = writeBehind
        guard let writeBehind else { return }
        writeBehind.begin()
        do {
            _ = try self.hot(&self.insertRecordStatement, Self.insertRecordSQL)
            _ = try self.hot(&self.upsertRecordStatement, Self.upsertRecordSQL)
            _ = try self.hot(&self.saveOpResultStatement, Self.saveOpResultSQL)
        } catch {
            writeBehind.abandon()
            throw error
        }
    }

    /// The body of the transaction is done: waits for its inserts, throwing the first one's error.
    func finishWrites() throws {
        try self.writeBehind?.finish()
    }

    /// The transaction is being rolled back: drops the inserts not yet run and waits for the one
    /// under way. Returns the error of an insert that failed (the cause of the rollback).
    @discardableResult
    func abandonWrites() -> (any Error)? {
        self.writeBehind?.abandon()
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static func encode(_ value: some Encodable) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try JSONValueDecoder().decode(T.self, from: JSONValue.parse(text))
    }

    /// The JSON text of record data (the direct writer, not `JSONEncoder`).
    static func encodeObject(_ object: [String: JSONValue]) -> String {
        JSONValue.jsonText(object)
    }

    /// Record data from its stored JSON text (`[:]` if it is not an object).
    static func decodeObject(_ text: String) -> [String: JSONValue] {
        (try? JSONValue.parseObject(text)) ?? [:]
    }

    /// `{"field": "<stamp>|<version>", …}`, written straight into bytes: it runs for every stored
    /// write, and building a `JSONValue` of strings first was a twentieth of a push's CPU.
    ///
    /// A field of the data whose stamp and version are the record's own (every field of a new
    /// record, and each field the last change wrote) is left out, and `init(row:)` gives it the
    /// record's stamp and version back: a create stores `{}` instead of ~50 bytes per field.
    /// Stamps of fields that are not in the data (removed ones, `_deleted`) are always written.
    static func encodeStamps(_ record: StoredRecord) -> String {
        Self.stampsAreAllTheRecords(record) ? "{}" : Self.encodeStampsFieldByField(record)
    }

    /// Whether every stamp is left out: one per data field, each the record's HLC and version. A
    /// new record's stamps are built from its data (`mapValues`), and its versions from its
    /// stamps, so their keys come in the same order: checked by walking the three dictionaries
    /// side by side, without a lookup per field (those lookups were most of a pushed create's
    /// stamp encoding). Dictionaries that hold the same keys in another order take the slow path.
    static func stampsAreAllTheRecords(_ record: StoredRecord) -> Bool {
        guard record.fieldStamps.count == record.data.count,
            record.fieldVersions.isEmpty || record.fieldVersions.count == record.fieldStamps.count
        else { return false }
        for stamp in record.fieldStamps.values where stamp != record.hlc { return false }
        for version in record.fieldVersions.values where version != record.version { return false }
        guard record.fieldStamps.keys.elementsEqual(record.data.keys) else { return false }
        return record.fieldVersions.isEmpty || record.fieldVersions.keys.elementsEqual(record.fieldStamps.keys)
    }

    /// `encodeStamps` field by field: each stamp written unless it is a data field's with the
    /// record's HLC and version.
    static func encodeStampsFieldByField(_ record: StoredRecord) -> String {
        var bytes: [UInt8] = [UInt8(ascii: "{")]
        var scratch: [UInt8] = []
        for (field, stamp) in record.fieldStamps {
            let version = record.fieldVersions[field] ?? record.version
            if stamp == record.hlc, version == record.version, record.data[field] != nil { continue }
            if bytes.count > 1 { bytes.append(UInt8(ascii: ",")) }
            JSONWriter.writeString(field, to: &bytes)
            bytes.append(UInt8(ascii: ":"))
            scratch.removeAll(keepingCapacity: true)
            stamp.write(to: &scratch)
            scratch.append(UInt8(ascii: "|"))
            scratch.append(contentsOf: String(version).utf8)
            JSONWriter.writeString(bytes: scratch, to: &bytes)
        }
        bytes.append(UInt8(ascii: "}"))
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The stamps and versions `encodeStamps` wrote, with the ones it left out given back: each
    /// field of `data` without a stored stamp has the record's `hlc` and `version`.
    static func decodeStamps(
        _ text: String, data: [String: JSONValue], hlc: HLC, version: Int64
    ) -> (stamps: [String: HLC], versions: [String: Int64]) {
        var stamps: [String: HLC] = [:]
        var versions: [String: Int64] = [:]
        for (field, stored) in decodeObject(text) {
            guard let value = stored.stringValue else { continue }
            if let bar = value.lastIndex(of: "|"), let stamp = HLC(String(value[..<bar])) {
                stamps[field] = stamp
                versions[field] = Int64(value[value.index(after: bar)...])
            } else if let stamp = HLC(value) {
                stamps[field] = stamp
            }
        }
        for field in data.keys where stamps[field] == nil {
            stamps[field] = hlc
            versions[field] = version
        }
        return (stamps, versions)
    }

    // MARK: Reads

    func profileState(_ profileId: String) throws -> StoredProfile? {
        try Row.fetchOne(self.db.cachedStatement(sql: "SELECT * FROM profiles WHERE id = ? AND deleted_at IS NULL"), arguments: [profileId])
            .map(StoredProfile.init(row:))
    }

    func record(_ profileId: String, _ collection: String, _ id: String) throws -> StoredRecord? {
        try Row.fetchOne(
            self.db.cachedStatement(sql: "SELECT \(StoredRecord.columns) FROM records WHERE profile_id = ? AND collection = ? AND id = ?"),
            arguments: [profileId, collection, id]
        ).map { StoredRecord(row: $0) }
    }

    func records(_ profileId: String, _ collection: String, ids: [String]) throws -> [String: StoredRecord] {
        var found: [String: StoredRecord] = [:]
        for record in try self.fetchRecords(
            self.db.cachedStatement(
                sql: """
                    SELECT \(StoredRecord.columns) FROM records
                    WHERE profile_id = ? AND collection = ? AND id IN (SELECT value FROM json_each(?))
                    """),
            [profileId, collection, Self.jsonList(ids)]
        ) {
            found[record.id] = record
        }
        return found
    }

    /// A list of strings as one JSON array argument, for `IN (SELECT value FROM json_each(?))`:
    /// one prepared statement serves a list of any length (a statement per length, prepared for
    /// each push, was 3% of a push).
    static func jsonList(_ values: [String]) -> String {
        // Written directly: a `JSONValue` array of them first cost an allocation per value.
        var bytes: [UInt8] = [UInt8(ascii: "[")]
        bytes.reserveCapacity(values.reduce(2) { $0 + $1.utf8.count + 3 })
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            JSONWriter.writeString(value, to: &bytes)
        }
        bytes.append(UInt8(ascii: "]"))
        return String(decoding: bytes, as: UTF8.self)
    }

    func children(_ profileId: String, _ collection: String, parentId: String?, includeDeleted: Bool) throws -> [StoredRecord] {
        let deletedClause = includeDeleted ? "" : " AND deleted = 0"
        if let parentId {
            return try self.fetchRecords(
                self.db.cachedStatement(
                    sql: "SELECT \(StoredRecord.columns) FROM records WHERE profile_id = ? AND collection = ? AND parent_id = ?\(deletedClause) ORDER BY position, id"
                ),
                [profileId, collection, parentId]
            )
        }
        return try self.fetchRecords(
            self.db.cachedStatement(
                sql: "SELECT \(StoredRecord.columns) FROM records WHERE profile_id = ? AND collection = ? AND parent_id IS NULL\(deletedClause) ORDER BY position, id"
            ),
            [profileId, collection]
        )
    }

    func allRecords(_ profileId: String, _ collection: String, includeDeleted: Bool) throws -> [StoredRecord] {
        let deletedClause = includeDeleted ? "" : " AND deleted = 0"
        return try self.fetchRecords(
            self.db.cachedStatement(sql: "SELECT \(StoredRecord.columns) FROM records WHERE profile_id = ? AND collection = ?\(deletedClause)"),
            [profileId, collection]
        )
    }

    func changedRecords(_ profileId: String, since: Int64, collections: [String]?, limit: Int) throws -> [StoredRecord] {
        let (statement, arguments) = try self.changedStatement(profileId, since: since, collections: collections, limit: limit)
        return try self.fetchRecords(statement, arguments)
    }

    func changedRows(_ profileId: String, since: Int64, collections: [String]?, limit: Int) throws -> [ChangedRow] {
        let (statement, arguments) = try self.changedStatement(profileId, since: since, collections: collections, limit: limit, columns: ChangedRow.columns)
        var found: [ChangedRow] = []
        let rows = try Row.fetchCursor(statement, arguments: arguments)
        while let row = try rows.next() {
            found.append(ChangedRow(row: row, profileId: profileId))
        }
        return found
    }

    /// `SELECT columns` (by default ``StoredRecord/columns``) of the records changed after
    /// `since`, oldest first.
    private func changedStatement(
        _ profileId: String, since: Int64, collections: [String]?, limit: Int, columns: String = StoredRecord.columns
    ) throws -> (Statement, StatementArguments) {
        if let collections, !collections.isEmpty {
            let placeholders = Array(repeating: "?", count: collections.count).joined(separator: ",")
            return (
                try self.db.cachedStatement(
                    sql: """
                        SELECT \(columns) FROM records WHERE profile_id = ? AND version > ? AND collection IN (\(placeholders))
                        ORDER BY version LIMIT ?
                        """),
                StatementArguments([profileId]) + StatementArguments([since]) + StatementArguments(collections) + StatementArguments([limit])
            )
        }
        return (
            try self.db.cachedStatement(sql: "SELECT \(columns) FROM records WHERE profile_id = ? AND version > ? ORDER BY version LIMIT ?"),
            [profileId, since, limit]
        )
    }

    /// The records a statement selects (``StoredRecord/columns``), each built from the row as
    /// SQLite steps to it: no copy of every row is made first (a fifth of a large pull's cost).
    func fetchRecords(_ statement: Statement, _ arguments: StatementArguments) throws -> [StoredRecord] {
        var records: [StoredRecord] = []
        let rows = try Row.fetchCursor(statement, arguments: arguments)
        while let row = try rows.next() {
            records.append(StoredRecord(row: row))
        }
        return records
    }

    func opResult(_ profileId: String, _ opId: String) throws -> StoredOpResult? {
        guard let row = try Row.fetchOne(
            self.db.cachedStatement(sql: "SELECT payload_hash, result, seq, created_at FROM applied_ops WHERE profile_id = ? AND op_id = ?"),
            arguments: [profileId, opId]
        ) else { return nil }
        let text: String = row[1]
        return StoredOpResult(
            profileId: profileId, opId: opId, payloadHash: row[0],
            result: text.isEmpty ? nil : try Self.decode(OperationResult.self, text), version: row[2], createdAt: row[3]
        )
    }

    func storedOpIds(_ profileId: String, among opIds: [String]) throws -> Set<String> {
        Set(
            try String.fetchAll(
                self.db.cachedStatement(sql: "SELECT op_id FROM applied_ops WHERE profile_id = ? AND op_id IN (SELECT value FROM json_each(?))"),
                arguments: [profileId, Self.jsonList(opIds)]
            )
        )
    }

    func conflicts(_ profileId: String, includeResolved: Bool, limit: Int) throws -> [StoredConflict] {
        let clause = includeResolved ? "" : " AND resolved_at IS NULL"
        return try Row.fetchAll(
            self.db,
            sql: "SELECT * FROM conflicts WHERE profile_id = ?\(clause) ORDER BY id DESC LIMIT ?",
            arguments: [profileId, limit]
        ).map { row in
            let client: String = row["client_data"]
            let server: String? = row["server_data"]
            return StoredConflict(
                id: row["id"], collection: row["collection"], recordId: row["record_id"], opId: row["op_id"],
                clientData: (try? JSONValue.parse(client)) ?? .null,
                serverData: server.flatMap { try? JSONValue.parse($0) }, serverVersion: row["server_version"],
                createdAt: row["created_at"], resolvedAt: row["resolved_at"]
            )
        }
    }

    func siblingIds(_ profileId: String, _ collection: String, parentId: String?) throws -> [String] {
        try String.fetchAll(
            self.db.cachedStatement(
                sql: "SELECT id FROM records WHERE profile_id = ? AND collection = ? AND parent_id IS ? AND deleted = 0 ORDER BY position, id"
            ),
            arguments: [profileId, collection, parentId]
        )
    }

    func siblingSlice(_ profileId: String, _ collection: String, parentId: String?, excluding: String?, offset: Int, limit: Int) throws -> [SiblingKey] {
        try Row.fetchAll(
            self.db.cachedStatement(
                sql: """
                    SELECT id, position FROM records
                    WHERE profile_id = ? AND collection = ? AND parent_id IS ? AND deleted = 0 AND id IS NOT ?
                    ORDER BY position, id LIMIT ? OFFSET ?
                    """
            ),
            arguments: [profileId, collection, parentId, excluding, limit, offset]
        ).map { SiblingKey(id: $0[0], position: $0[1] ?? "") }
    }

    func siblingNext(_ profileId: String, _ collection: String, parentId: String?, excluding: String?, after key: SiblingKey, forward: Bool) throws -> SiblingKey? {
        let sql =
            forward
            ? """
            SELECT id, position FROM records
            WHERE profile_id = ? AND collection = ? AND parent_id IS ? AND deleted = 0 AND id IS NOT ?
              AND (position > ? OR (position = ? AND id > ?))
            ORDER BY position, id LIMIT 1
            """
            : """
            SELECT id, position FROM records
            WHERE profile_id = ? AND collection = ? AND parent_id IS ? AND deleted = 0 AND id IS NOT ?
              AND (position < ? OR (position = ? AND id < ?))
            ORDER BY position DESC, id DESC LIMIT 1
            """
        return try Row.fetchOne(
            self.db.cachedStatement(sql: sql),
            arguments: [profileId, collection, parentId, excluding, key.position, key.position, key.id]
        ).map { SiblingKey(id: $0[0], position: $0[1] ?? "") }
    }

    func lastSibling(_ profileId: String, _ collection: String, parentId: String?, excluding: String?) throws -> SiblingKey? {
        try Row.fetchOne(
            self.db.cachedStatement(
                sql: """
                    SELECT id, position FROM records
                    WHERE profile_id = ? AND collection = ? AND parent_id IS ? AND deleted = 0 AND id IS NOT ?
                    ORDER BY position DESC, id DESC LIMIT 1
                    """
            ),
            arguments: [profileId, collection, parentId, excluding]
        ).map { SiblingKey(id: $0[0], position: $0[1] ?? "") }
    }

    func siblingIndex(_ profileId: String, _ collection: String, parentId: String?, key: SiblingKey) throws -> Int {
        try Int.fetchOne(
            self.db.cachedStatement(
                // Two counts, each a bounded range of the sibling index. The single
                // `position < ? OR (position = ? AND id < ?)` count walked every sibling of the
                // folder (without statistics, SQLite bounded the range by the parent alone).
                sql: """
                    SELECT (SELECT COUNT(*) FROM records
                            WHERE profile_id = ?1 AND collection = ?2 AND parent_id IS ?3 AND deleted = 0 AND position < ?4)
                         + (SELECT COUNT(*) FROM records
                            WHERE profile_id = ?1 AND collection = ?2 AND parent_id IS ?3 AND deleted = 0 AND position = ?4 AND id < ?5)
                    """
            ),
            arguments: [profileId, collection, parentId, key.position, key.id]
        ) ?? 0
    }

    func recordsUpdated(_ profileId: String, collections: [String], since: Int64, limit: Int) throws -> [StoredRecord] {
        guard !collections.isEmpty else { return [] }
        let placeholders = Array(repeating: "?", count: collections.count).joined(separator: ",")
        return try Row.fetchAll(
            self.db,
            sql: """
                SELECT \(StoredRecord.columns) FROM records WHERE profile_id = ? AND collection IN (\(placeholders)) AND updated_at >= ?
                ORDER BY updated_at, version LIMIT ?
                """,
            arguments: StatementArguments([profileId]) + StatementArguments(collections) + StatementArguments([since]) + StatementArguments([limit])
        ).map { StoredRecord(row: $0) }
    }

    func newestUpdate(_ profileId: String, collections: [String]) throws -> Int64? {
        guard !collections.isEmpty else { return nil }
        let placeholders = Array(repeating: "?", count: collections.count).joined(separator: ",")
        return try Int64.fetchOne(
            self.db,
            sql: "SELECT MAX(updated_at) FROM records WHERE profile_id = ? AND collection IN (\(placeholders))",
            arguments: StatementArguments([profileId]) + StatementArguments(collections)
        )
    }

    func markProfileDeleted(_ profileId: String, at: Int64) throws {
        self.deletedProfile = true
        try self.db.execute(
            sql: "UPDATE profiles SET deleted_at = ?, name = name || '#deleted-' || ? WHERE id = ? AND deleted_at IS NULL",
            arguments: [at, at, profileId]
        )
    }

    func changeTime(_ profileId: String, version: Int64) throws -> Int64? {
        try Int64.fetchOne(
            self.db.cachedStatement(sql: "SELECT updated_at FROM records WHERE profile_id = ? AND version = ?"), arguments: [profileId, version])
    }

    func searchIndexState(_ profileId: String) throws -> (indexed: Int64, seq: Int64)? {
        try Row.fetchOne(self.db.cachedStatement(sql: "SELECT search_seq, seq FROM profiles WHERE id = ? AND deleted_at IS NULL"), arguments: [profileId])
            .map { (indexed: $0[0], seq: $0[1]) }
    }

    func searchBookmarks(_ profileId: String, match: String, limit: Int, offset: Int) throws -> (hits: [SearchHit], total: Int) {
        let total = try Int.fetchOne(self.db, sql: Self.searchCountSQL, arguments: [match, profileId]) ?? 0
        let hits = try Row.fetchAll(self.db, sql: Self.searchHitsSQL, arguments: [match, profileId, limit, offset])
            .map { SearchHit(recordId: $0["id"], rank: $0["rank"]) }
        return (hits, total)
    }

    // Both search queries run the full-text match first and look each hit's profile up by rowid:
    // `CROSS JOIN` fixes that order. Left to choose, SQLite counted by walking the profile's map
    // rows and evaluating the whole match once per row: 11 s to count 10,000 hits, against 3 ms.

    static let searchCountSQL = """
        SELECT COUNT(*) FROM bookmark_search CROSS JOIN bookmark_search_map m ON m.rowid = bookmark_search.rowid
        WHERE bookmark_search MATCH ? AND m.profile_id = ?
        """

    static let searchHitsSQL = """
        SELECT m.record_id AS id, bm25(bookmark_search, 10.0, 3.0, 5.0, 1.0) AS rank
        FROM bookmark_search CROSS JOIN bookmark_search_map m ON m.rowid = bookmark_search.rowid
        WHERE bookmark_search MATCH ? AND m.profile_id = ?
        ORDER BY rank, m.record_id LIMIT ? OFFSET ?
        """

    // MARK: Writes

    // The savepoint statements stay prepared (GRDB's `inSavepoint` prepares them again each
    // time, and a push can open one per op).

    func beginSavepoint() throws {
        try self.db.cachedStatement(sql: "SAVEPOINT op").execute()
    }

    func releaseSavepoint() throws {
        try self.db.cachedStatement(sql: "RELEASE SAVEPOINT op").execute()
    }

    func rollbackSavepoint() throws {
        try self.db.cachedStatement(sql: "ROLLBACK TO SAVEPOINT op").execute()
        try self.db.cachedStatement(sql: "RELEASE SAVEPOINT op").execute()
    }

    func setSequence(_ profileId: String, _ seq: Int64) throws {
        try self.db.cachedStatement(sql: "UPDATE profiles SET seq = ? WHERE id = ? AND seq < ?").execute(arguments: [seq, profileId, seq])
    }

    func saveRecord(_ record: StoredRecord, isNew: Bool, encodedData: String?) throws {
        // A new record is a plain insert: the upsert's conflict check is a second seek of the
        // primary key, and made inserting a fifth slower.
        let statement = isNew
            ? try self.hot(&self.insertRecordStatement, Self.insertRecordSQL)
            : try self.hot(&self.upsertRecordStatement, Self.upsertRecordSQL)
        // The record's texts are written here, on the engine's thread: with a push's inserts on the
        // write-behind thread that is the longer side, and writing them there made the engine wait
        // for it at the end of each push (docs/benchmarks.md, session 17).
        let data = encodedData ?? Self.encodeObject(record.data)
        let stamps = Self.encodeStamps(record)
        let hlc = record.hlc.description
        try self.runInsert(statement) { insert in
            insert.bind(record.profileId)
            insert.bind(record.collection)
            insert.bind(record.id)
            insert.bind(record.version)
            insert.bind(data)
            insert.bind(stamps)
            insert.bind(hlc)
            insert.bind(record.parentId)
            insert.bind(record.position)
            insert.bind(record.createdAt)
            insert.bind(record.updatedAt)
            insert.bind(record.deleted)
            insert.bind(record.deletedAt)
            insert.bind(record.createdSeq)
            insert.bind(record.clientId)
        }
    }

    // The statements every pushed op runs, looked up in GRDB's cache once per transaction (the
    // cache is keyed by the SQL text, hashed whole on every lookup).
    private var insertRecordStatement: HotStatement?
    private var upsertRecordStatement: HotStatement?
    private var saveOpResultStatement: HotStatement?

    /// One of those statements: GRDB's (which keeps SQLite's handle alive) and SQLite's handle.
    private struct HotStatement {
        let statement: Statement
        let prepared: PreparedInsert
    }

    private func hot(_ slot: inout HotStatement?, _ sql: String) throws -> PreparedInsert {
        if let hot = slot { return hot.prepared }
        let db = try self.db
        let statement = try db.cachedStatement(sql: sql)
        let hot = HotStatement(statement: statement, prepared: PreparedInsert(statement, db, sql: sql))
        slot = hot
        return hot.prepared
    }

    /// Runs one of the hot inserts: on the write-behind thread when there is one (its error then
    /// comes back from a later use of the connection), else here. `bind` binds its values in
    /// order, on that thread: it may use only what it captured.
    private func runInsert(_ statement: PreparedInsert, _ bind: @escaping @Sendable (inout DirectStatement) -> Void) throws {
        let insert: WriteBehind.Insert = {
            var insert = DirectStatement(statement)
            bind(&insert)
            try insert.run()
        }
        if let writeBehind {
            try writeBehind.submit(insert)
        } else {
            try insert()
        }
    }

    static let insertRecordSQL = """
        INSERT INTO records (profile_id, collection, id, version, data, field_stamps, hlc, parent_id, position,
                             created_at, updated_at, deleted, deleted_at, created_seq, client_id)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

    static let upsertRecordSQL = insertRecordSQL + """

        ON CONFLICT (profile_id, collection, id) DO UPDATE SET
          version = excluded.version, data = excluded.data, field_stamps = excluded.field_stamps, hlc = excluded.hlc,
          parent_id = excluded.parent_id, position = excluded.position, updated_at = excluded.updated_at,
          deleted = excluded.deleted, deleted_at = excluded.deleted_at, client_id = excluded.client_id
        """

    func saveOpResult(_ result: StoredOpResult) throws {
        // An op's plain result is stored as an empty text (`StoredOpResult.result`). Any other's
        // JSON is written here, not on the write-behind thread: that thread's SQLite work is the
        // longer side of a push (docs/benchmarks.md, session 15).
        let text = result.result?.jsonText ?? ""
        try self.runInsert(try self.hot(&self.saveOpResultStatement, Self.saveOpResultSQL)) { insert in
            insert.bind(result.profileId)
            insert.bind(result.opId)
            insert.bind(result.payloadHash)
            insert.bind(text)
            insert.bind(result.version)
            insert.bind(result.createdAt)
        }
    }

    static let saveOpResultSQL = "INSERT INTO applied_ops (profile_id, op_id, payload_hash, result, seq, created_at) VALUES (?, ?, ?, ?, ?, ?)"

    func logConflict(_ profileId: String, _ conflict: StoredConflict) throws -> Int64 {
        try self.db.execute(
            sql: """
                INSERT INTO conflicts (profile_id, collection, record_id, op_id, client_data, server_data, server_version, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                profileId, conflict.collection, conflict.recordId, conflict.opId, conflict.clientData.jsonText,
                conflict.serverData?.jsonText, conflict.serverVersion, conflict.createdAt,
            ]
        )
        return try self.db.lastInsertedRowID
    }

    func resolveConflicts(_ profileId: String, _ collection: String, _ recordId: String, at: Int64) throws {
        try self.db.cachedStatement(
            sql: "UPDATE conflicts SET resolved_at = ? WHERE profile_id = ? AND collection = ? AND record_id = ? AND resolved_at IS NULL"
        ).execute(arguments: [at, profileId, collection, recordId])
    }

    func purgeTombstones(_ profileId: String, deletedBefore: Int64) throws -> Int {
        guard let horizon = try Int64.fetchOne(
            self.db,
            sql: "SELECT MAX(version) FROM records WHERE profile_id = ? AND deleted = 1 AND deleted_at < ?",
            arguments: [profileId, deletedBefore]
        ) else { return 0 }
        // First the search index entries of the bookmarks about to go: a tombstone the index has
        // not caught up with would otherwise leave its entry behind for good.
        let purgedEntries = """
            SELECT m.rowid FROM records r JOIN bookmark_search_map m ON m.profile_id = r.profile_id AND m.record_id = r.id
            WHERE r.profile_id = ? AND r.collection = 'bookmarks' AND r.deleted = 1 AND r.deleted_at < ? AND r.version <= ?
            """
        for table in ["bookmark_search", "bookmark_search_map"] {
            try self.db.execute(sql: "DELETE FROM \(table) WHERE rowid IN (\(purgedEntries))", arguments: [profileId, deletedBefore, horizon])
        }
        try self.db.execute(
            sql: "DELETE FROM records WHERE profile_id = ? AND deleted = 1 AND deleted_at < ? AND version <= ?",
            arguments: [profileId, deletedBefore, horizon]
        )
        let removed = try self.db.changesCount
        try self.db.execute(sql: "UPDATE profiles SET purge_seq = MAX(purge_seq, ?) WHERE id = ?", arguments: [horizon, profileId])
        return removed
    }

    func setSearchSequence(_ profileId: String, _ seq: Int64) throws {
        try self.db.cachedStatement(sql: "UPDATE profiles SET search_seq = ? WHERE id = ? AND search_seq < ?").execute(arguments: [seq, profileId, seq])
    }

    func dropSearchIndex(_ profileId: String) throws {
        try self.db.execute(
            sql: "DELETE FROM bookmark_search WHERE rowid IN (SELECT rowid FROM bookmark_search_map WHERE profile_id = ?)", arguments: [profileId]
        )
        try self.db.execute(sql: "DELETE FROM bookmark_search_map WHERE profile_id = ?", arguments: [profileId])
        try self.db.execute(sql: "UPDATE profiles SET search_seq = seq WHERE id = ?", arguments: [profileId])
    }

    func indexBookmark(_ profileId: String, id: String, fields: BookmarkSearchFields?, isNew: Bool) throws {
        if let fields, isNew {
            // A new bookmark: its map row is made first, and only an existing one is looked up.
            try self.db.cachedStatement(sql: "INSERT INTO bookmark_search_map (profile_id, record_id) VALUES (?, ?) ON CONFLICT DO NOTHING")
                .execute(arguments: [profileId, id])
            if try self.db.changesCount == 1 {
                try self.insertSearchRow(self.db.lastInsertedRowID, fields)
                return
            }
        }
        let existing = try Int64.fetchOne(
            self.db.cachedStatement(sql: "SELECT rowid FROM bookmark_search_map WHERE profile_id = ? AND record_id = ?"),
            arguments: [profileId, id]
        )
        if let existing {
            try self.db.cachedStatement(sql: "DELETE FROM bookmark_search WHERE rowid = ?").execute(arguments: [existing])
        }
        guard let fields else {
            if let existing {
                try self.db.cachedStatement(sql: "DELETE FROM bookmark_search_map WHERE rowid = ?").execute(arguments: [existing])
            }
            return
        }
        let rowid: Int64
        if let existing {
            rowid = existing
        } else {
            try self.db.cachedStatement(sql: "INSERT INTO bookmark_search_map (profile_id, record_id) VALUES (?, ?)").execute(arguments: [profileId, id])
            rowid = try self.db.lastInsertedRowID
        }
        try self.insertSearchRow(rowid, fields)
    }

    private func insertSearchRow(_ rowid: Int64, _ fields: BookmarkSearchFields) throws {
        try self.db.cachedStatement(sql: "INSERT INTO bookmark_search (rowid, title, url, tags, notes) VALUES (?, ?, ?, ?, ?)")
            .execute(arguments: [rowid, fields.title, fields.url, fields.tags, fields.notes])
    }
}

// MARK: - Database

extension StoredRecord {
    /// The columns `init(row:)` reads, in its order: every query of records selects exactly these
    /// (GRDB finds a column by name with a case-insensitive search, which was a quarter of the
    /// time of reading a page of records).
    static let columns =
        "profile_id, collection, id, version, data, field_stamps, hlc, parent_id, position, created_at, updated_at, deleted, deleted_at, created_seq, client_id"

    /// A record from a row of `SELECT \(columns)`.
    init(row: Row) {
        let dataText: String = row[4]
        let data = SQLiteSyncTransaction.decodeObject(dataText)
        let hlcText: String = row[6]
        let hlc = HLC(hlcText) ?? HLC(wall: 0, node: "")
        let version: Int64 = row[3]
        let stamps = SQLiteSyncTransaction.decodeStamps(row[5], data: data, hlc: hlc, version: version)
        self.init(
            profileId: row[0], collection: row[1], id: row[2], version: version,
            data: data,
            fieldStamps: stamps.stamps,
            hlc: hlc, parentId: row[7], position: row[8],
            createdAt: row[9], updatedAt: row[10], deleted: row[11], deletedAt: row[12],
            createdSeq: row[13], clientId: row[14]
        )
        self.fieldVersions = stamps.versions
    }
}

extension ChangedRow {
    /// The columns a pull reads: not the profile (the query names it), nor the field stamps and
    /// HLC (a pull never sends them).
    static let columns = "collection, id, version, data, parent_id, position, created_at, updated_at, deleted, deleted_at, created_seq, client_id"

    /// A pull's row of `profileId` from a row of `SELECT \(columns)`.
    init(row: Row, profileId: String) {
        self.init(
            profileId: profileId, collection: row[0], id: row[1], version: row[2], dataText: row[3], parentId: row[4], position: row[5],
            createdAt: row[6], updatedAt: row[7], deleted: row[8], deletedAt: row[9], createdSeq: row[10], clientId: row[11]
        )
    }
}
