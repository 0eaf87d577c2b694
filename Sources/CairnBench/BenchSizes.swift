/// How much each workload does. `full` is what docs/benchmarks.md reports; `quick` is a smoke run
/// of a few seconds that exercises every workload.
struct BenchSizes: Sendable {
    var pushRecords: Int
    var pushBatch: Int
    var pushClients: Int
    var singleWrites: Int
    var pullRecords: Int
    var pullUpdates: Int
    var pullCreates: Int
    var pullDeletes: Int
    var repeats: Int
    var importBookmarks: Int
    var rawUpdates: Int
    /// Subscriber counts of the fan-out workload (each a run of its own).
    var subscribers: [Int]
    var fanOutWrites: Int
    var scaleSizes: [Int]
    var scaleChanges: Int
    /// Bookmarks per folder in the scale profiles.
    var scaleFolderSize: Int
    /// Idle authenticated WebSockets, and the client processes that hold them.
    var idleConnections: Int
    var idleProcesses: Int
    /// Time limit of each workload.
    var budget: Duration

    static let full = BenchSizes(
        pushRecords: 10_000, pushBatch: 100, pushClients: 4, singleWrites: 500,
        pullRecords: 10_000, pullUpdates: 700, pullCreates: 200, pullDeletes: 100, repeats: 5,
        importBookmarks: 10_000, rawUpdates: 500, subscribers: [100, 1_000], fanOutWrites: 200,
        scaleSizes: [10_000, 1_000_000], scaleChanges: 10, scaleFolderSize: 1_000, idleConnections: 10_000, idleProcesses: 4,
        budget: .seconds(900))

    static let quick = BenchSizes(
        pushRecords: 500, pushBatch: 100, pushClients: 4, singleWrites: 50,
        pullRecords: 500, pullUpdates: 35, pullCreates: 10, pullDeletes: 5, repeats: 3,
        importBookmarks: 500, rawUpdates: 50, subscribers: [10, 50], fanOutWrites: 10,
        scaleSizes: [500, 2_000], scaleChanges: 10, scaleFolderSize: 100, idleConnections: 200, idleProcesses: 2,
        budget: .seconds(60))
}
