import CSQLiteTuning
import CairnCore
import Foundation
import GRDB

/// Workload 5: the physical limit. The same rows written straight into SQLite, in WAL mode with
/// `synchronous=FULL` like the server's store, into a table shaped like the server's `records`
/// table (its columns, primary key and indexes, a JSON text column), with a reused prepared
/// statement. No HTTP, no engine, no idempotency record. Runs on the same disk as the server's
/// data.
///
/// The rows are the ones the server stores for the push workload's creates, column for column
/// and byte for byte in length: a profile id as long as the server's (a UUID), the bookmark's
/// data as the server stores it (its fields and the tree fields it adds), the server's stamp
/// (the bench's ops carry none), the fractional positions the server gives 10,000 appends to
/// one folder. Up to session 13 the rows were shorter (a 3-character profile id and two data
/// fields, though 8-character positions, longer than the server's), which made the floor
/// faster than the same writes are; that shape is still measured (`raw.insert.short-rows`) so
/// that older figures compare. The one-transaction insert (the import's counterpart) writes
/// the same push-shaped rows, not the import's (whose ids and parents are UUIDs); the update
/// rewrites a row's data with data of the same shape. Since session 16 the row also carries the
/// pushing device's id, as the server's does (the change log folded into the records).
struct RawBaseline {
    static let insertID = "raw.insert"
    static let insertShortRowsID = "raw.insert.short-rows"
    static let insertOneTransactionID = "raw.insert.one-transaction"
    static let updateP50ID = "raw.update.p50"
    static let updateP99ID = "raw.update.p99"
    static let readChangesID = "raw.read.changes"
    static let readAllID = "raw.read.all"

    /// Rows inserted in transactions of `batchSize`.
    let rows: Int
    let batchSize: Int
    /// Rows inserted in a single transaction (the import's counterpart).
    let oneTransactionRows: Int
    /// Single-row updates, each its own transaction.
    let updates: Int
    /// Rows read by version from the end (the incremental pull's counterpart).
    let changedRows: Int
    let repeats: Int

    static let schema = """
        CREATE TABLE records (
          profile_id TEXT NOT NULL,
          collection TEXT NOT NULL,
          id TEXT NOT NULL,
          version INTEGER NOT NULL,
          data TEXT NOT NULL,
          field_stamps TEXT NOT NULL DEFAULT '{}',
          hlc TEXT NOT NULL,
          parent_id TEXT,
          position TEXT,
          created_at INTEGER NOT NULL,
          updated_at INTEGER NOT NULL,
          deleted INTEGER NOT NULL DEFAULT 0,
          deleted_at INTEGER,
          created_seq INTEGER NOT NULL DEFAULT 0,
          client_id TEXT,
          PRIMARY KEY (profile_id, collection, id)
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX records_by_version ON records(profile_id, version);
        CREATE INDEX records_by_collection_version ON records(profile_id, collection, version);
        CREATE INDEX records_by_sibling ON records(profile_id, collection, parent_id, deleted, position);
        CREATE INDEX records_by_updated ON records(profile_id, collection, updated_at);
        """

    static let insertSQL = """
        INSERT INTO records (profile_id, collection, id, version, data, hlc, parent_id, position, created_at, updated_at, created_seq, client_id)
        VALUES (?, 'bookmarks', ?, ?, ?, ?, 'other', ?, ?, ?, ?, ?)
        """

    static let updateSQL = "UPDATE records SET data = ?, version = ?, updated_at = ? WHERE profile_id = ? AND collection = 'bookmarks' AND id = ?"

    static let readSQL = """
        SELECT collection, id, version, data, deleted, created_at, updated_at FROM records
        WHERE profile_id = ? AND version > ? ORDER BY version
        """

    /// Opens a fresh database at `path` the way the server opens its store, and checks it is in
    /// WAL mode with `synchronous=FULL`.
    static func open(_ path: String) throws -> DatabasePool {
        var configuration = Configuration()
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        _ = cairn_sqlite_disable_memstatus()
        let pool = try DatabasePool(path: path, configuration: configuration)
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            let journal = try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? ""
            let synchronous = try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1
            guard journal.lowercased() == "wal", synchronous == 2 else {
                throw BenchError.unexpected("raw database in journal_mode=\(journal) synchronous=\(synchronous)")
            }
            try db.execute(sql: Self.schema)
        }
        return pool
    }

    /// A profile id as long as the server's (a lowercase UUID), one per table of rows.
    static let profileId = "6f1d3c2a-9b84-4e57-a0c6-3d2e8f71b5a9"
    static let bulkProfileId = "0b7e9a41-25c3-4f8d-b6e2-8c1f4a9d3e70"
    /// The push workload's device (`PushWorkload`'s one client), which the server keeps on each
    /// record it changes. The short rows have none, as before.
    static let clientId = "bench-push"

    /// The column values of rows `indices` of `profile`, as the server stores the push workload's
    /// creates (`Pusher.creates("p", …)` into folder `other`), built before any clock starts.
    static func rows(profile: String, _ indices: Range<Int>) -> [StatementArguments] {
        var position: String?
        return indices.map { index in
            let key = FractionalIndex.between(position, nil)
            position = key
            let now: Int64 = 1_795_000_000_000 + Int64(index)
            let data = Self.bookmarkData(title: "Bookmark \(index)", url: "https://example.com/p/\(index)", position: key, added: now, modified: now)
            let hlc = "00\(now)-000000-server"
            return [profile, "p-\(index)", index + 1, data, hlc, key, now, now, index + 1, Self.clientId]
        }
    }

    /// A bookmark's data as the server stores it: its fields and the tree fields it adds.
    static func bookmarkData(title: String, url: String, position: String, added: Int64, modified: Int64) -> String {
        #"{"tags":[],"dateAdded":\#(added),"title":"\#(title)","position":"\#(position)","isFolder":false,"dateModified":\#(modified),"parentId":"other","url":"\#(url)"}"#
    }

    /// The rows measured up to session 13: shorter than the server's (see the type's comment).
    static func shortRows(profile: String, _ indices: Range<Int>) -> [StatementArguments] {
        indices.map { index in
            let data = #"{"title":"Bookmark \#(index)","url":"https://example.com/p/\#(index)"}"#
            let now: Int64 = 1_700_000_000_000 + Int64(index)
            return [profile, "p-\(index)", index + 1, data, "001700000000000-000000-raw", String(format: "a%07d", index), now, now, index + 1, nil]
        }
    }

    /// Inserts `rows` in transactions of `batchSize`: rows per second.
    private func insertRate(_ pool: DatabasePool, _ rows: [StatementArguments], budget: Budget) throws -> Double {
        let start = ContinuousClock.now
        for first in stride(from: 0, to: rows.count, by: self.batchSize) {
            try budget.check()
            try pool.write { db in
                let statement = try db.cachedStatement(sql: Self.insertSQL)
                for arguments in rows[first..<min(first + self.batchSize, rows.count)] { try statement.execute(arguments: arguments) }
            }
        }
        return Double(rows.count) / (ContinuousClock.now - start).seconds
    }

    func run(directory: URL, budget: Budget) throws -> [Figure] {
        let pool = try Self.open(directory.appendingPathComponent("raw.sqlite").path)
        // The short rows first, in a database of their own, so that the measured table starts
        // as empty as the server's.
        let shortPool = try Self.open(directory.appendingPathComponent("raw-short.sqlite").path)
        let shortRate = try self.insertRate(shortPool, Self.shortRows(profile: "raw", 0..<self.rows), budget: budget)
        let rate = try self.insertRate(pool, Self.rows(profile: Self.profileId, 0..<self.rows), budget: budget)

        let bulk = Self.rows(profile: Self.bulkProfileId, 0..<self.oneTransactionRows)
        let (_, bulkTime) = try ContinuousClock.timedSync {
            try pool.write { db in
                let statement = try db.cachedStatement(sql: Self.insertSQL)
                for arguments in bulk { try statement.execute(arguments: arguments) }
            }
        }

        // Versions are 1…rows until the updates below.
        let changes = try self.medianRead(pool, since: self.rows - self.changedRows, expected: self.changedRows, budget: budget)
        let all = try self.medianRead(pool, since: 0, expected: self.rows, budget: budget)

        var updates = Latency()
        for index in 0..<self.updates {
            try budget.check()
            let version = self.rows + index + 1
            let now = Int64(1_795_000_000_000 + version)
            let data = Self.bookmarkData(title: "Edited \(index)", url: "https://example.com/p/0", position: "V", added: 1_795_000_000_000, modified: now)
            let arguments: StatementArguments = [data, version, now, Self.profileId, "p-0"]
            let (_, elapsed) = try ContinuousClock.timedSync {
                try pool.write { db in
                    try db.cachedStatement(sql: Self.updateSQL).execute(arguments: arguments)
                }
            }
            updates.record(elapsed)
        }

        return [
            Figure(
                id: Self.insertID, workload: "raw", label: "insert, \(self.rows) rows in transactions of \(self.batchSize)",
                value: rate, unit: "rows/s"),
            Figure(
                id: Self.insertShortRowsID, workload: "raw",
                label: "insert of the shorter rows measured up to session 13, \(self.rows) in transactions of \(self.batchSize)",
                value: shortRate, unit: "rows/s"),
            Figure(
                id: Self.insertOneTransactionID, workload: "raw", label: "insert, \(self.oneTransactionRows) rows in one transaction",
                value: bulkTime.seconds, unit: "s"),
            Figure(
                id: Self.updateP50ID, workload: "raw", label: "durable single-row update, p50 (\(self.updates))",
                value: updates.milliseconds(at: 50), unit: "ms"),
            Figure(id: Self.updateP99ID, workload: "raw", label: "durable single-row update, p99", value: updates.milliseconds(at: 99), unit: "ms"),
            Figure(
                id: Self.readChangesID, workload: "raw", label: "read the last \(self.changedRows) rows by version",
                value: changes.seconds, unit: "s"),
            Figure(id: Self.readAllID, workload: "raw", label: "read all \(self.rows) rows by version", value: all.seconds, unit: "s"),
        ]
    }

    /// The median time of reading every row with a version after `since`, in version order, into
    /// Swift values (as a pull would before encoding them).
    private func medianRead(_ pool: DatabasePool, since: Int, expected: Int, budget: Budget) throws -> Duration {
        var times: [Duration] = []
        for _ in 0..<self.repeats {
            try budget.check()
            let (records, elapsed) = try ContinuousClock.timedSync {
                try pool.read { db in
                    try RawRecord.fetchAll(
                        db, sql: Self.readSQL, arguments: [Self.profileId, since])
                }
            }
            let count = records.count
            guard count == expected else { throw BenchError.unexpected("raw read since \(since): \(count) rows, expected \(expected)") }
            times.append(elapsed)
        }
        return times.sorted()[times.count / 2]
    }
}

/// A row read back by the raw baseline.
private struct RawRecord: FetchableRecord {
    let collection: String
    let id: String
    let version: Int64
    let data: String
    let deleted: Bool
    let createdAt: Int64
    let updatedAt: Int64

    init(row: Row) {
        self.collection = row[0]
        self.id = row[1]
        self.version = row[2]
        self.data = row[3]
        self.deleted = row[4]
        self.createdAt = row[5]
        self.updatedAt = row[6]
    }
}
