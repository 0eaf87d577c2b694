import GRDB
import Synchronization

/// Group commit: the pushes that queue while the writer is busy share its next transaction, and
/// so one commit and one fsync, instead of one each. SQLite has one writer, so concurrent pushes
/// (four devices of four users) used to commit one after the other. On a disk whose fsync takes
/// milliseconds (an SD card, a consumer SSD) that wait is most of a push's time.
///
/// A group takes, in the order they queued, up to 32 pushes holding up to 1,000 ops in all (a
/// push above that runs alone). Other writes (an import, a purge, a profile's deletion) always
/// run alone, so a push never waits for the commit of a long write it did not queue behind.
///
/// Each write of a group runs in a savepoint of its own: one that throws is rolled back to it and
/// gets its own error, and the others commit, as if each had had its transaction. No write is
/// answered before the group's commit is durable. When the commit fails every write of the group
/// gets its error; when a write's error ended the whole transaction (SQLite rolls back on its own
/// after some I/O errors) that write gets its own error and the others `GroupRolledBack`. Either
/// way none of them is applied. A write whose caller is cancelled before its group starts is
/// dropped (`CancellationError`); once started it runs to its end (a caller's cancellation does
/// not interrupt a transaction that holds other callers' writes).
///
/// A group of one runs exactly as a transaction of its own: no savepoint.
final class WriteGroups: Sendable {
    /// The most writes, and the most ops, one shared transaction takes.
    static let maximumWrites = 32
    static let maximumOperations = 1_000

    /// The error of the other writes of a group whose transaction one write's error ended.
    struct GroupRolledBack: Error, CustomStringConvertible {
        var description: String { "The transaction was rolled back by another write it was shared with" }
    }

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
    /// Visits to GRDB's writer queue (for tests).
    let writerVisits = Atomic<Int>(0)

    init(pool: DatabasePool) {
        self.pool = pool
    }

    /// Writes waiting for their group (for tests).
    var queued: Int { self.state.withLock { $0.queue.count } }

    /// Runs `transaction` alone or, for a push of `operations` ops, in the next group, and
    /// returns its value once its transaction has committed.
    func write<T: Sendable>(operations: Int?, _ transaction: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try Task.checkCancellation()
        let write = TypedQueuedWrite(operations: operations, transaction)
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

    /// The next group: the first write, and the pushes after it that fit.
    private static func takeGroup(from queue: inout [QueuedWrite]) -> [QueuedWrite] {
        guard !queue.isEmpty else { return [] }
        let first = queue.removeFirst()
        var group = [first]
        guard var operations = first.operations else { return group }
        while group.count < Self.maximumWrites, let next = queue.first, let more = next.operations,
            operations + more <= Self.maximumOperations
        {
            operations += more
            group.append(next)
            queue.removeFirst()
        }
        return group
    }

    /// Runs groups until the queue is empty. The groups waiting run one after the other in one
    /// visit to GRDB's writer queue: an `await` of the writer per group cost two thread switches
    /// between groups (to the writer's thread and back to this task), during which the writer did
    /// nothing while pushes queued for it. A visit ends after `groupsPerWriterVisit` groups, or
    /// once the groups after its first have taken `writerVisitBudget`, so that the writes that go
    /// to GRDB's writer queue directly (sign-ins, API keys, audit rows) wait for at most the group
    /// under way and that much more.
    private func drain() async {
        while true {
            let more: Bool
            do {
                more = try await self.pool.writeWithoutTransaction { db in
                    self.writerVisits.add(1, ordering: .relaxed)
                    var budget: ContinuousClock.Instant?
                    for _ in 0..<Self.groupsPerWriterVisit {
                        if let budget, ContinuousClock.now >= budget { break }
                        let group = self.nextGroup()
                        if group.isEmpty { return false }
                        self.run(group, db)
                        // A rollback that failed left the transaction open: GRDB stops there
                        // when the visit ends, as it did after a transaction of one group.
                        if db.isInsideTransaction { return true }
                        budget = budget ?? ContinuousClock.now.advanced(by: Self.writerVisitBudget)
                    }
                    // Ends draining when the last group emptied the queue (no visit to find it
                    // empty); else another visit follows.
                    return self.state.withLock { state in
                        if state.queue.isEmpty { state.draining = false }
                        return !state.queue.isEmpty
                    }
                }
            } catch {
                // Not expected: a group's own errors (a closed database's included) go to its
                // writes. Should the visit itself fail, every queued write gets its error.
                let group = self.state.withLock { state in
                    defer { state.queue.removeAll(); state.draining = false }
                    return state.queue
                }
                for write in group { write.finish(error) }
                return
            }
            if !more { return }
        }
    }

    /// The most groups one visit to the writer runs.
    static let groupsPerWriterVisit = 16
    /// How long the groups after a visit's first may take before the visit ends.
    static let writerVisitBudget = Duration.milliseconds(50)

    /// Takes the next group off the queue; none (and draining ends) when it is empty.
    private func nextGroup() -> [QueuedWrite] {
        self.state.withLock { state in
            let taken = Self.takeGroup(from: &state.queue)
            if taken.isEmpty { state.draining = false }
            return taken
        }
    }

    /// Runs one group in a transaction of its own and answers its writes.
    private func run(_ group: [QueuedWrite], _ db: Database) {
        var writes: [QueuedWrite] = []
        for write in group {
            // Never run: it ends with `CancellationError`.
            if write.cancelled.load(ordering: .acquiring) { write.finish(nil) } else { writes.append(write) }
        }
        guard !writes.isEmpty else { return }
        do {
            try db.inTransaction {
                if writes.count == 1 {
                    try writes[0].run(db)
                    return .commit
                }
                for write in writes {
                    try db.cachedStatement(sql: "SAVEPOINT grouped_write").execute()
                    do {
                        try write.run(db)
                        try db.cachedStatement(sql: "RELEASE SAVEPOINT grouped_write").execute()
                    } catch {
                        if write.error == nil { write.error = error }
                        // SQLite ended the whole transaction: nothing of the group is left.
                        guard db.isInsideTransaction else { throw GroupRolledBack() }
                        try db.cachedStatement(sql: "ROLLBACK TO SAVEPOINT grouped_write").execute()
                        try db.cachedStatement(sql: "RELEASE SAVEPOINT grouped_write").execute()
                    }
                }
                return .commit
            }
            if writes.count > 1 {
                self.sharedCommits.add(1, ordering: .relaxed)
                self.writesInSharedCommits.add(writes.count, ordering: .relaxed)
            }
            for write in writes { write.finish(nil) }
        } catch {
            // Not committed: a write that failed keeps its own error, the others get the
            // transaction's (`GroupRolledBack` when one write's error ended it).
            for write in writes { write.finish(error) }
        }
    }
}

/// A write waiting for its group. Touched by its caller until it is queued, then only by the
/// draining task (the queue's mutex orders the two); `cancelled` by either.
class QueuedWrite: @unchecked Sendable {
    /// The push's op count (`nil`: a write that runs alone).
    let operations: Int?
    let cancelled = Atomic<Bool>(false)
    /// The write's own error, when it threw inside a shared transaction (alone, its error is the
    /// transaction's).
    var error: (any Error)?

    init(operations: Int?) {
        self.operations = operations
    }

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

    init(operations: Int?, _ transaction: @escaping @Sendable (Database) throws -> T) {
        self.transaction = transaction
        super.init(operations: operations)
    }

    override func run(_ db: Database) throws {
        self.value = try self.transaction(db)
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
