import Foundation
import Logging

/// Workload 6a: one writer (HTTP push of one bookmark create, sequentially) and `subscribers`
/// WebSockets of the same profile. For each write and subscriber: the time from the writer's
/// acknowledgement to the `sync_incremental` arrival (0 when it arrived first), and from the
/// write's sending. Also the server's resident memory growth per open socket.
struct FanOutWorkload {
    let subscribers: Int
    let writes: Int
    /// Report the server's memory growth per socket (only meaningful on a fresh server).
    var measureMemory = true

    /// Longest wait for one write to reach every subscriber.
    static let arrivalTimeout = Duration.seconds(10)

    func run(_ client: BenchHTTP, server: ServerUnderTest, budget: Budget) async throws -> [Figure] {
        let http = try await client.registerAccount("fanout")
        let pusher = Pusher(http: http, clientId: "bench-writer")
        let arrivals = Arrivals()
        let url = "ws://\(client.baseURL.host ?? "127.0.0.1"):\(client.baseURL.port ?? 80)/api/sync/ws"
        var logger = Logger(label: "cairn-bench.ws")
        logger.logLevel = .critical

        let residentBefore = server.residentBytes
        let tasks = (0..<self.subscribers).map { index in
            Subscriber.start(index, url: "\(url)?clientId=sub-\(index)", token: http.token ?? "", arrivals: arrivals, logger: logger)
        }
        defer { tasks.forEach { $0.cancel() } }
        guard await budget.wait(upTo: .seconds(60), until: { arrivals.authenticated == self.subscribers }) else {
            throw BenchError.unexpected("\(arrivals.authenticated) of \(self.subscribers) subscribers authenticated")
        }
        try await Task.sleep(for: .milliseconds(500))
        let residentAfter = server.residentBytes

        var afterAck = Latency()
        var afterSend = Latency()
        for write in 0..<self.writes {
            try budget.check()
            let create = Wire.Operation.create("fan-\(write)", title: "Fan-out \(write)", url: "https://example.net/\(write)", opId: "fan-\(write)")
            let batch = try pusher.prepare([create], batchSize: 1)
            let sent = ContinuousClock.now
            let answers = try await pusher.send(batch, budget: budget)
            let acknowledged = ContinuousClock.now
            _ = try Pusher.verify(answers, of: batch)
            guard await budget.wait(upTo: Self.arrivalTimeout, until: { arrivals.times(of: write).count >= self.subscribers }) else {
                throw BenchError.unexpected("write \(write) reached \(arrivals.times(of: write).count) of \(self.subscribers) subscribers")
            }
            for arrival in arrivals.times(of: write) {
                afterAck.record(max(.zero, arrival - acknowledged))
                afterSend.record(arrival - sent)
            }
        }
        guard arrivals.resyncs == 0 else { throw BenchError.unexpected("\(arrivals.resyncs) subscribers were told to resync") }

        tasks.forEach { $0.cancel() }
        _ = await budget.wait(upTo: .seconds(10), until: { arrivals.finished == self.subscribers })

        let label = "\(self.subscribers) subscribers, \(self.writes) writes"
        let id = "fanout.\(self.subscribers)"
        var figures = [
            Figure(
                id: "\(id).ack.p50", workload: "fan-out", label: "\(label): write ack to arrival, p50",
                value: afterAck.milliseconds(at: 50), unit: "ms"),
            Figure(id: "\(id).ack.p99", workload: "fan-out", label: "\(self.subscribers): write ack to arrival, p99", value: afterAck.milliseconds(at: 99), unit: "ms"),
            Figure(
                id: "\(id).send.p50", workload: "fan-out", label: "\(self.subscribers): write sent to arrival, p50",
                value: afterSend.milliseconds(at: 50), unit: "ms"),
            Figure(
                id: "\(id).send.p99", workload: "fan-out", label: "\(self.subscribers): write sent to arrival, p99",
                value: afterSend.milliseconds(at: 99), unit: "ms"),
        ]
        if self.measureMemory, let residentBefore, let residentAfter {
            figures.append(Figure(
                id: "fanout.memory", workload: "fan-out", label: "server RSS growth per open socket (\(self.subscribers), fresh server)",
                value: Double(residentAfter - residentBefore) / Double(self.subscribers) / 1024, unit: "KiB"))
        }
        return figures
    }
}
