import CSQLiteTuning
import CairnCore
import Foundation
import GRDB
import GRDBSQLite
import Logging
import Synchronization
import Testing

@testable import CairnServer

@Suite("SQLite store")
struct SQLiteStoreTests {
    @Test func runsInWALWithSynchronousFull() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try SQLiteSyncStore(path: directory.url.appendingPathComponent("db.sqlite").path)
        try await store.prepare()
        let settings = try await store.durabilitySettings()
        #expect(settings.journalMode == "wal")
        #expect(settings.synchronous == 2)
    }

    /// SQLite's memory statistics take one process-wide mutex on every allocation, which made
    /// connections on different threads wait on each other: the store turns them off before its
    /// first connection. The call answers SQLITE_MISUSE (21) when it came after SQLite started.
    @Test func memoryStatisticsAreOffBeforeTheFirstConnection() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try SQLiteSyncStore(path: directory.url.appendingPathComponent("db.sqlite").path)
        try await store.prepare()
        #expect(cairn_sqlite_disable_memstatus() == 0)
    }

    @Test func migrationsAreIdempotentAcrossRestarts() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.url.appendingPathComponent("db.sqlite").path
        // Given a store that was migrated and holds a user
        do {
            let store = try SQLiteSyncStore(path: path)
            try await store.prepare()
            try await store.createUser(
                StoredUser(id: "u1", email: "a@b.co", emailNormalized: "a@b.co", passwordHash: "h", createdAt: 1, updatedAt: 1),
                defaultProfile: StoredProfile(id: "p1", userId: "u1", name: "default", createdAt: 1, updatedAt: 1)
            )
        }
        // When it is opened and prepared twice more
        for _ in 0..<2 {
            let store = try SQLiteSyncStore(path: path)
            try await store.prepare()
            // Then the migrations are applied once, in order, and the data is intact
            #expect(
                try await store.appliedMigrations() == [
                    "2026-11-21-accounts", "2026-11-21-sync-tables", "2026-11-21-bookmark-search", "2026-11-21-queue-and-timestamps",
                    "2026-11-22-sibling-index", "2026-11-23-search-catch-up", "2026-11-24-change-log-in-records",
                ]
            )
            #expect(try await store.user(id: "u1")?.email == "a@b.co")
            #expect(try await store.profiles(userId: "u1").map(\.name) == ["default"])
        }
    }

    /// Both search queries start from the full-text match and look each hit's profile up by
    /// rowid. The count once walked the profile's map rows and ran the match for each: 11 s for a
    /// word in 10,000 bookmarks.
    @Test func searchQueriesRunTheMatchFirst() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try SQLiteSyncStore(path: directory.url.appendingPathComponent("db.sqlite").path)
        try await store.prepare()
        for (sql, arguments) in [
            (SQLiteSyncTransaction.searchCountSQL, ["\"word\"*", "p"] as StatementArguments),
            (SQLiteSyncTransaction.searchHitsSQL, ["\"word\"*", "p", 10, 0] as StatementArguments),
        ] {
            let steps = try await store.pool.read { db in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { $0["detail"] as String }
            }
            #expect(steps.first?.hasPrefix("SCAN bookmark_search VIRTUAL TABLE") == true, "\(steps)")
            #expect(steps.contains { $0.hasPrefix("SEARCH m USING INTEGER PRIMARY KEY") }, "\(steps)")
        }
    }

    /// The inserts every pushed op makes bind their values straight into SQLite: each type lands
    /// as the STRICT column wants it, an empty text or blob stays empty (not NULL), a statement is
    /// reused after a refusal, and SQLite's refusals come back as GRDB's errors with their codes.
    @Test func directStatementsBindEveryTypeAndReportSQLiteErrors() throws {
        let queue = try Self.scratchQueue()
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE t (k TEXT PRIMARY KEY NOT NULL, s TEXT, n INTEGER, b BLOB, f INTEGER NOT NULL) STRICT")
            let sql = "INSERT INTO t (k, s, n, b, f) VALUES (?, ?, ?, ?, ?)"
            func insert(_ key: String, _ text: String?, _ number: Int64?, _ blob: Data, _ flag: Bool) throws {
                var statement = DirectStatement(try db.cachedStatement(sql: sql), db)
                statement.bind(key)
                statement.bind(text)
                statement.bind(number)
                statement.bind(blob)
                statement.bind(flag)
                try statement.run()
            }
            try insert("a", "häßlich \u{1F600}", Int64.min, Data([0, 1, 255]), true)
            try insert("b", "", nil, Data(), false)
            try insert("c", nil, 42, Data([7]), true)
            // Texts and blobs longer than the statement's first buffer (it grows before any is bound).
            let long = String(repeating: "ü€ab", count: 20_000)
            try insert("long", long, 3, Data(repeating: 0xA5, count: 70_000), true)
            // A taken primary key: SQLite's extended code, and nothing written.
            #expect {
                try insert("a", "again", 1, Data(), false)
            } throws: { error in
                (error as? DatabaseError)?.extendedResultCode == .SQLITE_CONSTRAINT_PRIMARYKEY
            }
            // The same cached statement works after the refusal.
            try insert("d", "after", 1, Data(), false)
            // A parameter left without a value is refused before SQLite runs anything.
            #expect(throws: DatabaseError.self) {
                var statement = DirectStatement(try db.cachedStatement(sql: sql), db)
                statement.bind("e")
                try statement.run()
            }
            // GRDB's own execute on the same cached statement after a direct run, and a direct run after it.
            try db.cachedStatement(sql: sql).execute(arguments: ["g", "grdb", 5, Data([9]), true])
            try insert("h", "direct again", 6, Data([8]), false)
            // An upsert, as records are written: the conflicting row is updated, not duplicated.
            let upsert = "INSERT INTO t (k, s, n, b, f) VALUES (?, ?, ?, ?, ?) ON CONFLICT (k) DO UPDATE SET s = excluded.s, n = excluded.n"
            for (text, number) in [("first", 1), ("second", 2)] as [(String, Int64)] {
                var statement = DirectStatement(try db.cachedStatement(sql: upsert), db)
                statement.bind("u")
                statement.bind(text)
                statement.bind(number)
                statement.bind(Data())
                statement.bind(false)
                try statement.run()
            }
            let rows = try Row.fetchAll(db, sql: "SELECT k, s, typeof(s) AS ts, n, b, typeof(b) AS tb, f FROM t ORDER BY k")
            #expect(rows.map { $0["k"] as String } == ["a", "b", "c", "d", "g", "h", "long", "u"])
            #expect(rows[4]["s"] as String == "grdb")
            #expect(rows[5]["s"] as String == "direct again")
            #expect(rows[6]["s"] as String == long)
            #expect(rows[6]["b"] as Data == Data(repeating: 0xA5, count: 70_000))
            #expect(rows[7]["s"] as String == "second")
            #expect(rows[7]["n"] as Int64 == 2)
            #expect(rows[0]["s"] as String == "häßlich \u{1F600}")
            #expect(rows[0]["n"] as Int64 == Int64.min)
            #expect(rows[0]["b"] as Data == Data([0, 1, 255]))
            #expect(rows[0]["f"] as Int64 == 1)
            #expect(rows[1]["ts"] as String == "text")
            #expect(rows[1]["s"] as String == "")
            #expect(rows[1]["n"] as Int64? == nil)
            #expect(rows[1]["tb"] as String == "blob")
            #expect(rows[1]["f"] as Int64 == 0)
            #expect(rows[2]["ts"] as String == "null")
            #expect(rows[3]["s"] as String == "after")
        }
        // Outside a transaction (as after SQLite rolled one back on its own) nothing is written.
        try queue.writeWithoutTransaction { (db: Database) throws in
            #expect {
                var statement = DirectStatement(try db.cachedStatement(sql: "INSERT INTO t (k, f) VALUES (?, ?)"), db)
                statement.bind("outside")
                statement.bind(true)
                try statement.run()
            } throws: { error in
                (error as? DatabaseError)?.resultCode == .SQLITE_ABORT
            }
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM t WHERE k = 'outside'") == 0)
        }
    }

    /// A direct insert that SQLite interrupts: `CancellationError` when its task was cancelled
    /// (as GRDB reports the interrupts it makes for cancelled async accesses), SQLite's own error
    /// otherwise; nothing is written either way.
    @Test func anInterruptedDirectStatementInACancelledTaskThrowsCancellationError() async throws {
        let queue = try Self.scratchQueue()
        try await queue.write { db in try db.execute(sql: "CREATE TABLE t (k TEXT PRIMARY KEY NOT NULL) STRICT") }
        /// Runs one insert with a progress handler that interrupts SQLite at its first step.
        @Sendable func interruptedInsert() throws {
            try queue.writeWithoutTransaction { db in
                try db.execute(sql: "BEGIN")
                sqlite3_progress_handler(db.sqliteConnection, 1, { _ in 1 }, nil)
                defer {
                    sqlite3_progress_handler(db.sqliteConnection, 0, nil, nil)
                    if db.isInsideTransaction { try? db.execute(sql: "ROLLBACK") }
                }
                var statement = DirectStatement(try db.cachedStatement(sql: "INSERT INTO t (k) VALUES (?)"), db)
                statement.bind("x")
                try statement.run()
            }
        }
        #expect {
            try interruptedInsert()
        } throws: { error in
            (error as? DatabaseError)?.resultCode == .SQLITE_INTERRUPT
        }
        let cancelled = Task { () -> (any Error)? in
            withUnsafeCurrentTask { $0?.cancel() }
            do {
                try interruptedInsert()
                return nil
            } catch {
                return error
            }
        }
        let error = await cancelled.value
        #expect(error is CancellationError, "\(String(describing: error))")
        #expect(try await queue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM t") } == 0)
    }

    @Test func createsTheSyncEngineTables() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try SQLiteSyncStore(path: directory.url.appendingPathComponent("db.sqlite").path)
        try await store.prepare()
        let tables = try await store.pool.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        }
        for table in ["users", "profiles", "refresh_tokens", "api_keys", "records", "applied_ops", "conflicts", "audit_log"] {
            #expect(tables.contains(table), "\(table)")
        }
        // The change log lives in the records (each keeps the device of its last change).
        #expect(!tables.contains("changes"))
    }

    /// A database a newer version migrated (here: a migration this version does not know) is
    /// refused before any write, with the unknown migrations named.
    @Test func aDatabaseFromANewerVersionIsRefused() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.url.appendingPathComponent("db.sqlite").path
        do {
            let store = try SQLiteSyncStore(path: path)
            try await store.prepare()
            try await store.pool.write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('2099-01-01-from-the-future')") }
        }
        let store = try SQLiteSyncStore(path: path)
        await #expect {
            try await store.prepare()
        } throws: { error in
            guard case StoreError.newerDatabase(let unknown) = error else { return false }
            return unknown == ["2099-01-01-from-the-future"] && "\(error)".contains("newer version of Cairn")
        }
    }

    /// A database from before the change log folded into the records: each record takes the
    /// device of the log entry of its version, and the log goes.
    @Test func theChangeLogMigratesIntoTheRecords() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.url.appendingPathComponent("db.sqlite").path
        // Given a store at the migration before, whose change log has entries for records
        do {
            // As the store does before its first connection: a test that started SQLite with its
            // memory statistics on would fail `memoryStatisticsAreOffBeforeTheFirstConnection`.
            _ = cairn_sqlite_disable_memstatus()
            let queue = try DatabaseQueue(path: path)
            try SQLiteMigrations.migrator.migrate(queue, upTo: "2026-11-23-search-catch-up")
            try await queue.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO users (id, email, email_normalized, password_hash, created_at, updated_at) VALUES ('u', 'a@b.co', 'a@b.co', 'h', 1, 1);
                        INSERT INTO profiles (id, user_id, name, created_at, updated_at) VALUES ('p', 'u', 'default', 1, 1), ('q', 'u', 'other', 1, 1);
                        INSERT INTO records (profile_id, collection, id, version, data, hlc, created_at, updated_at, created_seq)
                          VALUES ('p', 'notes', 'phone-note', 2, '{}', 'h', 1, 1, 1), ('p', 'notes', 'server-note', 3, '{}', 'h', 1, 1, 3),
                                 ('p', 'notes', 'unlogged', 4, '{}', 'h', 1, 1, 4), ('q', 'notes', 'tablet-note', 3, '{}', 'h', 1, 1, 3);
                        INSERT INTO changes (profile_id, seq, collection, record_id, type, client_id, at)
                          VALUES ('p', 1, 'notes', 'phone-note', 'create', 'laptop', 1), ('p', 2, 'notes', 'phone-note', 'update', 'phone', 1),
                                 ('p', 3, 'notes', 'server-note', 'create', NULL, 1), ('q', 2, 'notes', 'other', 'create', 'watch', 1),
                                 ('q', 3, 'notes', 'tablet-note', 'create', 'tablet', 1), ('q', 4, 'notes', 'unlogged', 'create', 'desk', 1);
                        """)
            }
        }
        // When it is opened by this version
        let store = try SQLiteSyncStore(path: path)
        try await store.prepare()
        // Then each record has the device of its last change, and the log is gone
        let records = try await store.read { reader in try reader.allRecords("p", "notes", includeDeleted: true) }
        #expect(Dictionary(uniqueKeysWithValues: records.map { ($0.id, $0.clientId) }) == ["phone-note": "phone", "server-note": nil, "unlogged": nil])
        // (each from its own profile's log: the other profile's entries of the same sequences are not taken)
        let other = try await store.read { reader in try reader.allRecords("q", "notes", includeDeleted: true) }
        #expect(other.map(\.clientId) == ["tablet"])
        let tables = try await store.pool.read { db in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'") }
        #expect(!tables.contains("changes"))
    }

    @Test func profileLookupIsScopedToItsOwner() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try SQLiteSyncStore(path: directory.url.appendingPathComponent("db.sqlite").path)
        try await store.prepare()
        for (user, profile) in [("ua", "pa"), ("ub", "pb")] {
            try await store.createUser(
                StoredUser(id: user, email: "\(user)@x.co", emailNormalized: "\(user)@x.co", passwordHash: "h", createdAt: 1, updatedAt: 1),
                defaultProfile: StoredProfile(id: profile, userId: user, name: "default", createdAt: 1, updatedAt: 1)
            )
        }
        #expect(try await store.profile(userId: "ua", idOrName: "pa")?.id == "pa")
        #expect(try await store.profile(userId: "ua", idOrName: "default")?.id == "pa")
        #expect(try await store.profile(userId: "ua", idOrName: "pb") == nil)
        // The same through the resolution kept in memory, asked twice (the second from memory)
        for _ in 0..<2 {
            #expect(try await store.profileRef(userId: "ua", idOrName: "default") == ProfileRef(id: "pa", userId: "ua", name: "default"))
            #expect(try await store.profileRef(userId: "ua", idOrName: "pb") == nil)
            #expect(try await store.profileRef(userId: "ub", idOrName: "pb")?.id == "pb")
        }
    }

    /// Field stamps are written as JSON text byte by byte; any field name (quotes, control
    /// characters, non-ASCII) and node name reads back as it was, with its version.
    @Test func fieldStampsRoundTripThroughTheirStoredText() throws {
        let fields = ["title", "say \"hi\"", "back\\slash", "line\nbreak", "tab\there", "\u{1}ctl", "ünï😀", ""]
        var record = StoredRecord(
            profileId: "p", collection: "notes", id: "r", version: 9, data: [:], fieldStamps: [:], hlc: HLC(wall: 1, node: "n"),
            createdAt: 1, updatedAt: 1, createdSeq: 1
        )
        for (index, field) in fields.enumerated() {
            record.fieldStamps[field] = HLC(wall: Int64(1_700_000_000_000 + index), counter: index * 300, node: "node-\"\(index)\"")
            if index.isMultiple(of: 2) { record.fieldVersions[field] = Int64(index + 1) }
        }
        let text = SQLiteSyncTransaction.encodeStamps(record)
        #expect(try JSONValue.parse(text).objectValue?.count == fields.count)
        let (stamps, versions) = SQLiteSyncTransaction.decodeStamps(text, data: [:], hlc: record.hlc, version: record.version)
        #expect(stamps == record.fieldStamps)
        for (index, field) in fields.enumerated() {
            #expect(versions[field] == (index.isMultiple(of: 2) ? Int64(index + 1) : 9))
        }
        #expect(SQLiteSyncTransaction.encodeStamps(StoredRecord(
            profileId: "p", collection: "c", id: "e", version: 1, data: [:], fieldStamps: [:], hlc: HLC(wall: 1, node: "n"), createdAt: 1, updatedAt: 1, createdSeq: 1
        )) == "{}")
    }

    /// The stamps a data field shares with the record (its HLC and version) are not stored; reading
    /// the row gives them back, and every other stamp (older fields, removed ones) is stored.
    @Test func fieldStampsSharedWithTheRecordAreLeftOutAndGivenBack() throws {
        let now = HLC(wall: 50, node: "n")
        let older = HLC(wall: 40, node: "m")
        var record = StoredRecord(
            profileId: "p", collection: "notes", id: "r", version: 7, data: ["a": 1, "b": 2, "c": 3], fieldStamps: [:], hlc: now,
            createdAt: 1, updatedAt: 1, createdSeq: 1
        )
        record.fieldStamps = ["a": now, "b": older, "c": now, "gone": now]
        record.fieldVersions = ["a": 7, "b": 3, "c": 5, "gone": 7]
        let text = SQLiteSyncTransaction.encodeStamps(record)
        // `a` is left out; `b` (older stamp), `c` (older version) and `gone` (not in the data) are kept.
        #expect(try JSONValue.parse(text).objectValue.map { Set($0.keys) } == ["b", "c", "gone"])
        let (stamps, versions) = SQLiteSyncTransaction.decodeStamps(text, data: record.data, hlc: now, version: 7)
        #expect(stamps == record.fieldStamps)
        #expect(versions == record.fieldVersions)
    }

    /// The shortcut for records whose every stamp is the record's own (a new record's) gives what
    /// the field-by-field encoding gives, whatever the stamps, versions and keys.
    @Test func theAllStampsSharedShortcutAgreesWithTheFieldByFieldEncoding() {
        var generator = SystemRandomNumberGenerator()
        let now = HLC(wall: 50, node: "n")
        let older = HLC(wall: 40, node: "n")
        let names = ["title", "url", "parentId", "position", "dateAdded", "dateModified", "tags", "isFolder", "notes"]
        var shortcuts = 0
        for round in 0..<2_000 {
            let count = Int.random(in: 0...names.count, using: &generator)
            var data: [String: JSONValue] = [:]
            for name in names.shuffled(using: &generator).prefix(count) { data[name] = .string(name) }
            var record = StoredRecord(
                profileId: "p", collection: "bookmarks", id: "r", version: 7, data: data,
                fieldStamps: data.mapValues { _ in now }, hlc: now, createdAt: 1, updatedAt: 1, createdSeq: 1
            )
            if round % 3 != 0 { record.fieldVersions = record.fieldStamps.mapValues { _ in 7 } }
            // Then one of: nothing, an older stamp, an older version, a stamp of a removed field,
            // the same keys inserted in another order, one key fewer, one key swapped for another
            switch round % 7 {
            case 1: if let key = data.keys.randomElement(using: &generator) { record.fieldStamps[key] = older }
            case 2: if let key = data.keys.randomElement(using: &generator) { record.fieldVersions[key] = 3 }
            case 3: record.fieldStamps["gone"] = now
            case 4:
                var stamps: [String: HLC] = [:]
                for key in data.keys.shuffled(using: &generator) { stamps[key] = now }
                record.fieldStamps = stamps
            case 5: if let key = data.keys.randomElement(using: &generator) { record.fieldStamps[key] = nil }
            case 6:
                if let key = data.keys.randomElement(using: &generator) {
                    record.fieldStamps[key] = nil
                    record.fieldStamps["gone"] = now
                }
            default: break
            }
            let expected = SQLiteSyncTransaction.encodeStampsFieldByField(record)
            #expect(SQLiteSyncTransaction.encodeStamps(record) == expected, "round \(round)")
            if SQLiteSyncTransaction.stampsAreAllTheRecords(record) {
                shortcuts += 1
                #expect(expected == "{}")
            }
        }
        // New records (the rounds that change nothing) took the shortcut
        #expect(shortcuts >= 300)
    }

    /// An op's plain result (applied at its version, nothing more) is stored as an empty text and
    /// rebuilt from the retried op; any other result is stored whole. Either way a retry answers
    /// what the first attempt answered, as a duplicate.
    @Test func aPlainOpResultIsNotWrittenOutAndItsRetryAnswersTheSame() async throws {
        try await SQLiteStoreTests.withEngine { store, engine in
            // Given a push of a plain create, a bookmark create, a create stamped far in the
            // future (clamped), a create without an id (the server names it) and a rejected update
            let ops = [
                SyncOperation(opId: "plain", type: .create, collection: "notes", id: "n1", data: ["text": "a"]),
                SyncOperation(opId: "bookmark", type: .create, id: "b1", data: ["title": "B", "url": "https://b.example"], parentId: "toolbar"),
                SyncOperation(opId: "clamped", type: .create, collection: "notes", id: "n2", data: ["text": "b"], hlc: HLC(wall: 4_000_000_000_000, node: "far")),
                SyncOperation(opId: "unnamed", type: .create, collection: "notes", data: ["text": "c"]),
                SyncOperation(opId: "rejected", type: .update, collection: "notes", id: "missing", patch: ["text": "d"]),
            ]
            let first = try await engine.push(PushRequest(profileId: "p", operations: ops)).results
            #expect(first.map(\.status) == [.applied, .applied, .applied, .applied, .rejected])
            #expect(first[2].clockClamped == true)
            #expect(first[3].id != nil)

            // Then only the plain results are left out of the stored rows
            let stored = try await store.pool.read { db in
                try Dictionary(
                    uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT op_id, result, seq FROM applied_ops WHERE profile_id = 'p'").map {
                        (($0[0] as String), (text: $0[1] as String, seq: $0[2] as Int64?))
                    })
            }
            #expect(stored["plain"]?.text == "")
            #expect(stored["bookmark"]?.text == "")
            #expect(stored["plain"]?.seq == first[0].version)
            for opId in ["clamped", "unnamed", "rejected"] { #expect(stored[opId]?.text.isEmpty == false, "\(opId)") }

            // When the push is retried, each op answers its first result as a duplicate
            let retry = try await engine.push(PushRequest(profileId: "p", operations: ops)).results
            for (again, original) in zip(retry, first) {
                var expected = original
                expected.originalStatus = original.status
                expected.status = .duplicate
                #expect(again == expected)
            }
            // And a plain op's id reused with another payload is refused, naming the first version
            var changed = ops[0]
            changed.data = ["text": "other"]
            let mismatch = try await engine.push(PushRequest(profileId: "p", operations: [changed])).results[0]
            #expect(mismatch.status == .rejected)
            #expect(mismatch.error?.code == "IDEMPOTENCY_MISMATCH")
            #expect(mismatch.version == first[0].version)
        }
    }

    /// Op ids are any text up to 128 bytes: the batch's lookup of the stored ones (a JSON list for
    /// `json_each`) finds ids with quotes, backslashes, control characters and other scripts.
    @Test func storedOpIdsAreFoundWhateverTheirCharacters() async throws {
        try await SQLiteStoreTests.withEngine { store, engine in
            let opIds = ["quote\"d", "back\\slash", "tab\tnew\nline", "\u{01}", "ünï😀", "[1,2]", "{\"a\":1}", "plain"]
            let ops = opIds.enumerated().map { index, opId in
                SyncOperation(opId: opId, type: .create, collection: "notes", id: "n\(index)", data: ["text": .string(opId)])
            }
            let first = try await engine.push(PushRequest(profileId: "p", operations: ops)).results
            #expect(first.allSatisfy { $0.status == .applied })
            let stored = try await store.pool.write { db in try SQLiteSyncTransaction(db).storedOpIds("p", among: opIds + ["absent"]) }
            #expect(stored == Set(opIds))
            let retry = try await engine.push(PushRequest(profileId: "p", operations: ops)).results
            #expect(retry.map(\.status) == Array(repeating: .duplicate, count: opIds.count))
            #expect(retry.map(\.version) == first.map(\.version))
        }
    }

    /// A lookup that began before an invalidation must not put what it read into the cache: it
    /// may have read the row before the write that invalidated it.
    @Test func lookupCacheRefusesAFillThatRacedAnInvalidation() {
        let cache = LookupCache<Int>(capacity: 3)
        let before = cache.generation
        cache.invalidate("a")
        cache.fill(1, for: "a", since: before)
        #expect(cache.value("a") == nil)
        cache.fill(2, for: "a", since: cache.generation)
        #expect(cache.value("a") == 2)
        cache.invalidate("a")
        #expect(cache.value("a") == nil)
        // invalidateAll forgets every key and also turns away fills already under way
        let started = cache.generation
        cache.fill(3, for: "b", since: started)
        cache.invalidateAll()
        cache.fill(4, for: "c", since: started)
        #expect(cache.value("b") == nil && cache.value("c") == nil)
        // Bounded: a fill into a full cache empties it first
        for (index, key) in ["x", "y", "z", "w"].enumerated() { cache.fill(index, for: key, since: cache.generation) }
        #expect(cache.count == 1)
        #expect(cache.value("w") == 3)
    }

    /// The user a request reads is kept in memory, and a write to it is seen at once.
    @Test func cachedUserFollowsDisableAndLogoutEverywhere() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try await Self.storeWithOneUser(in: directory)
        #expect(try await store.user(id: "u")?.disabled == false)
        #expect(store.users.value("u") != nil)
        try await store.setDisabled(userId: "u", disabled: true)
        #expect(try await store.user(id: "u")?.disabled == true)
        try await store.setTokensValidAfter(userId: "u", seconds: 42)
        #expect(try await store.user(id: "u")?.tokensValidAfter == 42)
        #expect(try await store.user(id: "nobody") == nil)
    }

    @Test func secretsFileIsCreatedOwnerOnlyAndReused() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let first = try ServerSecrets.loadOrCreate(in: directory.url)
        let attributes = try FileManager.default.attributesOfItem(atPath: directory.url.appendingPathComponent("secrets.json").path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let second = try ServerSecrets.loadOrCreate(in: directory.url)
        #expect(first == second)
        #expect(first.jwtSigningKey.count == 32)
        #expect(first.jwtSigningKey != first.passwordPepper)
        // A secrets file readable by others is refused
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: directory.url.appendingPathComponent("secrets.json").path)
        #expect(throws: SecretsError.self) { try ServerSecrets.loadOrCreate(in: directory.url) }
    }

    @Test func refreshRotationHasExactlyOneWinner() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try await Self.storeWithOneUser(in: directory)
        try await store.insertRefreshToken(StoredRefreshToken(id: "t0", userId: "u", familyId: "f", tokenHash: Data([0]), createdAt: 1, expiresAt: 99))
        let results = try await withThrowingTaskGroup(of: RefreshRotation.self) { group in
            for index in 1...10 {
                group.addTask {
                    try await store.rotateRefreshToken(
                        id: "t0",
                        successor: StoredRefreshToken(id: "t\(index)", userId: "u", familyId: "f", tokenHash: Data([UInt8(index)]), createdAt: 2, expiresAt: 99),
                        at: 2
                    )
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.filter { $0 == .rotated }.count == 1)
        #expect(results.filter { if case .alreadyRotated = $0 { true } else { false } }.count == 9)
    }

    /// A push of up to 100 ops that finds no other write under way runs on its caller's thread;
    /// a longer one, or one that finds another under way, waits for the writer without holding
    /// its thread. Mixed, none is lost, none waits forever, each gets its own sequence.
    @Test func shortLoneWritesRunOnTheCallerThreadAndQueuedWritesAllCommit() async throws {
        try await Self.withEngine { store, engine in
            @Sendable func create(_ id: String) async throws -> OperationResult {
                try await engine.pushOne(SyncOperation(opId: "op-\(id)", type: .create, collection: "notes", id: id, data: ["text": .string(id)]), profileId: "p", clientId: nil).0
            }
            func onCallerThread() -> Int { store.writesOnCallerThread.load(ordering: .relaxed) }

            // Given nothing else writing, each one-op push runs on its caller's thread
            let before = onCallerThread()
            for index in 0..<5 { #expect(try await create("lone-\(index)").status == .applied) }
            #expect(onCallerThread() - before == 5)

            // When a long write holds the writer until released, and 40 one-op pushes arrive meanwhile
            let held = onCallerThread()
            let results = try await Self.whileTheWriterIsHeld(store, inFlight: 41) {
                try await withThrowingTaskGroup(of: OperationResult.self) { group in
                    for index in 0..<40 { group.addTask { try await create("busy-\(index)") } }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
            }

            // Then the long write and the 40 all went through the writer queue, and every write
            // committed once, each with its own version; the 40 shared two commits (at most 32 a
            // transaction)
            #expect(onCallerThread() == held)
            #expect(store.writeGroups.sharedCommits.load(ordering: .relaxed) == 2)
            #expect(store.writeGroups.writesInSharedCommits.load(ordering: .relaxed) == 40)
            #expect(results.allSatisfy { $0.status == .applied })
            #expect(Set(results.compactMap(\.version)).count == 40)
            #expect(try await engine.sequence(profileId: "p") == 45)
            #expect(try await create("after").status == .applied)
            #expect(onCallerThread() == held + 1)

            // And a lone push of 100 ops runs on its caller's thread, one of 101 goes through the
            // writer queue, and both are applied whole
            @Sendable func creates(_ prefix: String, _ count: Int) -> PushRequest {
                PushRequest(
                    profileId: "p",
                    operations: (0..<count).map {
                        SyncOperation(opId: "op-\(prefix)-\($0)", type: .create, collection: "notes", id: "\(prefix)-\($0)", data: ["text": .string(prefix)])
                    })
            }
            let hundred = try await engine.push(creates("hundred", 100))
            #expect(onCallerThread() == held + 2)
            let more = try await engine.push(creates("more", 101))
            #expect(onCallerThread() == held + 2)
            #expect((hundred.results + more.results).allSatisfy { $0.status == .applied })
            #expect(try await engine.sequence(profileId: "p") == 46 + 201)
        }
    }

    /// Groups that queue while the writer is busy run one after the other in the same visit to
    /// GRDB's writer queue, at most `groupsPerWriterVisit` of them: a write sent to that queue
    /// directly meanwhile (an account or audit write) runs between two visits, not after all.
    @Test func queuedGroupsShareAVisitToTheWriterAndLetDirectWritesInBetween() async throws {
        try await Self.withEngine { store, _ in
            let visits = store.writeGroups.writerVisits.load(ordering: .relaxed)
            let count = WriteGroups.groupsPerWriterVisit + 4
            let log = try await Self.directWriteBetweenQueuedWrites(store, count: count, each: {})

            // Then the held write and the first queued ones ran in one visit, the direct write
            // next, and the rest in a second visit
            #expect(log.count == count + 1)
            #expect(log.firstIndex(of: "direct") == WriteGroups.groupsPerWriterVisit - 1)
            #expect(store.writeGroups.writerVisits.load(ordering: .relaxed) - visits == 2)
            #expect(store.writeGroups.queued == 0)
        }
    }

    /// A visit also ends once the groups after its first have taken `writerVisitBudget`: a
    /// direct write does not wait for sixteen long groups.
    @Test func aVisitOfLongGroupsEndsAtItsBudget() async throws {
        try await Self.withEngine { store, _ in
            let count = WriteGroups.groupsPerWriterVisit + 4
            // Each queued write takes most of the budget: the visit ends after one or two.
            let budget = WriteGroups.writerVisitBudget.components
            let pause = UInt32((budget.seconds * 1_000_000 + budget.attoseconds / 1_000_000_000_000) * 8 / 10)
            let log = try await Self.directWriteBetweenQueuedWrites(store, count: count, each: { usleep(pause) })
            #expect(log.count == count + 1)
            let direct = try #require(log.firstIndex(of: "direct"))
            #expect((1...3).contains(direct), "\(log)")
        }
    }

    /// Holds the writer, queues `count` writes behind it (each a group of its own, each running
    /// `each`), and sends a write to GRDB's writer queue directly while they wait; returns the
    /// order they ran in ("queued-N" and "direct").
    static func directWriteBetweenQueuedWrites(
        _ store: SQLiteSyncStore, count: Int, each: @escaping @Sendable () -> Void
    ) async throws -> [String] {
        let log = Locked<[String]>([])
        let direct = Locked<Result<Void, any Error>?>(nil)
        try await Self.whileTheWriterIsHeld(
            store, inFlight: count + 1,
            queued: {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<count {
                        group.addTask {
                            try await store.write(profileId: "p") { _ in
                                each()
                                log.update { $0.append("queued-\(index)") }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            },
            beforeRelease: { _ in
                // On the writer's queue now, behind the visit under way.
                store.pool.asyncWrite({ _ in log.update { $0.append("direct") } }) { _, result in direct.update { $0 = result } }
            })
        try await Self.waitUntil { direct.value != nil }
        try direct.value?.get()
        return log.value
    }

    /// A write queued for a closed database gets its error (it does not wait forever), and so
    /// does the next one: the queue is not left marked as being drained.
    @Test func queuedWritesGetTheErrorOfAClosedDatabase() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try await Self.storeWithOneUser(in: directory)
        try store.pool.close()
        for _ in 0..<2 {
            await #expect(throws: DatabaseError.self) { try await store.write(profileId: "p") { _ in } }
            #expect(store.writeGroups.queued == 0)
        }
    }

    /// Every bookmark field (`BookmarkRules.dataFields`, which the REST routes filter by) is kept
    /// by a create, and a member that names none is dropped: the validation's cases and the set
    /// name the same fields.
    @Test func aBookmarkCreateKeepsEveryBookmarkFieldAndNothingElse() async throws {
        try await Self.withEngine { store, engine in
            let data: [String: JSONValue] = [
                "title": "T", "url": "https://a.example/", "favicon": "https://a.example/f.ico", "isFolder": false, "tags": ["x"],
                "notes": "n", "dateAdded": 1_700_000_000_000, "dateModified": 1_700_000_000_001, "bogus": "dropped",
            ]
            #expect(Set(data.keys).subtracting(["bogus"]) == BookmarkRules.dataFields)
            let (result, _) = try await engine.pushOne(
                SyncOperation(opId: "all-fields", type: .create, collection: "bookmarks", id: "b", data: .object(data)), profileId: "p", clientId: nil)
            #expect(result.status == .applied)
            let stored = try #require(try await store.read { try $0.records("p", "bookmarks", ids: ["b"]) }["b"])
            #expect(Set(stored.data.keys) == BookmarkRules.dataFields.union(["parentId", "position"]))
        }
    }

    /// Holds the writer with a long write, starts `queued` (whose writes then queue behind it),
    /// and lets the writer go once `inFlight` writes of the store are under way; returns what
    /// `queued` returns.
    /// `beforeRelease` sees the task running `queued` once its writes are queued.
    static func whileTheWriterIsHeld<T: Sendable>(
        _ store: SQLiteSyncStore, inFlight: Int, queued: @escaping @Sendable () async throws -> T,
        beforeRelease: (Task<T, any Error>) -> Void = { _ in }
    ) async throws -> T {
        let started = Flag()
        let released = Flag()
        defer { released.raise() }
        let holding = Task {
            try await store.write(profileId: "p") { _ in
                started.raise()
                while !released.isRaised { usleep(1_000) }
            }
        }
        try await Self.waitUntil { started.isRaised }
        let waiting = Task { try await queued() }
        // Every write but the holder's in the queue, not only under way.
        try await Self.waitUntil {
            store.writesInFlight.load(ordering: .relaxed) == inFlight && store.writeGroups.queued == inFlight - 1
        }
        beforeRelease(waiting)
        released.raise()
        try await holding.value
        return try await waiting.value
    }

    struct TimedOut: Error {}

    static func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw TimedOut() }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Starts `writes` one after the other, each once the one before is under way, so that they
    /// queue in that order; returns their outcomes in that order.
    static func inOrder(
        _ store: SQLiteSyncStore, _ writes: [@Sendable () async throws -> Void]
    ) async throws -> [Result<Void, any Error>] {
        let base = store.writesInFlight.load(ordering: .relaxed)
        var tasks: [Task<Void, any Error>] = []
        for (index, write) in writes.enumerated() {
            tasks.append(Task { try await write() })
            if index < writes.count - 1 { try await Self.waitUntil { store.writesInFlight.load(ordering: .relaxed) == base + index + 1 } }
        }
        var outcomes: [Result<Void, any Error>] = []
        for task in tasks { outcomes.append(await task.result) }
        return outcomes
    }

    /// A push of two creates (not a short write: it never runs on its caller's thread).
    static func pushTwo(_ engine: SyncEngine, _ id: String) async throws -> [OperationResult] {
        let ops = ["\(id)-a", "\(id)-b"].map { SyncOperation(opId: "op-\($0)", type: .create, collection: "notes", id: $0, data: ["text": .string($0)]) }
        return try await engine.push(PushRequest(profileId: "p", clientId: nil, operations: ops)).results
    }

    /// Writes that queue while the writer is busy commit together, in one transaction: each in
    /// its own savepoint, so one that throws is undone alone and gets its own error.
    @Test func queuedWritesShareOneCommitAndAFailingOneIsUndoneAlone() async throws {
        try await Self.withEngine { store, engine in
            let sequenceBefore = try await engine.sequence(profileId: "p")
            struct Refused: Error {}

            // Given 10 pushes and one write that raises the profile's sequence, then throws, all
            // queued while a long write holds the writer
            let (pushes, failure) = try await Self.whileTheWriterIsHeld(store, inFlight: 12) {
                async let failing: Result<Void, any Error> = {
                    do {
                        try await store.write(profileId: "p", operations: 1) { tx in
                            try (tx as! SQLiteSyncTransaction).db.execute(sql: "UPDATE profiles SET seq = seq + 1000 WHERE id = 'p'")
                            throw Refused()
                        }
                        return .success(())
                    } catch { return .failure(error) }
                }()
                let pushes = try await withThrowingTaskGroup(of: [OperationResult].self) { group in
                    for index in 0..<10 { group.addTask { try await Self.pushTwo(engine, "group-\(index)") } }
                    return try await group.reduce(into: []) { $0 += $1 }
                }
                return (pushes, await failing)
            }

            // Then the 11 shared one transaction; the pushes applied, each with its own versions,
            // and the failing write got its own error with nothing of it left
            #expect(store.writeGroups.sharedCommits.load(ordering: .relaxed) == 1)
            #expect(store.writeGroups.writesInSharedCommits.load(ordering: .relaxed) == 11)
            #expect(pushes.count == 20 && pushes.allSatisfy { $0.status == .applied })
            #expect(Set(pushes.compactMap(\.version)).count == 20)
            if case .failure(let error) = failure { #expect(error is Refused) } else { Issue.record("the failing write succeeded") }
            #expect(try await engine.sequence(profileId: "p") == sequenceBefore + 20)
        }
    }

    /// A write that ends the whole transaction (SQLite rolls back on its own after some I/O
    /// errors; here an explicit ROLLBACK) takes its group with it: no write of the group is
    /// acknowledged, and none is applied, neither those before it (rolled back with it) nor
    /// those after it (GRDB refuses their statements too: "Transaction was aborted").
    @Test func aWriteThatEndsTheTransactionFailsItsWholeGroup() async throws {
        try await Self.withEngine { store, engine in
            let sequenceBefore = try await engine.sequence(profileId: "p")
            struct Ended: Error {}

            // Given two pushes, one write that rolls the transaction back, then two more pushes,
            // queued in that order
            let outcomes = try await Self.whileTheWriterIsHeld(store, inFlight: 6) {
                try await Self.inOrder(
                    store,
                    (0..<5).map { index in
                        if index != 2 { return { _ = try await Self.pushTwo(engine, "lost-\(index)") } }
                        return {
                            try await store.write(profileId: "p", operations: 1) { tx in
                                try (tx as! SQLiteSyncTransaction).db.execute(sql: "ROLLBACK")
                                throw Ended()
                            }
                        }
                    })
            }

            // Then the write that ended it got its own error, every other write of the group
            // GroupRolledBack, and the profile is as before
            for (index, outcome) in outcomes.enumerated() {
                guard case .failure(let error) = outcome else {
                    Issue.record("write \(index) succeeded")
                    continue
                }
                if index == 2 { #expect(error is Ended) } else { #expect(error is WriteGroups.GroupRolledBack) }
            }
            #expect(outcomes.count == 5)
            #expect(try await engine.sequence(profileId: "p") == sequenceBefore)
            let records = try await store.read { reader in try reader.allRecords("p", "notes", includeDeleted: true) }
            #expect(records.isEmpty)
            // And the next write commits
            #expect(try await Self.pushTwo(engine, "after").allSatisfy { $0.status == .applied })
        }
    }

    /// A group whose commit fails (here a deferred foreign key) answers that error to every
    /// write of it, and applies none.
    @Test func aGroupWhoseCommitFailsAppliesNothing() async throws {
        try await Self.withEngine { store, engine in
            let sequenceBefore = try await engine.sequence(profileId: "p")

            // Given a push, a write that leaves an op result of a profile that does not exist (checked
            // only at the commit), and another push, queued in that order
            let outcomes = try await Self.whileTheWriterIsHeld(store, inFlight: 4) {
                try await Self.inOrder(
                    store,
                    [
                        { _ = try await Self.pushTwo(engine, "first") },
                        {
                            try await store.write(profileId: "p", operations: 1) { tx in
                                let db = try (tx as! SQLiteSyncTransaction).db
                                try db.execute(sql: "PRAGMA defer_foreign_keys = ON")
                                try db.execute(
                                    sql: "INSERT INTO applied_ops (profile_id, op_id, payload_hash, result, created_at) VALUES ('nobody', 'x', x'00', '{}', 1)")
                            }
                        },
                        { _ = try await Self.pushTwo(engine, "last") },
                    ])
            }

            // Then all three failed with the commit's error, and nothing of them is stored
            #expect(outcomes.count == 3)
            for outcome in outcomes {
                guard case .failure(let error) = outcome else {
                    Issue.record("a write of the group succeeded")
                    continue
                }
                #expect((error as? DatabaseError)?.resultCode == .SQLITE_CONSTRAINT)
            }
            #expect(try await engine.sequence(profileId: "p") == sequenceBefore)
            let records = try await store.read { reader in try reader.allRecords("p", "notes", includeDeleted: true) }
            #expect(records.isEmpty)
        }
    }

    /// Only pushes share a transaction, in queue order, up to 32 writes and 1,000 ops: another
    /// write (an import, a purge) runs alone, and so does a push that would take a group past
    /// 1,000 ops.
    @Test func onlyPushesThatFitShareATransaction() async throws {
        try await Self.withEngine { store, engine in
            let big = (0..<999).map { SyncOperation(opId: "op-big-\($0)", type: .create, collection: "notes", id: "big-\($0)", data: ["n": .number(Double($0))]) }

            // Given, in this order: two pushes, a write that is not a push, two pushes, a push of
            // 999 ops
            let outcomes = try await Self.whileTheWriterIsHeld(store, inFlight: 7) {
                try await Self.inOrder(
                    store,
                    [
                        { _ = try await Self.pushTwo(engine, "a") },
                        { _ = try await Self.pushTwo(engine, "b") },
                        { try await store.write(profileId: "p") { _ in } },
                        { _ = try await Self.pushTwo(engine, "c") },
                        { _ = try await Self.pushTwo(engine, "d") },
                        { _ = try await engine.push(PushRequest(profileId: "p", clientId: nil, operations: big)) },
                    ])
            }

            // Then they ran as a, b together; the other write alone; c, d together; the big push
            // alone (c, d and it hold 1,003 ops)
            #expect(outcomes.count == 6)
            for outcome in outcomes { if case .failure(let error) = outcome { Issue.record("a write failed: \(error)") } }
            #expect(store.writeGroups.sharedCommits.load(ordering: .relaxed) == 2)
            #expect(store.writeGroups.writesInSharedCommits.load(ordering: .relaxed) == 4)
            #expect(try await store.read { reader in try reader.allRecords("p", "notes", includeDeleted: false) }.count == 8 + 999)
        }
    }

    /// A queued write whose caller is cancelled before its group starts is dropped.
    @Test func aQueuedWriteCancelledBeforeItsGroupIsNotApplied() async throws {
        try await Self.withEngine { store, engine in
            let sequenceBefore = try await engine.sequence(profileId: "p")

            // Given a push queued while a long write holds the writer, and cancelled there
            let outcome: Result<[OperationResult], any Error>
            do {
                outcome = .success(try await Self.whileTheWriterIsHeld(store, inFlight: 2, queued: { try await Self.pushTwo(engine, "cancelled") }) { $0.cancel() })
            } catch {
                outcome = .failure(error)
            }

            // Then it ends with CancellationError, and nothing of it was written
            if case .failure(let error) = outcome { #expect(error is CancellationError) } else { Issue.record("the cancelled push was applied") }
            #expect(try await engine.sequence(profileId: "p") == sequenceBefore)
        }
    }

    /// An in-memory database for a test. SQLite can be configured only before it starts, once
    /// per process, and the tests of this suite run in parallel: like the store, the queue turns
    /// memory statistics off first, or `memoryStatisticsAreOffBeforeTheFirstConnection` would
    /// fail whenever this queue opened before any store.
    static func scratchQueue() throws -> DatabaseQueue {
        _ = cairn_sqlite_disable_memstatus()
        return try DatabaseQueue()
    }

    /// Runs `body` over a prepared store holding user `u` with its default profile `p`, in a
    /// temporary directory removed afterwards, and an engine over that store.
    static func withEngine<T>(_ body: (SQLiteSyncStore, SyncEngine) async throws -> T) async throws -> T {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try await Self.storeWithOneUser(in: directory)
        return try await body(store, SyncEngine(store: store, clock: .system, limits: Limits(), notifier: NoChangeNotifier(), logger: Logger(label: "test")))
    }

    /// A prepared store in `directory` holding user `u` with its default profile `p`.
    static func storeWithOneUser(in directory: TemporaryDirectory) async throws -> SQLiteSyncStore {
        let store = try SQLiteSyncStore(path: directory.url.appendingPathComponent("db.sqlite").path)
        try await store.prepare()
        try await store.createUser(
            StoredUser(id: "u", email: "u@x.co", emailNormalized: "u@x.co", passwordHash: "h", createdAt: 1, updatedAt: 1),
            defaultProfile: StoredProfile(id: "p", userId: "u", name: "default", createdAt: 1, updatedAt: 1)
        )
        return store
    }
}

/// A value shared between tasks.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { self.mutex = Mutex(value) }
    var value: Value { self.mutex.withLock { $0 } }
    func update(_ change: (inout Value) -> Void) { self.mutex.withLock { change(&$0) } }
}

/// A flag one thread raises and another watches.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func raise() { self.value.store(true, ordering: .releasing) }
    var isRaised: Bool { self.value.load(ordering: .acquiring) }
}
