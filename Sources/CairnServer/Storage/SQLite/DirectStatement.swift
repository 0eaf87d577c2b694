import CSQLiteTuning
import Foundation
import GRDB

/// Binds values straight into one of GRDB's prepared statements and runs it: for the inserts every
/// pushed op makes (its record and its op result). GRDB's `execute(arguments:)` builds an
/// array of existentials, then a `DatabaseValue` for each, then binds them; in a profile of pushed
/// creates that was about a tenth of the server's CPU.
///
/// Only for statements that return no rows, run inside the transaction of the connection that
/// prepared them. Values are bound in parameter order (`?` one after another); `run` checks that
/// every parameter got one, and a failed step throws GRDB's own `DatabaseError` with SQLite's
/// extended result code, as `execute` would (a taken primary key is `SQLITE_CONSTRAINT_PRIMARYKEY`).
///
/// It calls SQLite only, never GRDB, so that it can run on the write-behind thread
/// (``WriteBehind``) while GRDB's writer thread waits for it.
///
/// What `execute` does and this does not: GRDB's transaction observers never hear of these rows
/// (none is registered on `records` or `applied_ops`; one added there would have to
/// go through `execute` instead), and its guard against writing after SQLite rolled a transaction
/// back on its own is replaced by the check at the top of `run`.
///
/// Texts and blobs are copied into one buffer of the statement's own as they are bound, and
/// handed to SQLite in `run` as pointers into it that SQLite does not copy (`SQLITE_STATIC`); the
/// bindings are cleared before the buffer goes. The system SQLite is built without its lookaside
/// allocator, so SQLite's own copy of each was a malloc and a free: nine of each per pushed op.
struct DirectStatement {
    private let prepared: PreparedInsert
    private var bound: Int32 = 0
    /// The first bind that failed (`SQLITE_OK` while none did).
    private var bindFailure: Int32 = 0
    private var handle: SQLiteStatement { self.prepared.handle }
    /// The bytes of the texts and blobs bound so far, one after another.
    private var bytes: [UInt8] = []
    /// Where each of them is in `bytes`, bound in `run`.
    private var pending: [PendingBytes] = []

    private struct PendingBytes {
        let index: Int32
        let start: Int
        let count: Int
        let isBlob: Bool
    }

    init(_ prepared: PreparedInsert) {
        self.prepared = prepared
        // GRDB leaves a statement it ran finished, not reset, and a finished statement refuses
        // new bindings.
        cairn_stmt_reset(prepared.handle)
    }

    /// One of GRDB's prepared statements of `db`, on `db`'s thread.
    init(_ statement: Statement, _ db: Database) {
        self.init(PreparedInsert(statement, db, sql: statement.sql))
    }

    private mutating func next(_ code: Int32) {
        if code != 0, self.bindFailure == 0 { self.bindFailure = code }
    }

    mutating func bind(_ value: String) {
        self.bound += 1
        var value = value
        value.withUTF8 { self.keep(UnsafeRawBufferPointer($0), isBlob: false) }
    }

    /// Copies the bytes of the parameter being bound, to bind them in `run`.
    private mutating func keep(_ value: UnsafeRawBufferPointer, isBlob: Bool) {
        if self.pending.isEmpty {
            self.pending.reserveCapacity(16)
            self.bytes.reserveCapacity(512)
        }
        self.pending.append(PendingBytes(index: self.bound, start: self.bytes.count, count: value.count, isBlob: isBlob))
        self.bytes.append(contentsOf: value)
    }

    mutating func bind(_ value: String?) {
        guard let value else { return self.bindNull() }
        self.bind(value)
    }

    mutating func bind(_ value: Int64) {
        self.bound += 1
        self.next(cairn_bind_int64(self.handle, self.bound, value))
    }

    mutating func bind(_ value: Int64?) {
        guard let value else { return self.bindNull() }
        self.bind(value)
    }

    /// As GRDB stores a `Bool`: the integer 0 or 1.
    mutating func bind(_ value: Bool) {
        self.bind(value ? 1 as Int64 : 0)
    }

    mutating func bind(_ value: Data) {
        self.bound += 1
        value.withUnsafeBytes { self.keep($0, isBlob: true) }
    }

    mutating func bindNull() {
        self.bound += 1
        self.next(cairn_bind_null(self.handle, self.bound))
    }

    /// Runs the statement with the values bound. Throws if a bind failed, if a parameter was left
    /// without a value, or if SQLite refused the statement.
    func run() throws {
        // After an error that made SQLite roll the transaction back (a full disk, say), a write
        // would run in autocommit mode, outside the batch it belongs to: refuse it, as GRDB does.
        guard cairn_in_transaction(self.prepared.connection) != 0 else {
            cairn_stmt_reset(self.handle)
            throw DatabaseError(
                resultCode: .SQLITE_ABORT, message: "direct statement run outside a transaction",
                sql: self.prepared.sql
            )
        }
        let expected = cairn_bind_parameter_count(self.handle)
        let handle = self.handle
        var bindFailure = self.bindFailure
        // The step's code, or nil when a parameter could not be bound or was left without a value.
        let code: Int32? = self.bytes.withUnsafeBufferPointer { bytes in
            for pending in self.pending where bindFailure == 0 {
                let start = bytes.baseAddress.map { $0 + pending.start }
                let length = Int32(pending.count)
                let code = pending.isBlob
                    ? cairn_bind_blob_static(handle, pending.index, start, length)
                    : cairn_bind_text_static(handle, pending.index, start, length)
                if code != 0 { bindFailure = code }
            }
            guard bindFailure == 0, self.bound == expected else { return nil }
            // Before the bytes go: no binding may point at them afterwards.
            defer { cairn_stmt_clear_bindings(handle) }
            return cairn_stmt_run(handle)
        }
        guard let code else {
            cairn_stmt_clear_bindings(handle)
            cairn_stmt_reset(handle)
            throw DatabaseError(
                resultCode: bindFailure == 0 ? .SQLITE_RANGE : ResultCode(rawValue: bindFailure),
                message: "bound \(self.bound) of \(expected) parameters", sql: self.prepared.sql
            )
        }
        guard code == 101 /* SQLITE_DONE */ else {
            let message = cairn_errmsg(self.prepared.connection).map { String(cString: $0) }
            cairn_stmt_reset(self.handle)
            let error = DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: self.prepared.sql)
            throw Self.cancellation(for: error) ?? error
        }
    }

    /// A statement SQLite interrupted while its task is cancelled reads as the cancellation, as
    /// GRDB reports the interrupts it makes for cancelled async accesses (GRDB checks its own
    /// flag; this checks the task's). `nil` for any other error. On the write-behind thread no
    /// task is current: ``WriteBehind`` asks again on the thread that waits for it.
    static func cancellation(for error: any Error) -> CancellationError? {
        guard let error = error as? DatabaseError, Task.isCancelled else { return nil }
        return error.resultCode == .SQLITE_INTERRUPT || error.resultCode == .SQLITE_ABORT ? CancellationError() : nil
    }
}

/// A prepared insert of one connection, as ``DirectStatement`` needs it: SQLite's handles and the
/// SQL (for error messages), without GRDB's `Statement`, which only its own thread may use. The
/// `Statement` it came from must outlive it (GRDB finalizes the handle with it).
struct PreparedInsert: @unchecked Sendable {
    let handle: SQLiteStatement
    let connection: SQLiteConnection
    let sql: String

    /// `sql`: the statement's text, for error messages (GRDB's `Statement.sql` trims it again on
    /// every call).
    init(_ statement: Statement, _ db: Database, sql: String) {
        self.handle = statement.sqliteStatement
        // Inside a `read` or `write` closure the connection is open.
        self.connection = db.sqliteConnection!
        self.sql = sql
    }
}
