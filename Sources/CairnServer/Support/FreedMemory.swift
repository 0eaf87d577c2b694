import CSQLiteTuning
import Dispatch
import Synchronization

/// Gives the memory of closed WebSockets back to the system after many of them closed.
///
/// glibc keeps what a process frees in its heap's free lists. After 10,000 sockets closed, the
/// server kept 600 MB resident, and the free lists were so long that a push of creates spent
/// 11% of its CPU in `malloc` walking them (2% on a fresh server) and took 40–80% more CPU per
/// create (docs/benchmarks.md, session 20). `malloc_trim` merges the free chunks and returns
/// whole free pages: 600 MB → 210 MB there. It walks the whole heap, holding each arena's lock
/// in turn (a thread allocating meanwhile waits), so it runs on a utility thread, only once
/// `threshold` sockets closed since the last time, and at most once per `interval`. The chunk
/// lists stay as long: what it gives back is memory, more than speed.
final class FreedMemory: Sendable {
    let threshold: Int
    let interval: Duration
    private let closedSinceRelease = Atomic<Int>(0)
    private let lastRelease = Mutex<ContinuousClock.Instant?>(nil)
    private let release: @Sendable () -> Void

    init(threshold: Int = 1_000, interval: Duration = .seconds(30), release: @escaping @Sendable () -> Void = FreedMemory.trimHeap) {
        self.threshold = threshold
        self.interval = interval
        self.release = release
    }

    /// A socket closed.
    func noteClosed() {
        self.closedSinceRelease.add(1, ordering: .relaxed)
    }

    /// Releases the heap's free memory if `threshold` sockets closed since the last release and
    /// `interval` has passed since it; returns whether it did. Called by the hub's sweep, every
    /// two seconds.
    @discardableResult
    func releaseIfDue(now: ContinuousClock.Instant = .now) -> Bool {
        let closed = self.closedSinceRelease.load(ordering: .relaxed)
        guard closed >= self.threshold else { return false }
        let due = self.lastRelease.withLock { last in
            if let last, now - last < self.interval { return false }
            last = now
            return true
        }
        guard due else { return false }
        // Closes counted since the load stay counted.
        self.closedSinceRelease.subtract(closed, ordering: .relaxed)
        self.release()
        return true
    }

    /// `malloc_trim(0)` on a utility thread (a no-op where glibc is not the allocator).
    static let trimHeap: @Sendable () -> Void = {
        DispatchQueue.global(qos: .utility).async { cairn_malloc_trim() }
    }
}
