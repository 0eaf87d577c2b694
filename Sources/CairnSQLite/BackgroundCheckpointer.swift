import CSQLiteTuning
import GRDB
import Synchronization

/// Checkpoints off the commit path: copying the write-ahead log back into the database file runs
/// on a connection of its own, while the writer goes on committing. Used by the server's store
/// and, so that the benchmark's floor checkpoints the same way, by the raw baseline of
/// `cairn-bench`.
///
/// By default SQLite checkpoints inside the commit that takes the WAL past 1,000 frames (pages):
/// that commit copies them into the database file and fsyncs it before it returns, so every
/// thousandth page written made one push wait 3–20 ms, and every push queued behind it. Here the
/// writer's commit only notes how long the WAL has grown (a WAL hook, which replaces SQLite's
/// automatic checkpoint on that connection) and, every `every` frames, hands a PASSIVE checkpoint
/// to this connection, which copies what the readers let it copy without blocking anyone.
///
/// The WAL restarts from its start only once a checkpoint has copied all of it, which a
/// checkpoint running beside a busy writer rarely does (frames keep coming while it copies). So
/// at `ceiling` frames the writer checkpoints in its own commit, as SQLite would have done; that
/// checkpoint only copies what the background ones left. No background checkpoint starts within
/// `every` frames of the ceiling, so that one is rarely still running when the writer gets there
/// (the writer's would then find the checkpoint lock taken and leave it to a later commit). The
/// WAL stays within about `ceiling` frames and the largest transaction (32 MiB at the defaults),
/// except while a read that began before older frames were copied keeps them in use: no
/// checkpoint can then restart it, as with SQLite's own. Nothing about durability changes: a
/// commit is durable in the WAL (`synchronous=FULL`) before it returns, whoever checkpoints it.
public final class BackgroundCheckpointer: Sendable {
    /// WAL frames between two background checkpoints (SQLite's own automatic checkpoint threshold).
    public let every: Int
    /// WAL frames at which the writer checkpoints in its commit.
    public let ceiling: Int
    /// The checkpoint's own connection.
    public let connection: DatabaseQueue
    /// Background checkpoints that copied frames, and checkpoints the writer ran at the ceiling
    /// (for tests and benchmarks).
    public let backgroundCheckpoints = Atomic<Int>(0)
    public let writerCheckpoints = Atomic<Int>(0)
    /// Checkpoints that failed (an I/O error): the frames stay in the WAL for the next one, as
    /// with SQLite's own automatic checkpoint, whose failures nobody hears of either.
    public let failedCheckpoints = Atomic<Int>(0)
    /// The most frames the WAL has held after a commit since this was last set to 0 (for tests).
    public let largestWAL = Atomic<Int>(0)

    private struct State {
        /// A background checkpoint is queued or running.
        var running = false
        /// The WAL's frame count when the last checkpoint was handed over or run by the writer
        /// (0 after the WAL restarted).
        var checkpointedUpTo = 0
    }

    private let state = Mutex(State())
    /// What SQLite's hook holds: a weak reference, so that a commit after this object is gone
    /// finds nothing to call (GRDB may keep the writer connection a little longer).
    private let hookContext: HookContext

    /// Opens the checkpoint's connection to the database at `path`, which must already be in WAL
    /// mode (the writer's pool sets it).
    public init(path: String, every: Int = 1_000, ceiling: Int = 8_192) throws {
        var configuration = Configuration()
        configuration.label = "cairn.checkpoint"
        configuration.prepareDatabase { db in
            // A checkpoint fsyncs the WAL before it copies and the database file after.
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        self.connection = try DatabaseQueue(path: path, configuration: configuration)
        self.every = every
        self.ceiling = max(ceiling, 2 * every)
        self.hookContext = HookContext()
        self.hookContext.checkpointer = self
    }

    /// Takes over the checkpoints of `writer` (the connection that commits).
    public func install(on writer: Database) {
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
        self.largestWAL.max(frames, ordering: .relaxed)
        if frames >= self.ceiling {
            // BUSY (nothing done, at once) while a background checkpoint runs; the next commit retries.
            switch cairn_wal_checkpoint_passive(writer) {
            case 0:
                self.writerCheckpoints.add(1, ordering: .relaxed)
                self.state.withLock { $0.checkpointedUpTo = frames }
            case 5: break  // SQLITE_BUSY
            default: self.failedCheckpoints.add(1, ordering: .relaxed)
            }
            return
        }
        let start = self.state.withLock { state -> Bool in
            if frames < state.checkpointedUpTo { state.checkpointedUpTo = 0 }  // the WAL restarted
            guard !state.running, frames >= state.checkpointedUpTo + self.every, frames < self.ceiling - self.every else { return false }
            state.running = true
            state.checkpointedUpTo = frames
            return true
        }
        guard start else { return }
        self.connection.asyncWriteWithoutTransaction { db in
            // An error leaves the frames to the next checkpoint; the commits are already durable.
            do {
                if try db.checkpoint(.passive).checkpointedFrameCount > 0 { self.backgroundCheckpoints.add(1, ordering: .relaxed) }
            } catch {
                self.failedCheckpoints.add(1, ordering: .relaxed)
            }
            self.state.withLock { $0.running = false }
        }
    }

    private final class HookContext: @unchecked Sendable {
        weak var checkpointer: BackgroundCheckpointer?
    }
}
