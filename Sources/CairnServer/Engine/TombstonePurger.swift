import Foundation
import Logging
import ServiceLifecycle

/// Purges tombstones past the retention window once an hour (only when a retention is
/// configured; by default tombstones are kept forever).
struct TombstonePurger: Service {
    let engine: SyncEngine
    let retention: TimeInterval
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await self.engine.purgeTombstones(olderThan: self.retention)
            } catch {
                self.logger.error("Tombstone purge failed", metadata: ["error.type": "\(String(reflecting: type(of: error)))"])
            }
            _ = try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(3600)) }
        }
    }
}
