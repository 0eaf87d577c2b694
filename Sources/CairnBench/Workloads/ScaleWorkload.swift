/// Workload 6b: an incremental pull of a few changes from profiles of growing size. The cost must
/// follow the changes, not the data: the last figure is the largest profile's pull time over the
/// smallest's. Filling each profile (pushes of 1,000 creates) is reported too.
struct ScaleWorkload {
    let sizes: [Int]
    let changes: Int
    let repeats: Int
    /// Bookmarks per folder: a profile of a million bookmarks is a tree of folders, as real
    /// collections are, not one folder of a million (`sortOrder` is a rank among siblings).
    let folderSize: Int

    func run(_ client: BenchHTTP, budget: Budget) async throws -> [Figure] {
        var figures: [Figure] = []
        var pulls: [(size: Int, time: Duration)] = []
        for size in self.sizes {
            let pusher = Pusher(http: try await BenchHTTP(baseURL: client.baseURL).registerAccount("scale\(size)"), clientId: "bench-scale")
            let folders = (size + self.folderSize - 1) / self.folderSize
            let folderOps = (0..<folders).map { Wire.Operation.folder("sf-\($0)", title: "Folder \($0)", opId: "sf-create-\($0)") }
            _ = try await pusher.push(folderOps, batchSize: 1000, budget: budget)
            let creates = (0..<size).map { index in
                Wire.Operation.create(
                    "s-\(index)", title: "Bookmark \(index)", url: "https://example.com/s/\(index)", opId: "s-create-\(index)",
                    parentId: "sf-\(index / self.folderSize)")
            }
            let (fill, checkpoint) = try await pusher.push(creates, batchSize: 1000, budget: budget)
            figures.append(Figure(
                id: "scale.fill.\(size)", workload: "scale", label: "fill a profile with \(size) in folders of \(self.folderSize) (batches of 1,000)",
                value: Double(size) / fill.seconds, unit: "records/s"))

            let stride = max(1, size / self.changes)
            let renames = (0..<self.changes).map { Wire.Operation.rename("s-\($0 * stride)", title: "Changed \($0)", opId: "scale-\($0)") }
            _ = try await pusher.push(renames, batchSize: self.changes, budget: budget)
            let time = try await Puller(http: pusher.http, limit: 1000)
                .medianPull(since: checkpoint, expected: self.changes, deleted: 0, repeats: self.repeats, budget: budget)
            pulls.append((size, time))
            figures.append(Figure(
                id: "scale.pull.\(size)", workload: "scale", label: "pull \(self.changes) changes by cursor from \(size)",
                value: time.seconds * 1000, unit: "ms"))
        }
        if let smallest = pulls.min(by: { $0.size < $1.size }), let largest = pulls.max(by: { $0.size < $1.size }), largest.size > smallest.size {
            figures.append(Figure(
                id: "scale.ratio", workload: "scale", label: "pull time at \(largest.size) over at \(smallest.size)",
                value: largest.time.seconds / smallest.time.seconds, unit: "×"))
        }
        return figures
    }
}
