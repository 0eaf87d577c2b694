import CSQLiteTuning
import CairnCore
import Foundation
import GRDB
import GRDBSQLite
import Testing

@testable import CairnServer

/// The shim that writes a commit's WAL frames in a few calls instead of two per page
/// (`cairn_sqlite_coalesce_wal_writes`).
/// The store registers it before its first connection; these tests register it themselves too
/// (once per process: later calls change nothing).
@Suite("WAL writes coalesced")
struct WALCoalescingTests {
    /// The writes SQLite made to the writer's WAL and the writes the shim made of them.
    static func counts(_ db: Database) -> (writes: Int64, flushes: Int64)? {
        var writes: Int64 = 0
        var flushes: Int64 = 0
        guard cairn_sqlite_wal_write_counts(db.sqliteConnection, &writes, &flushes) == 1 else { return nil }
        return (writes, flushes)
    }

    @Test func aPushOfAHundredCreatesIsWrittenToTheWALInAFewCalls() async throws {
        try await SQLiteStoreTests.withEngine { store, engine in
            // Given the store's writer, with its WAL open through the shim
            let before = try #require(try await store.pool.writeWithoutTransaction { Self.counts($0) })
            // When a push of 100 creates commits
            let operations = (0..<100).map {
                SyncOperation(opId: "op-\($0)", type: .create, collection: "notes", id: "n\($0)", data: ["text": .string(String(repeating: "x", count: 200))])
            }
            let outcome = try await engine.push(PushRequest(profileId: "p", operations: operations))
            #expect(outcome.results.allSatisfy { $0.status == .applied })
            // Then SQLite wrote two calls per page (a frame header, then the page), and the file
            // got a few writes of up to 120 KiB
            let after = try #require(try await store.pool.writeWithoutTransaction { Self.counts($0) })
            let (writes, flushes) = (after.writes - before.writes, after.flushes - before.flushes)
            #expect(writes >= 20)
            #expect(flushes >= 1 && flushes * 10 <= writes, "\(writes) writes of SQLite's became \(flushes)")
            // And a reader sees every record
            let count = try await store.pool.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM records WHERE profile_id = 'p' AND collection = 'notes'") }
            #expect(count == 100)
        }
    }

    /// With `synchronous = NORMAL` SQLite does not sync the WAL at a commit, so nothing but the
    /// commit frame tells the shim to write: another connection must still find every commit the
    /// moment it returns (a prototype that wrote only at the sync failed here).
    @Test func commitsWithoutASyncAreReadByOtherConnectionsAtOnce() async throws {
        #expect(cairn_sqlite_coalesce_wal_writes() == 0)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.url.appendingPathComponent("normal.sqlite").path
        let pool = try DatabasePool(path: path)
        try await pool.write { db in
            #expect(try Int.fetchOne(db, sql: "PRAGMA synchronous") == 1)
            try db.execute(sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        }
        let other = try DatabaseQueue(path: path)
        for round in 1...200 {
            try await pool.write { db in
                for index in 0..<5 { try db.execute(sql: "INSERT INTO t (body) VALUES (?)", arguments: [String(repeating: "\(index)", count: 500 * (round % 7 + 1))]) }
            }
            let seenByReader = try await pool.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM t") }
            let seenByOther = try await other.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM t") }
            #expect(seenByReader == round * 5)
            #expect(seenByOther == round * 5)
            if seenByReader != round * 5 || seenByOther != round * 5 { break }
        }
        #expect(try await pool.write { Self.counts($0) } != nil)
    }

    /// Under `synchronous = NORMAL` (no sync at the commit), a transaction that spills pages into
    /// the WAL and then changes them again: SQLite rewrites the spilled frames in place and then
    /// the checksums of the frames after them, the commit frame's header last, with no page after
    /// it. The copy of the files taken after the commit must recover the whole transaction (an
    /// earlier version of the shim held that last header back, and the copy recovered nothing).
    @Test func spilledFramesRewrittenBeforeACommitWithoutSyncAreOnDisk() async throws {
        #expect(cairn_sqlite_coalesce_wal_writes() == 0)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.url.appendingPathComponent("rewrite.sqlite").path
        var configuration = Configuration()
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA cache_size = 10") }
        let pool = try DatabasePool(path: path, configuration: configuration)
        try await pool.write { db in
            #expect(try Int.fetchOne(db, sql: "PRAGMA synchronous") == 1)
            try db.execute(sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        }
        try await pool.write { db in
            for index in 0..<300 { try db.execute(sql: "INSERT INTO t (id, body) VALUES (?, ?)", arguments: [index, Data(repeating: 1, count: 2_000)]) }
            try db.execute(sql: "UPDATE t SET body = ? WHERE id < 5", arguments: [Data(repeating: 2, count: 2_000)])
        }
        let rows = try Self.rowsInCopy(of: path, in: directory, as: "copy") { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM t WHERE body = ?", arguments: [Data(repeating: 2, count: 2_000)])
        }
        #expect(rows == 5)
        #expect(try Self.rowsInCopy(of: path, in: directory, as: "copy-all") { try Int.fetchOne($0, sql: "SELECT count(*) FROM t") } == 300)
    }

    /// A database opened without power-safe overwrite (`psow=0`): SQLite pads each commit to a
    /// sector boundary with copies of its commit frame and syncs in the middle of the last one
    /// (with pages of 512 bytes, frames straddle the 4 KiB sectors). The end of that frame must be
    /// written before the commit is published: another connection reads each commit at once (an
    /// earlier version of the shim held it back, and the reader read the commit before). SQLite's
    /// own API, so that the URI's parameter surely applies.
    @Test func aCommitPaddedToASectorIsReadByOtherConnectionsAtOnce() throws {
        #expect(cairn_sqlite_coalesce_wal_writes() == 0)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let uri = "file:" + directory.url.appendingPathComponent("psow.sqlite").path + "?psow=0"
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI
        var writer: OpaquePointer?
        var reader: OpaquePointer?
        defer {
            sqlite3_close(reader)
            sqlite3_close(writer)
        }
        try #require(sqlite3_open_v2(uri, &writer, flags, nil) == SQLITE_OK)
        try #require(
            sqlite3_exec(
                writer,
                """
                PRAGMA page_size = 512; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;
                CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'round 0');
                """, nil, nil, nil) == SQLITE_OK)
        try #require(sqlite3_open_v2(uri, &reader, flags, nil) == SQLITE_OK)
        /// The writer's commit, then the reader's view of row 1.
        func commitAndRead(_ sql: String) throws -> String? {
            try #require(sqlite3_exec(writer, sql, nil, nil, nil) == SQLITE_OK)
            var statement: OpaquePointer?
            try #require(sqlite3_prepare_v2(reader, "SELECT v FROM t WHERE id = 1", -1, &statement, nil) == SQLITE_OK)
            defer { sqlite3_finalize(statement) }
            let code = sqlite3_step(statement)
            return code == SQLITE_ROW ? sqlite3_column_text(statement, 0).map { String(cString: $0) } : "error \(code)"
        }
        for round in 1...4 {
            // A checkpoint first, so that the commit restarts the log over older frames.
            #expect(try commitAndRead("PRAGMA wal_checkpoint(PASSIVE); UPDATE t SET v = 'round \(round)' WHERE id = 1") == "round \(round)")
        }
        // Then many small commits, whose padding splits frames at every offset within them (a
        // sync point can fall inside a frame's header, or 24 bytes into its page)
        for round in 5...400 {
            let value = try commitAndRead("UPDATE t SET v = 'round \(round)' WHERE id = 1")
            #expect(value == "round \(round)")
            if value != "round \(round)" { break }
        }
    }

    /// A transaction that spills pages into the WAL and is rolled back leaves frames that SQLite
    /// never touches again; another connection then commits over the same offsets. What the shim
    /// held of the rolled-back frames must be written before the first connection lets go of the
    /// write lock, not later over the other's commit (an earlier version of the shim wrote them
    /// at the first connection's next read, and the other's commit was lost, on disk too).
    @Test func framesOfARolledBackTransactionAreNotWrittenOverAnotherConnectionsCommit() throws {
        try Self.withTwoConnections(to: "rollback.sqlite") { path, directory, first, second in
            try #require(sqlite3_open(path, &first) == SQLITE_OK)
            try #require(
                Self.run(
                    first,
                    """
                    PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;
                    CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB); CREATE TABLE u (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO u VALUES (0, 'zero');
                    """) == SQLITE_OK)
            try #require(sqlite3_open(path, &second) == SQLITE_OK)
            // Given the first connection's transaction that spilled 60 pages, then rolled back
            try #require(Self.run(first, "PRAGMA wal_checkpoint(PASSIVE)") == SQLITE_OK)
            try #require(
                Self.run(
                    first,
                    "PRAGMA cache_size = 10; BEGIN; WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 60) INSERT INTO t SELECT i, randomblob(3000) FROM c; ROLLBACK"
                ) == SQLITE_OK)
            // When the second commits 40 rows, and the first reads
            try #require(
                Self.run(second, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 40) INSERT INTO u SELECT i, printf('row %d', i) FROM c")
                    == SQLITE_OK)
            #expect(try Self.count(first, "u") == 41)
            #expect(try Self.count(second, "u") == 41)
            // Then the files on disk hold the second's commit
            #expect(try Self.rowsInCopy(of: path, in: directory, as: "copy") { try Int.fetchOne($0, sql: "SELECT count(*) FROM u") } == 41)
        }
    }

    /// The same in exclusive locking mode, where SQLite takes the WAL's write lock without the
    /// shared-memory lock: the held frames are written when the connection lets go of the
    /// database file (an earlier version of the shim kept them, and they overwrote the other
    /// connection's commit: "file is not a database").
    @Test func framesHeldInExclusiveLockingModeAreWrittenWhenTheFileIsReleased() throws {
        try Self.withTwoConnections(to: "exclusive.sqlite") { path, directory, first, second in
            try #require(sqlite3_open(path, &first) == SQLITE_OK)
            try #require(
                Self.run(
                    first,
                    """
                    PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = 10;
                    CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB); INSERT INTO t VALUES (1, randomblob(100));
                    PRAGMA wal_checkpoint(PASSIVE); PRAGMA locking_mode = EXCLUSIVE; SELECT * FROM t;
                    BEGIN; INSERT INTO t SELECT NULL, randomblob(3000) FROM (WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 60) SELECT i FROM c); ROLLBACK;
                    PRAGMA locking_mode = NORMAL; BEGIN IMMEDIATE; COMMIT;
                    """) == SQLITE_OK)
            try #require(sqlite3_open(path, &second) == SQLITE_OK)
            try #require(
                Self.run(second, "INSERT INTO t SELECT NULL, randomblob(500) FROM (WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 20) SELECT i FROM c)")
                    == SQLITE_OK)
            let counts = try [first, second].map { try Self.count($0, "t") }
            #expect(counts == [21, 21])
            #expect(try Self.rowsInCopy(of: path, in: directory, as: "copy") { try Int.fetchOne($0, sql: "SELECT count(*) FROM t") } == 21)
        }
    }

    /// Two raw connections (opened by `body`) to the database file `name` in a fresh directory,
    /// with the shim registered; both are closed after `body`.
    static func withTwoConnections(
        to name: String, _ body: (_ path: String, _ directory: TemporaryDirectory, _ first: inout OpaquePointer?, _ second: inout OpaquePointer?) throws -> Void
    ) throws {
        #expect(cairn_sqlite_coalesce_wal_writes() == 0)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var first: OpaquePointer?
        var second: OpaquePointer?
        defer {
            sqlite3_close(second)
            sqlite3_close(first)
        }
        try body(directory.url.appendingPathComponent(name).path, directory, &first, &second)
    }

    /// `sqlite3_exec` of `sql`, its result code.
    static func run(_ connection: OpaquePointer?, _ sql: String) -> Int32 { sqlite3_exec(connection, sql, nil, nil, nil) }

    /// The rows of `table`, through `connection` (-1 if the query gives no row).
    static func count(_ connection: OpaquePointer?, _ table: String) throws -> Int {
        var statement: OpaquePointer?
        try #require(sqlite3_prepare_v2(connection, "SELECT count(*) FROM \(table)", -1, &statement, nil) == SQLITE_OK)
        defer { sqlite3_finalize(statement) }
        return sqlite3_step(statement) == SQLITE_ROW ? Int(sqlite3_column_int64(statement, 0)) : -1
    }

    /// Opens a copy of the database and its WAL (not the index, which SQLite rebuilds from the
    /// WAL: what a restart after a kill would find) and reads it.
    static func rowsInCopy<T>(of path: String, in directory: TemporaryDirectory, as name: String, _ read: (Database) throws -> T) throws -> T {
        let copy = directory.url.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
        let file = URL(fileURLWithPath: path).lastPathComponent
        for suffix in ["", "-wal"] {
            try FileManager.default.copyItem(atPath: path + suffix, toPath: copy.appendingPathComponent(file + suffix).path)
        }
        let queue = try DatabaseQueue(path: copy.appendingPathComponent(file).path)
        return try queue.read { db in
            #expect(try String.fetchOne(db, sql: "PRAGMA integrity_check") == "ok")
            return try read(db)
        }
    }

    /// A transaction larger than the shim's buffer (1 MiB), one that spills pages into the WAL
    /// before it is rolled back, then commits: after each commit the WAL file on disk holds it
    /// (a copy of the files, opened without the process's memory, recovers every committed row
    /// and none of the rolled-back ones), and the database passes its integrity check.
    @Test func largeAndRolledBackTransactionsLeaveTheCommittedStateOnDisk() async throws {
        #expect(cairn_sqlite_coalesce_wal_writes() == 0)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.url.appendingPathComponent("large.sqlite").path
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // A small page cache, so that a long transaction writes pages to the WAL before its
            // commit.
            try db.execute(sql: "PRAGMA cache_size = 20")
        }
        let pool = try DatabasePool(path: path, configuration: configuration)
        try await pool.write { db in try db.execute(sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, round INTEGER NOT NULL, body BLOB NOT NULL)") }

        /// The rows of each round in a copy of the files.
        func rowsOnDisk(_ name: String) throws -> [Int: Int] {
            try Self.rowsInCopy(of: path, in: directory, as: name) { db in
                let rows = try Row.fetchAll(db, sql: "SELECT round, count(*) AS n FROM t GROUP BY round")
                return Dictionary(uniqueKeysWithValues: rows.map { ($0["round"] as Int, $0["n"] as Int) })
            }
        }

        // Given a committed transaction of 3 MiB (larger than the buffer)
        try await pool.write { db in
            for index in 0..<750 { try db.execute(sql: "INSERT INTO t (round, body) VALUES (1, ?)", arguments: [Data(repeating: UInt8(index % 251), count: 4_096)]) }
        }
        #expect(try rowsOnDisk("after-1") == [1: 750])
        // When a transaction spills pages into the WAL and is rolled back
        struct Abandoned: Error {}
        await #expect(throws: Abandoned.self) {
            try await pool.write { db in
                for _ in 0..<400 { try db.execute(sql: "INSERT INTO t (round, body) VALUES (2, ?)", arguments: [Data(repeating: 2, count: 4_096)]) }
                throw Abandoned()
            }
        }
        // And the next commits, writing where the rolled-back frames were
        try await pool.write { db in
            for _ in 0..<300 { try db.execute(sql: "INSERT INTO t (round, body) VALUES (3, ?)", arguments: [Data(repeating: 3, count: 1_000)]) }
        }
        // Then the files on disk hold rounds 1 and 3 whole, nothing of round 2
        #expect(try rowsOnDisk("after-3") == [1: 750, 3: 300])
        let bodies = try await pool.read { db in try Data.fetchAll(db, sql: "SELECT body FROM t WHERE round = 1 ORDER BY id") }
        #expect(bodies.enumerated().allSatisfy { $0.element == Data(repeating: UInt8($0.offset % 251), count: 4_096) })
        #expect(try await pool.read { try String.fetchOne($0, sql: "PRAGMA integrity_check") } == "ok")
    }
}
