import Foundation
import Synchronization

/// Runs a push's inserts (its records and its op results) on a thread of their own, in
/// the order the engine made them, while the engine goes on with the next op: with one client,
/// the push's SQLite work and its Swift work then share the two cores instead of taking turns on
/// one. The store keeps one (there is one writer), and a push of many ops uses it from `begin`
/// to `finish` or `abandon` (``SQLiteSyncTransaction/init(_:writeBehind:)``); the thread starts
/// with the first such push and sleeps between pushes.
///
/// The connection is never used by both threads at once: everything else the transaction does
/// with it (a read, a savepoint, an update, GRDB's commit or rollback) first waits for the
/// inserts handed over before it (`drain`), and the thread touches SQLite only while it has
/// inserts to run. The lock and the counter's acquire/release order every insert after whatever
/// the engine did with the connection before handing it over, and every later use of the
/// connection after it.
///
/// An insert that fails fails the transaction: the inserts after it are dropped, and the error is
/// thrown by every later `submit` and `drain` of the push, so it cannot end as if it had been
/// written.
///
/// The inserts call SQLite only (`DirectStatement`), but SQLite may call back into GRDB on this
/// thread: its rollback hook (when SQLite ends the transaction on its own, after a full disk) and
/// its authorizer (when a statement is prepared again after a schema change). The hand-over
/// orders those calls like the inserts; no transaction observer, SQL function or collation may be
/// added for the tables these inserts write without going through `execute` instead.
final class WriteBehind: @unchecked Sendable {
    typealias Insert = @Sendable () throws -> Void

    /// How long either side spins for the other before it sleeps: longer than the engine takes
    /// for one op, far shorter than a push.
    static let spinLimit = Duration.microseconds(200)
    /// How long the thread spins for a push's first insert: longer than the engine's reads
    /// before it (about 0.25 ms for 100 creates).
    static let firstInsertSpinLimit = Duration.microseconds(600)

    /// Inserts this thread has run (for tests).
    let insertsRun = Atomic<Int>(0)
    /// While set, the thread leaves what is queued where it is (for tests: it makes "queued, not
    /// yet run" certain).
    let held = Atomic<Bool>(false)

    private let condition = NSCondition()
    // Guarded by `condition`.
    private var queue: [Insert] = []
    private var failure: (any Error)?
    private var stopped = false
    private var workerAsleep = false
    private var waiters = 0

    /// Inserts handed over and not yet run (or dropped).
    private let outstanding = Atomic<Int>(0)
    /// Set with `failure`, readable without the lock.
    private let failed = Atomic<Bool>(false)
    /// The push is being rolled back: inserts not yet run are dropped.
    private let dropping = Atomic<Bool>(false)
    /// A push is using the thread (between `begin` and its end): the thread spins for its next
    /// insert instead of sleeping at once.
    private let active = Atomic<Bool>(false)
    /// Set by `begin`, cleared when the thread takes the push's first inserts: `begin` wakes the
    /// thread, which then spins for up to `firstInsertSpinLimit` so as to be running when the
    /// engine hands over its first insert. Woken only then, it started about 0.1 ms late (a
    /// sleeping thread's wake-up on these virtual machines), and as it is the slower of the two
    /// sides, the push ended that much later.
    private let awaitingFirstInsert = Atomic<Bool>(false)

    /// Whether the thread was started: at the first push that uses it, not with the store (a
    /// store that never takes a push of many ops, as in most tests and CLI commands, has none).
    /// Guarded by `condition`.
    private var started = false

    private func startThread() {
        // The thread holds the object until it ends (`stop`).
        let thread = Thread { [self] in self.run() }
        thread.name = "cairn-write-behind"
        thread.start()
    }

    /// A push starts using the thread (one at a time: the store has one writer).
    func begin() {
        self.condition.lock()
        precondition(!self.active.load(ordering: .relaxed) && self.queue.isEmpty, "two pushes use the write-behind thread at once")
        self.failure = nil
        self.failed.store(false, ordering: .relaxed)
        self.dropping.store(false, ordering: .relaxed)
        self.active.store(true, ordering: .releasing)
        self.awaitingFirstInsert.store(true, ordering: .releasing)
        if !self.started {
            self.started = true
            self.startThread()
        } else if self.workerAsleep {
            self.condition.broadcast()
        }
        self.condition.unlock()
    }

    /// Lets the thread end (when its store goes away, so never during a push).
    func stop() {
        self.condition.lock()
        self.stopped = true
        self.condition.broadcast()
        self.condition.unlock()
    }

    /// Hands `insert` to the thread. Throws the error of an earlier insert instead.
    func submit(_ insert: @escaping Insert) throws {
        self.condition.lock()
        defer { self.condition.unlock() }
        if let failure = self.failure { throw Self.thrown(failure) }
        precondition(self.active.load(ordering: .relaxed), "an insert handed over outside a push")
        self.queue.append(insert)
        self.outstanding.add(1, ordering: .releasing)
        if self.workerAsleep { self.condition.broadcast() }
    }

    /// Waits until every insert handed over has run: after it, the caller may use the
    /// connection. Throws the first insert's error.
    func drain() throws {
        if self.outstanding.load(ordering: .acquiring) != 0 {
            Self.spin { self.outstanding.load(ordering: .acquiring) == 0 }
            if self.outstanding.load(ordering: .acquiring) != 0 {
                self.condition.lock()
                self.waitForIdle()
                self.condition.unlock()
            }
        }
        guard self.failed.load(ordering: .acquiring) else { return }
        self.condition.lock()
        let failure = self.failure
        self.condition.unlock()
        if let failure { throw Self.thrown(failure) }
    }

    /// An insert's error as the engine's thread throws it: an interrupt while its task is
    /// cancelled is the cancellation (no task is current on this thread).
    private static func thrown(_ failure: any Error) -> any Error {
        DirectStatement.cancellation(for: failure) ?? failure
    }

    /// The push is over: waits for what it handed over (throwing the first insert's error).
    func finish() throws {
        defer { self.end(dropping: false) }
        try self.drain()
    }

    /// The push is being rolled back: drops what is queued and waits for the insert under way.
    /// The connection is the caller's again when it returns. Returns the error of an insert that
    /// failed: the cause of the rollback, whatever the push threw after it.
    @discardableResult
    func abandon() -> (any Error)? {
        self.end(dropping: true)
    }

    @discardableResult
    private func end(dropping: Bool) -> (any Error)? {
        if dropping { self.dropping.store(true, ordering: .releasing) }
        self.condition.lock()
        if dropping {
            self.outstanding.subtract(self.queue.count, ordering: .releasing)
            self.queue.removeAll()
        }
        self.waitForIdle()
        self.active.store(false, ordering: .releasing)
        // A thread told to stop during the push ends now.
        if self.stopped { self.condition.broadcast() }
        let failure = self.failure
        self.condition.unlock()
        return failure.map(Self.thrown)
    }

    /// With the lock held: sleeps until the thread has run (or dropped) everything handed over.
    private func waitForIdle() {
        while self.outstanding.load(ordering: .acquiring) != 0 {
            self.waiters += 1
            self.condition.wait()
            self.waiters -= 1
        }
    }

    // MARK: The thread

    private func run() {
        var batch: [Insert] = []
        while true {
            if self.outstanding.load(ordering: .acquiring) == 0, self.active.load(ordering: .acquiring) {
                let limit = self.awaitingFirstInsert.load(ordering: .acquiring) ? Self.firstInsertSpinLimit : Self.spinLimit
                Self.spin(limit: limit) { self.outstanding.load(ordering: .acquiring) != 0 || !self.active.load(ordering: .acquiring) }
            }
            while self.held.load(ordering: .acquiring) { usleep(200) }
            self.condition.lock()
            while self.queue.isEmpty {
                if self.stopped, !self.active.load(ordering: .acquiring) {
                    self.condition.unlock()
                    return
                }
                self.workerAsleep = true
                self.condition.wait()
                self.workerAsleep = false
                // Woken by `begin`: spin for the first insert (above).
                if self.queue.isEmpty, self.active.load(ordering: .acquiring) { break }
            }
            if self.queue.isEmpty {
                self.condition.unlock()
                continue
            }
            self.awaitingFirstInsert.store(false, ordering: .relaxed)
            swap(&batch, &self.queue)
            var failure = self.failure
            self.condition.unlock()
            var ran = 0
            for insert in batch where failure == nil && !self.dropping.load(ordering: .acquiring) {
                do {
                    ran += 1
                    try insert()
                } catch {
                    failure = error
                }
            }
            self.insertsRun.add(ran, ordering: .relaxed)
            let count = batch.count
            batch.removeAll(keepingCapacity: true)
            self.condition.lock()
            if let failure, self.failure == nil {
                self.failure = failure
                self.failed.store(true, ordering: .releasing)
            }
            self.outstanding.subtract(count, ordering: .releasing)
            if self.waiters > 0 { self.condition.broadcast() }
            self.condition.unlock()
        }
    }

    /// Spins until `ready` or `limit`, giving the core to any other thread that wants it.
    private static func spin(limit: Duration = spinLimit, until ready: () -> Bool) {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: limit)
        var rounds = 0
        while !ready() {
            rounds &+= 1
            if rounds & 31 == 0 {
                if clock.now >= deadline { return }
                sched_yield()
            }
        }
    }
}
