import Synchronization

/// Write-behind bookkeeping of the devices seen syncing (`GET /api/sync/status` lists them):
/// every push and pull notes its device here, and the notes reach the database at most once a
/// second, all in one transaction, instead of one durable write per request. A crash loses at
/// most the last second of "last seen" times, never sync data.
final class DeviceLog: Sendable {
    struct Key: Hashable {
        var profileId: String
        var clientId: String
    }

    private struct State {
        var pending: [Key: (cursor: Int64, at: Int64)] = [:]
        var flushScheduled = false
    }

    private let state = Mutex(State())
    let store: any SyncStore
    let delay: Duration

    init(store: any SyncStore, delay: Duration = .seconds(1)) {
        self.store = store
        self.delay = delay
    }

    /// Notes that `clientId` synced `profileId` up to `cursor` at `at` (ms).
    func note(profileId: String, clientId: String, cursor: Int64, at: Int64) {
        let schedule = self.state.withLock { state -> Bool in
            state.pending[Key(profileId: profileId, clientId: clientId)] = (cursor, at)
            if state.flushScheduled { return false }
            state.flushScheduled = true
            return true
        }
        guard schedule else { return }
        Task {
            try? await Task.sleep(for: self.delay)
            try? await self.flush()
        }
    }

    /// Writes every pending note now.
    func flush() async throws {
        let pending = self.state.withLock { state in
            defer {
                state.pending.removeAll()
                state.flushScheduled = false
            }
            return state.pending
        }
        guard !pending.isEmpty else { return }
        try await self.store.touchDevices(pending.map { ($0.key.profileId, $0.key.clientId, $0.value.cursor, $0.value.at) })
    }
}
