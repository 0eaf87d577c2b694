import Prometheus

/// The server's Prometheus registry and the metrics every part records into. One registry per
/// application (not the process-global metrics system), so tests can run several servers.
public final class ServerMetrics: Sendable {
    /// The registry `/metrics` emits.
    public let registry = PrometheusCollectorRegistry()
    let authFailures: Counter
    let rateLimited: Counter
    /// Pushes of creates whose attempt taking their ids for new was rolled back and run again
    /// with the reads (``SyncEngine/assumesNewIds``): resent pushes, creates of known ids, and
    /// batches with a refused op. Each costs a second transaction.
    let pushesRunAgain: Counter

    init() {
        self.authFailures = self.registry.makeCounter(
            descriptor: .init(namespace: "cairn", metricName: "auth_failures", unitName: "total", helpText: "Refused credentials")
        )
        self.rateLimited = self.registry.makeCounter(
            descriptor: .init(namespace: "cairn", metricName: "rate_limited", unitName: "total", helpText: "Requests answered 429")
        )
        self.pushesRunAgain = self.registry.makeCounter(
            descriptor: .init(
                namespace: "cairn", metricName: "pushes_run_again", unitName: "total",
                helpText: "Pushes of creates run a second time, with their reads, because an id was not new")
        )
    }

    static let latencyBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
    ]

    /// Counts one request of `route` answered with `status`, and its latency.
    func recordRequest(method: String, route: String, status: Int, duration: Duration) {
        let labels = [("method", method), ("route", route), ("status", String(status))]
        self.registry.makeCounter(
            descriptor: .init(namespace: "cairn", metricName: "http_requests", unitName: "total", helpText: "HTTP requests by route"),
            labels: labels
        ).increment()
        self.registry.makeDurationHistogram(
            descriptor: .init(namespace: "cairn", metricName: "http_request_duration", unitName: "seconds", helpText: "HTTP latency by route"),
            labels: [("method", method), ("route", route)],
            buckets: Self.latencyBuckets
        ).recordNanoseconds(duration.nanoseconds)
    }

    /// The Prometheus text exposition.
    public func exposition() -> String { self.registry.emitToString() }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = self.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
