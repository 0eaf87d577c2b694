import CairnCore
import Dispatch
import Foundation
import Synchronization

/// The payload hashes of a push's ops (``BatchApplier/payloadHash(_:)``), taken by a second
/// thread while the push's transaction begins and reads what its ops name.
///
/// A push of 100 creates spends about 0.15 ms hashing, which used to come before the transaction;
/// its first reads take longer than that, and the other core is idle meanwhile. Each op is hashed
/// by whichever side claims it first: the helper takes ops from the front, and a transaction that
/// needs a hash the helper has not reached takes the ops up to it itself. The transaction never
/// waits for the helper (which may not run at all on a busy machine): an op the helper is hashing
/// at that moment it hashes too (the hash is a pure function of the op).
final class PayloadHashes: @unchecked Sendable {
    private let operations: [SyncOperation]
    /// The next op no one has claimed.
    private let next = Atomic<Int>(0)
    /// Per op: 1 once its hash is in `hashes`.
    private let done: UnsafeMutablePointer<Atomic<Int>>
    /// Per op: its hash, written once by the side that claimed it, read after `done` says so.
    private let hashes: UnsafeMutablePointer<Data>

    /// Pushes below this many ops are hashed on the caller's thread before their transaction: a
    /// helper costs more than it saves.
    static let helperOperations = 16

    init(_ operations: [SyncOperation]) {
        self.operations = operations
        self.done = .allocate(capacity: operations.count)
        self.hashes = .allocate(capacity: operations.count)
        for index in operations.indices {
            (self.done + index).initialize(to: Atomic(0))
            (self.hashes + index).initialize(to: Data())
        }
    }

    deinit {
        self.done.deinitialize(count: self.operations.count)
        self.done.deallocate()
        self.hashes.deinitialize(count: self.operations.count)
        self.hashes.deallocate()
    }

    /// How many ops were claimed so far (for tests).
    var claimed: Int { min(self.next.load(ordering: .relaxed), self.operations.count) }

    /// Hashes a small push's ops now, or starts the helper for a larger one. Call before the
    /// transaction.
    func start() {
        if self.operations.count < Self.helperOperations {
            self.hashUnclaimed(upTo: Int.max)
        } else {
            DispatchQueue.global().async { self.hashUnclaimed(upTo: Int.max) }
        }
    }

    /// The hash of op `index`: taken by the helper, or now.
    func hash(_ index: Int) -> Data {
        if self.done[index].load(ordering: .acquiring) == 0 {
            self.hashUnclaimed(upTo: index)
            // Claimed by the helper and being hashed right now (its thread may have lost its
            // core): hashed here too rather than waited for.
            if self.done[index].load(ordering: .acquiring) == 0 { return BatchApplier.payloadHash(self.operations[index]) }
        }
        return self.hashes[index]
    }

    /// Stops the helper after the op it is hashing (the transaction ended, or failed).
    func cancel() {
        self.next.store(self.operations.count, ordering: .relaxed)
    }

    /// Claims and hashes ops from the front until op `last` (or the end) is claimed.
    private func hashUnclaimed(upTo last: Int) {
        while true {
            let index = self.next.load(ordering: .relaxed)
            guard index <= last, index < self.operations.count else { return }
            guard self.next.compareExchange(expected: index, desired: index + 1, ordering: .relaxed).exchanged else { continue }
            self.hashes[index] = BatchApplier.payloadHash(self.operations[index])
            self.done[index].store(1, ordering: .releasing)
        }
    }
}
