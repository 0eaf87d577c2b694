/// Workload 3: a profile of `records` bookmarks; after a checkpoint, updates, creates and deletes
/// of distinct bookmarks, pulled by cursor; then a full pull from 0. Seconds (median of
/// `repeats`), compared with raw reads of as many rows by version.
struct PullWorkload {
    let records: Int
    let updates: Int
    let creates: Int
    let deletes: Int
    let repeats: Int

    /// Pages of the largest size the server allows, as a client catching up would ask.
    static let pageSize = 5000

    var changes: Int { self.updates + self.creates + self.deletes }

    func run(_ client: BenchHTTP, budget: Budget) async throws -> [Figure] {
        precondition(self.updates + self.deletes <= self.records, "updates and deletes touch distinct records")
        let pusher = Pusher(http: try await client.registerAccount("pull"), clientId: "bench-pull")
        let (_, checkpoint) = try await pusher.push(Pusher.creates("r", 0..<self.records), batchSize: 1000, budget: budget)

        let renames = (0..<self.updates).map { Wire.Operation.rename("r-\($0)", title: "Renamed \($0)", opId: "rename-\($0)") }
        let deletes = (self.updates..<(self.updates + self.deletes)).map { Wire.Operation.delete("r-\($0)", opId: "delete-\($0)") }
        let creates = Pusher.creates("r", self.records..<(self.records + self.creates))
        _ = try await pusher.push(renames + creates + deletes, batchSize: 100, budget: budget)

        let puller = Puller(http: pusher.http, limit: Self.pageSize)
        let incremental = try await puller.medianPull(
            since: checkpoint, expected: self.changes, deleted: self.deletes, repeats: self.repeats, budget: budget)
        // A new account holds its four root folders, also pulled from 0.
        let everything = self.records + self.creates + 4
        let full = try await puller.medianPull(since: 0, expected: everything, deleted: self.deletes, repeats: self.repeats, budget: budget)
        return [
            Figure(
                id: "pull.incremental", workload: "pull",
                label: "\(self.changes) changes (\(self.updates) updates, \(self.creates) creates, \(self.deletes) deletes) of \(self.records) by cursor",
                value: incremental.seconds, unit: "s", counterpart: RawBaseline.readChangesID),
            Figure(
                id: "pull.full", workload: "pull", label: "full pull of \(everything) (pages of \(Self.pageSize))",
                value: full.seconds, unit: "s", counterpart: RawBaseline.readAllID),
        ]
    }
}
