import Foundation

/// Pulls by cursor through `GET /api/sync/pull`, page after page until `hasMore` is false. Only
/// the HTTP exchanges are timed; each page is decoded after its exchange (for the next cursor).
struct Puller: Sendable {
    let http: BenchHTTP
    /// Changes per page (the server allows 1–5,000).
    let limit: Int

    /// Every change after `since`, and the summed time of the exchanges.
    func pull(since: Int64, budget: Budget) async throws -> (changes: [Wire.Pull.Change], elapsed: Duration) {
        var changes: [Wire.Pull.Change] = []
        var elapsed = Duration.zero
        var cursor = since
        while true {
            try budget.check()
            let query = [URLQueryItem(name: "since", value: String(cursor)), URLQueryItem(name: "limit", value: String(self.limit))]
            let (answer, time) = try await ContinuousClock.timed { try await self.http.expect(200, "GET", "api/sync/pull", query: query) }
            elapsed += time
            let page = try answer.decode(Wire.Pull.self)
            changes += page.changes
            guard page.hasMore else { return (changes, elapsed) }
            cursor = page.cursor
        }
    }

    /// Pulls `repeats` times and returns the median time; every pull must return `expected`
    /// changes, `deleted` of them tombstones.
    func medianPull(since: Int64, expected: Int, deleted: Int, repeats: Int, budget: Budget) async throws -> Duration {
        var times: [Duration] = []
        for _ in 0..<repeats {
            let (changes, elapsed) = try await self.pull(since: since, budget: budget)
            let tombstones = changes.filter(\.deleted).count
            guard changes.count == expected, tombstones == deleted else {
                throw BenchError.unexpected("pull since \(since): \(changes.count) changes, \(tombstones) deleted; expected \(expected), \(deleted) deleted")
            }
            times.append(elapsed)
        }
        return times.sorted()[times.count / 2]
    }
}
