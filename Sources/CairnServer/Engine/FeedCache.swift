import CairnCore
import Synchronization

/// Shares change-feed pages among the WebSocket connections of a profile. After a commit every
/// socket of the profile wakes and asks for the changes after its cursor; sockets at the same
/// cursor (the usual case: they were all caught up) get one read and one encoding between them
/// instead of one each.
///
/// A page is shared only with callers that were woken no later than its read began: each commit
/// raises the profile's floor before the sockets are woken, and a page read for an older floor is
/// never handed out again, so a woken socket always sees the change that woke it.
final class FeedCache: Sendable {
    struct Key: Hashable {
        var profileId: String
        var since: Int64
        var collections: [String]?
        var limit: Int
    }

    private struct Entry {
        /// The profile's announced sequence when the read began.
        var floor: Int64
        var task: Task<FeedPage, any Error>
    }

    private struct State {
        var floors: [String: Int64] = [:]
        var entries: [Key: Entry] = [:]
    }

    private let state = Mutex(State())
    /// Most pages kept at once (each is at most one page of 200 events, except the first page of a
    /// resync from 0, which reaches the purge horizon).
    let capacity: Int

    init(capacity: Int = 256) {
        self.capacity = capacity
    }

    /// A commit in `profileId` up to `sequence`: pages read before it are no longer handed out.
    func committed(profileId: String, sequence: Int64) {
        self.state.withLock { state in
            if sequence > state.floors[profileId] ?? 0 { state.floors[profileId] = sequence }
            state.entries = state.entries.filter { $0.key.profileId != profileId || $0.value.floor >= sequence }
        }
    }

    /// The page for `key`: a shared one when it is fresh enough, else one read by `load` (and
    /// shared with the callers that come while it is read).
    func page(_ key: Key, load: @escaping @Sendable () async throws -> FeedPage) async throws -> FeedPage {
        let task = self.state.withLock { state -> Task<FeedPage, any Error> in
            let floor = state.floors[key.profileId] ?? 0
            if let entry = state.entries[key], entry.floor >= floor { return entry.task }
            if state.entries.count >= self.capacity { state.entries.removeAll(keepingCapacity: true) }
            let task = Task { try await load() }
            state.entries[key] = Entry(floor: floor, task: task)
            return task
        }
        do {
            return try await task.value
        } catch {
            // A failed read is not shared with later callers.
            self.state.withLock { state in
                if state.entries[key]?.task == task { state.entries[key] = nil }
            }
            throw error
        }
    }
}

/// Tells the feed cache about each commit before passing the hint on.
struct FeedCachingNotifier: ChangeNotifier {
    let cache: FeedCache
    let next: any ChangeNotifier

    func profileChanged(profileId: String, sequence: Int64, originClientId: String?) {
        self.cache.committed(profileId: profileId, sequence: sequence)
        self.next.profileChanged(profileId: profileId, sequence: sequence, originClientId: originClientId)
    }
}
