import Synchronization

/// The sibling order of busy folders, kept between the pages of one pull. A pull of a folder with
/// thousands of children reads them over several pages, and each page needs their `sortOrder`:
/// without this, every page walked all of the folder's siblings again (a full pull of a
/// 10,000-child folder walked it once per page).
///
/// An order is handed out only for the profile sequence it was read at. Every write that changes
/// a live bookmark's place (create, move, delete, import) gives the profile a new sequence in the
/// same transaction, so a page read at that sequence sees the same siblings in the same order;
/// purging tombstones changes no live sibling. An order read at another sequence is never used.
final class SiblingOrderCache: Sendable {
    struct Key: Hashable {
        var profileId: String
        var parentId: String?
    }

    private struct Entry {
        var sequence: Int64
        /// Each live sibling's index, by id.
        var order: [String: Int]
        var lastUse: UInt64
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        /// Ids held over all entries.
        var held = 0
        var uses: UInt64 = 0
    }

    private let state = Mutex(State())
    /// Most ids held over all folders (about 100 bytes each); an order larger than this is not kept.
    let capacity: Int

    init(capacity: Int = 50_000) {
        self.capacity = capacity
    }

    /// The order of `parentId`'s live children, if one was kept at exactly `sequence`.
    func order(profileId: String, parentId: String?, sequence: Int64) -> [String: Int]? {
        self.state.withLock { state in
            let key = Key(profileId: profileId, parentId: parentId)
            guard let entry = state.entries[key], entry.sequence == sequence else { return nil }
            state.uses += 1
            state.entries[key]?.lastUse = state.uses
            return entry.order
        }
    }

    /// Keeps the order of `parentId`'s live children as read at `sequence`, making room by
    /// dropping the least recently used orders. An order read at an earlier sequence than the
    /// one kept for the folder is not kept (a slow reader does not replace a newer order).
    func keep(_ order: [String: Int], profileId: String, parentId: String?, sequence: Int64) {
        guard order.count <= self.capacity else { return }
        self.state.withLock { state in
            let key = Key(profileId: profileId, parentId: parentId)
            if let old = state.entries[key] {
                guard old.sequence < sequence else { return }
                state.entries[key] = nil
                state.held -= old.order.count
            }
            while state.held + order.count > self.capacity, let oldest = state.entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
                state.entries[oldest.key] = nil
                state.held -= oldest.value.order.count
            }
            state.uses += 1
            state.entries[key] = Entry(sequence: sequence, order: order, lastUse: state.uses)
            state.held += order.count
        }
    }

    /// Ids held over all entries (for tests).
    var held: Int { self.state.withLock { $0.held } }
}
