import Foundation

/// Pushes bookmark operations in batches through `POST /api/sync/push`. Bodies are encoded
/// (``prepare(_:batchSize:)``) before the clock starts and answers are checked
/// (``verify(_:of:)``) after it stops, so the timed section is only the HTTP exchanges.
struct Pusher: Sendable {
    /// Encoded push requests and the number of ops in each.
    struct Batches: Sendable {
        let requests: [[UInt8]]
        let counts: [Int]
    }

    let http: BenchHTTP
    let clientId: String

    /// Creates of bookmarks `prefix-i` for every `i` of `range`, in the `other` root.
    static func creates(_ prefix: String, _ range: Range<Int>) -> [Wire.Operation] {
        range.map { index in
            .create("\(prefix)-\(index)", title: "Bookmark \(index)", url: "https://example.com/\(prefix)/\(index)", opId: "\(prefix)-create-\(index)")
        }
    }

    func prepare(_ operations: [Wire.Operation], batchSize: Int) throws -> Batches {
        let encoder = JSONEncoder()
        let starts = Array(stride(from: 0, to: operations.count, by: batchSize))
        let bodies = try starts.map { start in
            try encoder.encode(Wire.Push(clientId: self.clientId, operations: Array(operations[start..<min(start + batchSize, operations.count)])))
        }
        return Batches(
            requests: bodies.map { self.http.request("POST", "api/sync/push", body: $0) },
            counts: starts.map { min(batchSize, operations.count - $0) })
    }

    /// Sends the batches in order, one at a time, from one thread (``BenchHTTP/send(_:expecting:budget:)``).
    func send(_ batches: Batches, budget: Budget) async throws -> [HTTPAnswer] {
        try await self.http.send(batches.requests, expecting: 200, budget: budget)
    }

    /// Requires every op of every batch `applied`; returns the profile's cursor after the last.
    static func verify(_ answers: [HTTPAnswer], of batches: Batches) throws -> Int64 {
        guard answers.count == batches.counts.count else {
            throw BenchError.unexpected("\(answers.count) push answers for \(batches.counts.count) batches")
        }
        var cursor: Int64 = 0
        for (answer, count) in zip(answers, batches.counts) {
            let result = try answer.decode(Wire.PushResult.self)
            try result.requireAll("applied", count: count)
            cursor = result.cursor
        }
        return cursor
    }

    /// Prepares, sends and verifies `operations`; returns the time of the exchanges and the
    /// cursor after the last batch.
    func push(_ operations: [Wire.Operation], batchSize: Int, budget: Budget) async throws -> (elapsed: Duration, cursor: Int64) {
        let batches = try self.prepare(operations, batchSize: batchSize)
        let (answers, elapsed) = try await ContinuousClock.timed { try await self.send(batches, budget: budget) }
        return (elapsed, try Self.verify(answers, of: batches))
    }
}
