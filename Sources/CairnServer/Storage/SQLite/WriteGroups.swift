import GRDB
import Synchronization

/// Group commit: the writes that queue while the writer is busy share its next transaction, and
/// so one commit and one fsync, instead of one each. SQLite has one writer, so concurrent pushes
/// (four devices of four users) used to commit one after the other; a commit is about a seventh
/// of a 100-op push's server time.
///
/// Each write of a group runs in a savepoint of its own: one that throws is rolled back to it and
/// gets its own error, and the others commit, as if each had had its transaction. No write is
/// answered before the group's commit is durable; when the commit fails, or an error ends the
/// whole transaction (SQLite rolls back on its own after some I/O errors), every write of the
/// group gets that error and none of them is applied. A write whose caller is cancelled before
/// its group starts is dropped (`CancellationError`); once started, it runs to its end.
///
/// A group of one runs exactly as a transaction of its own: no savepoint.
final class WriteGroups: Sendable {
    /// The most writes one transaction takes (a push holds at most `maxOpsPerPush` ops).
    static let maximumGroup = 32

    private struct State {
        var queue: [QueuedWrite] = []
        var draining = false
    }

    private let pool: DatabasePool
    private let state = Mutex(State())
    /// Transactions that held more than one write, and the writes they held (for tests and
    /// benchmarks).
    let sharedCommits = Atomic<Int>(0)
    let writesInSharedCommits = Atomic<Int>(0)

    init(pool: DatabasePool) {
        self.pool = pool
    }

    /// Runs `transaction` in the next group and returns its value once that group has committed.
    func write<T: Sendable>(_ transaction: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let write = TypedQueuedWrite(transaction)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                write.continuation = continuation
                let startDraining = self.state.withLock { state in
                    state.queue.append(write)
                    defer { state.draining = true }
                    return !state.draining
                }
                // Not on the caller's task: cancelling one caller must not interrupt the others'
                // transaction.
                if startDraining { Task.detached { await self.drain() } }
            }
        } onCancel: {
            write.cancelled.store(true, ordering: .releasing)
        }
    }

    /// Runs groups until the queue is empty.
    private func drain() async {
        while true {
            let group: [QueuedWrite] = self.state.withLock { state in
                let taken = Array(state.queue.prefix(Self.maximumGroup))
                state.queue.removeFirst(taken.count)
                if taken.isEmpty { state.draining = false }
                return taken
            }
            if group.isEmpty { return }
            await self.run(group)
        }
    }

    private func run(_ group: [QueuedWrite]) async {
        var live: [QueuedWrite] = []
        for write in group {
            // Never run: it ends with `CancellationError`.
            if write.cancelled.load(ordering: .acquiring) { write.finish(nil) } else { live.append(write) }
        }
        guard !live.isEmpty else { return }
        let writes = live
        do {
            try await self.pool.write { db in
                if writes.count == 1 {
                    try writes[0].run(db)
                    return
                }
                for write in writes {
                    try db.cachedStatement(sql: "SAVEPOINT grouped_write").execute()
                    do {
                        try write.run(db)
                        try db.cachedStatement(sql: "RELEASE SAVEPOINT grouped_write").execute()
                    } catch {
                        if write.error == nil { write.error = error }
                        // SQLite ended the whole transaction: nothing of the group is left.
                        guard db.isInsideTransaction else { throw error }
                        try db.cachedStatement(sql: "ROLLBACK TO SAVEPOINT grouped_write").execute()
                        try db.cachedStatement(sql: "RELEASE SAVEPOINT grouped_write").execute()
                    }
                }
            }
            if writes.count > 1 {
                self.sharedCommits.add(1, ordering: .relaxed)
                self.writesInSharedCommits.add(writes.count, ordering: .relaxed)
            }
            for write in writes { write.finish(nil) }
        } catch {
            // Not committed: a write that failed on its own keeps its error, the others get the
            // transaction's.
            for write in writes { write.finish(error) }
        }
    }
}

/// A write waiting for its group. Touched by its caller until it is queued, then only by the
/// draining task (the queue's mutex orders the two); `cancelled` by either.
class QueuedWrite: @unchecked Sendable {
    let cancelled = Atomic<Bool>(false)
    /// The write's own error: it threw, and was rolled back (alone, or with its transaction).
    var error: (any Error)?

    /// Runs the write's body inside the group's transaction; throws its error.
    func run(_ db: Database) throws { fatalError("abstract") }

    /// Answers the caller once the group has ended: its own error if it threw, else
    /// `transactionError` if the group did not commit, else its value (`CancellationError` if it
    /// never ran).
    func finish(_ transactionError: (any Error)?) { fatalError("abstract") }
}

private final class TypedQueuedWrite<T: Sendable>: QueuedWrite, @unchecked Sendable {
    let transaction: @Sendable (Database) throws -> T
    var continuation: CheckedContinuation<T, any Error>?
    private var value: T?

    init(_ transaction: @escaping @Sendable (Database) throws -> T) {
        self.transaction = transaction
    }

    override func run(_ db: Database) throws {
        do {
            self.value = try self.transaction(db)
        } catch {
            self.error = error
            throw error
        }
    }

    override func finish(_ transactionError: (any Error)?) {
        if let error = self.error ?? transactionError {
            self.continuation?.resume(throwing: error)
        } else if let value = self.value {
            self.continuation?.resume(returning: value)
        } else {
            self.continuation?.resume(throwing: CancellationError())
        }
        self.continuation = nil
    }
}
