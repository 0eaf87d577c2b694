import CSQLiteTuning
import Dispatch
import Synchronization

/// Gives the memory of closed WebSockets back to the system after many of them closed.
///
/// glibc keeps what a process frees in its heap's free lists. After 10,000 sockets closed, the
/// server kept 600 MB resident, and the free lists were so long that a push of creates spent
/// 11% of its CPU in `malloc` walking them (2% on a fresh server) and took 40–80% more CPU per
/// create (docs/benchmarks.md, session 20). `malloc_trim` merges the free chunks and returns
/// whole free pages: 600 MB → 210 MB there. It walks the whole heap, so it runs on a utility
/// thread, and only once `threshold` sockets closed since the last time.
final class FreedMemory: Sendable {
    let threshold: Int
    private let closedSinceRelease = Atomic<Int>(0)
    private let release: @Sendable () -> Void

    init(threshold: Int = 1_000, release: @escaping @Sendable () -> Void = FreedMemory.trimHeap) {
        self.threshold = threshold
        self.release = release
    }

    /// A socket closed.
    func noteClosed() {
        self.closedSinceRelease.add(1, ordering: .relaxed)
    }

    /// Releases the heap's free memory if `threshold` sockets closed since the last release;
    /// returns whether it did. Called by the hub's sweep, every two seconds.
    @discardableResult
    func releaseIfDue() -> Bool {
        guard self.closedSinceRelease.load(ordering: .relaxed) >= self.threshold else { return false }
        self.closedSinceRelease.store(0, ordering: .relaxed)
        self.release()
        return true
    }

    /// `malloc_trim(0)` on a utility thread (a no-op where glibc is not the allocator).
    static let trimHeap: @Sendable () -> Void = {
        DispatchQueue.global(qos: .utility).async { cairn_malloc_trim() }
    }
}
