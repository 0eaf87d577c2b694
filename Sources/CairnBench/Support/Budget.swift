/// Why a workload stopped before producing its figures.
enum BenchError: Error, CustomStringConvertible {
    /// The server process did not start or died.
    case server(String)
    /// An answer that breaks what the workload relies on (a refused op, a missing change).
    case unexpected(String)
    /// The workload ran past its time limit.
    case overBudget(String)

    var description: String {
        switch self {
        case .server(let message): "server: \(message)"
        case .unexpected(let message): "unexpected answer: \(message)"
        case .overBudget(let workload): "\(workload) ran past its time limit"
        }
    }
}

/// A workload's time limit. Every loop of the bench is bounded in count by its sizes and in time
/// by calling ``check()`` on each turn.
struct Budget: Sendable {
    let workload: String
    let deadline: ContinuousClock.Instant

    init(_ workload: String, limit: Duration) {
        self.workload = workload
        self.deadline = .now + limit
    }

    /// Throws ``BenchError/overBudget(_:)`` once the deadline has passed.
    func check() throws(BenchError) {
        if ContinuousClock.now > self.deadline { throw .overBudget(self.workload) }
    }

    /// Polls `condition` every few milliseconds until it holds, at most until `timeout` (and the
    /// deadline); returns whether it held.
    func wait(upTo timeout: Duration, until condition: () -> Bool) async -> Bool {
        let end = min(ContinuousClock.now + timeout, self.deadline)
        while !condition() {
            if ContinuousClock.now >= end { return false }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return true
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double {
        Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18
    }

    /// The duration in whole microseconds (for histograms).
    var microseconds: UInt64 {
        UInt64(max(0, self.seconds * 1e6).rounded())
    }
}

extension ContinuousClock {
    /// Runs `body` and returns its result with the time it took.
    static func timed<T>(_ body: () async throws -> T) async rethrows -> (T, Duration) {
        let start = ContinuousClock.now
        let value = try await body()
        return (value, ContinuousClock.now - start)
    }

    /// Runs the synchronous `body` and returns its result with the time it took.
    static func timedSync<T>(_ body: () throws -> T) rethrows -> (T, Duration) {
        let start = ContinuousClock.now
        let value = try body()
        return (value, ContinuousClock.now - start)
    }
}
