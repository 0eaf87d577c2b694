import Synchronization

/// Rows that almost never change, kept in memory by key after their first read: the store's users
/// and profile names, which every authenticated request reads.
///
/// The store that owns the cache is the only writer of those rows (one `cairn serve` process owns
/// its SQLite data directory), and it calls ``invalidate(_:)`` after every write to one. A read
/// that began before an invalidation does not fill the cache: ``fill(_:for:since:)`` takes the
/// ``generation`` read before the lookup, and any invalidation in between moves it on. Bounded:
/// when full it is emptied.
final class LookupCache<Value: Sendable>: Sendable {
    private struct State {
        var entries: [String: Value] = [:]
        var generation: UInt64 = 0
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    /// The cached value of `key`, if any.
    func value(_ key: String) -> Value? {
        self.state.withLock { $0.entries[key] }
    }

    /// Read before a lookup whose result is then passed to ``fill(_:for:since:)``.
    var generation: UInt64 {
        self.state.withLock { $0.generation }
    }

    /// Keeps `value` unless an invalidation happened since `generation` was read.
    func fill(_ value: Value, for key: String, since generation: UInt64) {
        self.state.withLock { state in
            guard state.generation == generation else { return }
            if state.entries.count >= self.capacity { state.entries.removeAll(keepingCapacity: true) }
            state.entries[key] = value
        }
    }

    /// Forgets `key`, and keeps lookups already under way from filling the cache.
    func invalidate(_ key: String) {
        self.state.withLock { state in
            state.generation &+= 1
            state.entries[key] = nil
        }
    }

    /// Forgets everything (rare writes that may touch many keys: a profile rename or deletion).
    func invalidateAll() {
        self.state.withLock { state in
            state.generation &+= 1
            state.entries.removeAll()
        }
    }

    var count: Int { self.state.withLock { $0.entries.count } }
}
