import Foundation
import Testing

@testable import CairnServer

@Suite("Connection limits (live server)", .timeLimit(.minutes(2)))
struct ConnectionLimitsTests {
    @Test func anIdleHTTPConnectionIsClosedAfterTheIdleTimeout() async throws {
        #expect(ServerConfiguration().idleTimeoutSeconds == 60)
        try await withLiveServer(configure: { $0.idleTimeoutSeconds = 1 }) { _, port, _ in
            let seconds = await secondsUntilIdleClose(port: port, limit: 10)
            let closedAfter = try #require(seconds)
            #expect(closedAfter >= 0.5 && closedAfter < 5)
        }
    }
}
