import Foundation

/// Workload 2: sequential `PATCH /api/records/notes/{id}` with `If-Match` of the current version,
/// each waiting for the previous answer. Also measures the loopback HTTP round trip of the same
/// client (`GET /healthz`), so the write's cost above transport plus a raw durable update shows.
struct SingleWriteWorkload {
    let writes: Int
    /// The raw durable single-row update p50 (ms) of this run, when it was measured.
    let rawUpdateP50: Double?

    /// Requests sent before measuring, so connection setup and first-use costs are not counted.
    private var warmup: Int { min(20, max(1, self.writes / 10)) }

    func run(_ client: BenchHTTP, budget: Budget) async throws -> [Figure] {
        let http = try await client.registerAccount("write")
        let created = try await http.expect(201, "POST", "api/records/notes", body: Data(#"{"id": "n1", "data": {"text": "start"}}"#.utf8))
        var version = try created.decode(Wire.Record.self).version

        var roundTrip = Latency()
        for index in 0..<(self.warmup + self.writes) {
            try budget.check()
            let (_, elapsed) = try await ContinuousClock.timed { try await http.expect(200, "GET", "healthz") }
            if index >= self.warmup { roundTrip.record(elapsed) }
        }

        var writes = Latency()
        for index in 0..<(self.warmup + self.writes) {
            try budget.check()
            let body = Data(#"{"data": {"text": "edit \#(index)"}}"#.utf8)
            let (answer, elapsed) = try await ContinuousClock.timed {
                try await http.expect(200, "PATCH", "api/records/notes/n1", body: body, headers: ["If-Match": "\"\(version)\""])
            }
            if index >= self.warmup { writes.record(elapsed) }
            version = try answer.decode(Wire.Record.self).version
        }

        let p50 = writes.milliseconds(at: 50)
        var figures = [
            Figure(
                id: "write.p50", workload: "single write", label: "PATCH with If-Match, p50 (\(self.writes) sequential)",
                value: p50, unit: "ms", counterpart: RawBaseline.updateP50ID),
            Figure(
                id: "write.p99", workload: "single write", label: "PATCH with If-Match, p99",
                value: writes.milliseconds(at: 99), unit: "ms", counterpart: RawBaseline.updateP99ID),
            Figure(
                id: "write.rtt.p50", workload: "single write", label: "loopback HTTP round trip (GET /healthz), p50",
                value: roundTrip.milliseconds(at: 50), unit: "ms"),
        ]
        if let rawUpdateP50 {
            figures.append(Figure(
                id: "write.overhead", workload: "single write", label: "p50 minus (round trip p50 + raw update p50)",
                value: p50 - roundTrip.milliseconds(at: 50) - rawUpdateP50, unit: "ms"))
        }
        return figures
    }
}
