import CairnCore
import CairnTestFixtures
import Foundation
import Testing

@testable import CairnClient

/// S9 over HTTP: a device whose clock is a day off learns the server's time from the `Date`
/// header of its first answers, stamps its next edit with the server's time, and keeps the
/// correction across a restart.
@Suite("Client SDK clock skew against a live server", .timeLimit(.minutes(2)))
struct ClockSkewLiveTests {
    @Test(arguments: [Int64(86_400_000), -86_400_000])
    func aSkewedDeviceStampsWithTheServersTime(skew: Int64) async throws {
        let root = try makeScratchDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let account = try await LiveAccount.start(dataDirectory: root.appendingPathComponent("server"))
        func open() throws -> CairnClient {
            var configuration = ClientConfiguration(
                serverURL: account.base, credentials: .session(refreshToken: account.refreshToken, accessToken: account.token),
                replicaPath: root.appendingPathComponent("skewed.sqlite"))
            configuration.useWebSocket = false
            configuration.wallClock = { Int64(Date().timeIntervalSince1970 * 1000) + skew }
            return try CairnClient(configuration: configuration)
        }
        var client = try open()
        try await client.forceSync()
        #expect(abs(client.clock.offset + skew) <= 60_000)
        client = try open()  // a restart keeps the correction
        let node = try await client.bookmarks.add(url: "https://skew.example", title: "Skewed")
        let stamp = try #require(try await client.replica.pending(limit: 10, collections: nil).first { $0.op.id == node.id }?.op.hlc)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        #expect(abs(stamp.wall - now) < 60_000)
        try await client.forceSync()
        #expect(try await client.pendingCount() == 0)
        _ = await account.server.terminate()
    }
}
