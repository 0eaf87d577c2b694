import CSQLiteTuning
import Foundation
import GRDB

/// Workload 5: the physical limit. The same rows written straight into SQLite, in WAL mode with
/// `synchronous=FULL` like the server's store, into a table shaped like the server's `records`
/// table (its columns, primary key and indexes, a JSON text column), with a reused prepared
/// statement. No HTTP, no engine, no change log. Runs on the same disk as the server's data.
struct RawBaseline {
    static let insertID = "raw.insert"
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
          PRIMARY KEY (profile_id, collection, id)
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX records_by_version ON records(profile_id, version);
        CREATE INDEX records_by_collection_version ON records(profile_id, collection, version);
        CREATE INDEX records_by_sibling ON records(profile_id, collection, parent_id, deleted, position);
        CREATE INDEX records_by_updated ON records(profile_id, collection, updated_at);
        """

    static let insertSQL = """
        INSERT INTO records (profile_id, collection, id, version, data, hlc, parent_id, position, created_at, updated_at, created_seq)
        VALUES (?, 'bookmarks', ?, ?, ?, ?, 'other', ?, ?, ?, ?)
        """

    static let updateSQL = "UPDATE records SET data = ?, version = ?, updated_at = ? WHERE profile_id = ? AND collection = 'bookmarks' AND id = ?"

    static let readSQL = """
        SELECT collection, id, version, data, deleted, created_at, updated_at FROM records
        WHERE profile_id = 'raw' AND version > ? ORDER BY version
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

    /// The column values of row `index` of `profile`, built before any clock starts.
    static func arguments(profile: String, index: Int) -> StatementArguments {
        let data = #"{"title":"Bookmark \#(index)","url":"https://example.com/p/\#(index)"}"#
        let now: Int64 = 1_700_000_000_000 + Int64(index)
        return [profile, "p-\(index)", index + 1, data, "001700000000000-000000-raw", String(format: "a%07d", index), now, now, index + 1]
    }

    func run(directory: URL, budget: Budget) throws -> [Figure] {
        let pool = try Self.open(directory.appendingPathComponent("raw.sqlite").path)
        let rows = (0..<self.rows).map { Self.arguments(profile: "raw", index: $0) }

        let insertStart = ContinuousClock.now
        for start in stride(from: 0, to: rows.count, by: self.batchSize) {
            try budget.check()
            try pool.write { db in
                let statement = try db.cachedStatement(sql: Self.insertSQL)
                for arguments in rows[start..<min(start + self.batchSize, rows.count)] { try statement.execute(arguments: arguments) }
            }
        }
        let insertTime = ContinuousClock.now - insertStart

        let bulk = (0..<self.oneTransactionRows).map { Self.arguments(profile: "raw-bulk", index: $0) }
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
            let arguments: StatementArguments = [#"{"title":"Edited \#(index)","url":"https://example.com/p/0"}"#, version, version, "raw", "p-0"]
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
                value: Double(self.rows) / insertTime.seconds, unit: "rows/s"),
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
                        db, sql: Self.readSQL, arguments: [since])
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
