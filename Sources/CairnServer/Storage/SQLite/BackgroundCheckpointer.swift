import CSQLiteTuning
import GRDB
import Synchronization

/// Checkpoints off the commit path: copying the write-ahead log back into the database file runs
/// on a connection of its own, while the writer goes on committing.
///
/// By default SQLite checkpoints inside the commit that takes the WAL past 1,000 frames (pages):
/// that commit copies them into the database file and fsyncs it before it returns, so every
/// thousandth page written made one push wait 5–20 ms, and every push queued behind it. Here the
/// writer's commit only notes how long the WAL has grown (a WAL hook, which replaces SQLite's
/// automatic checkpoint on that connection) and, every `every` frames, hands a PASSIVE checkpoint
/// to this connection, which copies what the readers let it copy without blocking anyone.
///
/// The WAL restarts from its start only once a checkpoint has copied all of it, which a
/// checkpoint running beside a busy writer rarely does (frames keep coming while it copies). So
/// at `ceiling` frames the writer checkpoints in its own commit, as SQLite would have done, and
/// the WAL stays bounded (`ceiling` frames and one transaction, 32 MiB at the defaults); that
/// checkpoint only copies what the background ones left. Nothing about durability changes: a
/// commit is durable in the WAL (synchronous=FULL) before it returns, whoever checkpoints it.
final class BackgroundCheckpointer: Sendable {
    /// WAL frames between two background checkpoints (SQLite's own automatic checkpoint threshold).
    let every: Int
    /// WAL frames at which the writer checkpoints in its commit.
    let ceiling: Int
    /// The checkpoint's own connection.
    let connection: DatabaseQueue
    /// Checkpoints run in the background, and by the writer at the ceiling (for tests and benchmarks).
    let backgroundCheckpoints = Atomic<Int>(0)
    let writerCheckpoints = Atomic<Int>(0)

    private struct State {
        /// A background checkpoint is queued or running.
        var running = false
        /// The WAL's frame count when the last checkpoint started (0 after the WAL restarted).
        var checkpointedUpTo = 0
    }

    private let state = Mutex(State())
    /// What SQLite's hook holds: a weak reference, so that a commit after the store is gone
    /// finds nothing to call (GRDB may keep the writer connection a little longer).
    private let hookContext: HookContext

    init(path: String, every: Int = 1_000, ceiling: Int = 8_192) throws {
        var configuration = Configuration()
        configuration.label = "cairn.checkpoint"
        configuration.prepareDatabase { db in
            // A checkpoint fsyncs the WAL before it copies and the database file after.
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        self.connection = try DatabaseQueue(path: path, configuration: configuration)
        self.every = every
        self.ceiling = max(ceiling, every)
        self.hookContext = HookContext()
        self.hookContext.checkpointer = self
    }

    /// Takes over the checkpoints of `writer` (the connection that commits).
    func install(on writer: Database) {
        let context = Unmanaged.passRetained(self.hookContext).toOpaque()
        // The context is never released: SQLite gives no call when the connection closes, and a
        // commit may still run after this object is gone. One small object per opened store.
        cairn_wal_hook(writer.sqliteConnection, { context, connection, _, frames in
            guard let context, let connection else { return 0 }
            Unmanaged<HookContext>.fromOpaque(context).takeUnretainedValue().checkpointer?.committed(frames: Int(frames), writer: connection)
            return 0
        }, context)
    }

    /// After each commit of the writer, on its thread, with the frames now in the WAL.
    private func committed(frames: Int, writer: OpaquePointer) {
        if frames >= self.ceiling {
            // BUSY (nothing done, at once) while a background checkpoint runs; the next commit retries.
            if cairn_wal_checkpoint_passive(writer) == 0 {
                self.writerCheckpoints.add(1, ordering: .relaxed)
                self.state.withLock { $0.checkpointedUpTo = frames }
            }
            return
        }
        let start = self.state.withLock { state -> Bool in
            if frames < state.checkpointedUpTo { state.checkpointedUpTo = 0 }  // the WAL restarted
            guard !state.running, frames >= state.checkpointedUpTo + self.every else { return false }
            state.running = true
            state.checkpointedUpTo = frames
            return true
        }
        guard start else { return }
        self.connection.asyncWriteWithoutTransaction { db in
            // An error (an I/O error, the file gone) leaves the frames to the next checkpoint, as
            // SQLite's automatic checkpoint does; the commits themselves are already durable.
            _ = try? db.checkpoint(.passive)
            self.backgroundCheckpoints.add(1, ordering: .relaxed)
            self.state.withLock { $0.running = false }
        }
    }

    private final class HookContext: @unchecked Sendable {
        weak var checkpointer: BackgroundCheckpointer?
    }
}
