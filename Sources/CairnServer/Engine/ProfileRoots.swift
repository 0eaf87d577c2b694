import Synchronization

/// The profiles whose bookmark roots (`toolbar`, `menu`, `other`, `mobile`) are known to
/// be committed, so that a push does not read them again.
///
/// Every push of bookmarks first makes sure the roots exist (``BookmarkRules/ensureRoots()``),
/// which read the four root records (their data and stamps parsed) once per push: about 0.08 ms of
/// the writer's time, a fiftieth of a push's CPU. A root cannot be deleted, moved or recreated,
/// so once a transaction that read or created them has committed, they stay until the profile
/// itself is deleted (``SyncEngine/deleteProfile(profileId:clientId:)``, which forgets it here).
/// A profile is noted only after its push's commit is durable: a push rolled back (an atomic
/// batch refused, a group commit that failed) notes nothing, and the next push reads again.
final class ProfileRoots: Sendable {
    private let present = Mutex<Set<String>>([])

    /// Whether the roots of `profileId` are known to be committed.
    func arePresent(_ profileId: String) -> Bool {
        self.present.withLock { $0.contains(profileId) }
    }

    /// After a commit whose transaction read or created every root of `profileId`.
    func notePresent(_ profileId: String) {
        _ = self.present.withLock { $0.insert(profileId) }
    }

    /// The profile was deleted: its roots are tombstoned with everything else.
    func forget(_ profileId: String) {
        _ = self.present.withLock { $0.remove(profileId) }
    }
}
