import Foundation
import Synchronization
import Testing

@testable import CairnServer

/// The heap's free memory is given back once `threshold` sockets closed since the last time, not
/// before, and not again until as many more closed.
@Suite("Freed memory")
struct FreedMemoryTests {
    @Test func releasesOnceAThresholdOfSocketsClosed() {
        let releases = Atomic<Int>(0)
        let memory = FreedMemory(threshold: 1_000, interval: .zero) { releases.add(1, ordering: .relaxed) }
        for _ in 0..<999 { memory.noteClosed() }
        #expect(memory.releaseIfDue() == false)
        memory.noteClosed()
        #expect(memory.releaseIfDue() == true)
        #expect(memory.releaseIfDue() == false)
        for _ in 0..<2_500 { memory.noteClosed() }
        #expect(memory.releaseIfDue() == true)
        #expect(releases.load(ordering: .relaxed) == 2)
    }

    /// Not twice within `interval`, however many closed; the closes wait for the next time.
    @Test func releasesAtMostOncePerInterval() {
        let releases = Atomic<Int>(0)
        let memory = FreedMemory(threshold: 10, interval: .seconds(30)) { releases.add(1, ordering: .relaxed) }
        let start = ContinuousClock.now
        for _ in 0..<10 { memory.noteClosed() }
        #expect(memory.releaseIfDue(now: start))
        for _ in 0..<50 { memory.noteClosed() }
        #expect(memory.releaseIfDue(now: start + .seconds(29)) == false)
        #expect(memory.releaseIfDue(now: start + .seconds(30)))
        #expect(memory.releaseIfDue(now: start + .seconds(90)) == false)
        #expect(releases.load(ordering: .relaxed) == 2)
    }

    /// The real release runs and the process goes on (glibc's `malloc_trim`).
    @Test func theHeapTrimRuns() async throws {
        let memory = FreedMemory(threshold: 1, interval: .zero)
        memory.noteClosed()
        #expect(memory.releaseIfDue())
        try await Task.sleep(for: .milliseconds(50))
        let bytes = [UInt8](repeating: 1, count: 1 << 20)
        #expect(bytes.count == 1 << 20)
    }
}
