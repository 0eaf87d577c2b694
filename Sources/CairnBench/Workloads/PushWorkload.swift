/// Workload 1: bookmark creates through `POST /api/sync/push`, one client, then several clients of
/// as many users at once (each pushing the same number). Records per second, compared with raw
/// inserts in transactions of the same size.
struct PushWorkload {
    let records: Int
    let batchSize: Int
    let clients: Int

    func run(_ client: BenchHTTP, server: ServerUnderTest, budget: Budget) async throws -> [Figure] {
        let single = Pusher(http: try await client.registerAccount("push"), clientId: RawBaseline.clientId)
        let cpuBefore = server.cpuSeconds
        let (elapsed, _) = try await single.push(Pusher.creates("p", 0..<self.records), batchSize: self.batchSize, budget: budget)
        let cpuAfter = server.cpuSeconds

        var prepared: [(Pusher, Pusher.Batches)] = []
        for index in 0..<self.clients {
            let pusher = Pusher(http: try await BenchHTTP(baseURL: client.baseURL).registerAccount("push\(index)"), clientId: "bench-push-\(index)")
            prepared.append((pusher, try pusher.prepare(Pusher.creates("p", 0..<self.records), batchSize: self.batchSize)))
        }
        let (answers, concurrentElapsed) = try await ContinuousClock.timed {
            try await withThrowingTaskGroup(of: (Int, [HTTPAnswer]).self) { group in
                for (index, (pusher, batches)) in prepared.enumerated() {
                    group.addTask { (index, try await pusher.send(batches, budget: budget)) }
                }
                return try await group.reduce(into: [Int: [HTTPAnswer]]()) { $0[$1.0] = $1.1 }
            }
        }
        for (index, (_, batches)) in prepared.enumerated() {
            _ = try Pusher.verify(answers[index] ?? [], of: batches)
        }
        var figures: [Figure] = []
        if let cpuBefore, let cpuAfter {
            figures.append(
                Figure(
                    id: "push.server-cpu", workload: "push", label: "1 client: server CPU per 1,000 creates",
                    value: (cpuAfter - cpuBefore) * 1_000 / Double(self.records), unit: "s"))
        }
        return figures + [
            Figure(
                id: "push.one-client", workload: "push", label: "1 client: \(self.records) creates, batches of \(self.batchSize)",
                value: Double(self.records) / elapsed.seconds, unit: "records/s", counterpart: RawBaseline.insertID),
            Figure(
                id: "push.concurrent", workload: "push",
                label: "\(self.clients) clients of \(self.clients) users at once: \(self.records) creates each",
                value: Double(self.records * self.clients) / concurrentElapsed.seconds, unit: "records/s", counterpart: RawBaseline.insertID),
        ]
    }
}
