import CairnCore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Applies seed 001's queued operations shortly after they are queued, then marks them synced
/// with their result. Each is pushed under its own id as op id, so a crash between applying and
/// marking replays as a duplicate, never a second effect.
public final class QueueProcessor: Service, Sendable {
    let engine: SyncEngine
    let store: any SyncStore
    let clock: ServerClock
    let logger: Logger
    private let wakeups: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init(engine: SyncEngine, store: any SyncStore, clock: ServerClock, logger: Logger) {
        self.engine = engine
        self.store = store
        self.clock = clock
        self.logger = logger
        (self.wakeups, self.continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Something was queued: process soon.
    func kick() {
        self.continuation.yield()
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // A periodic tick too, for anything queued before a restart.
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    self.continuation.yield()
                }
            }
            for await _ in self.wakeups.cancelOnGracefulShutdown() {
                await self.drain()
            }
            group.cancelAll()
        }
    }

    /// Applies every unsynced queued operation.
    func drain() async {
        do {
            while true {
                let batch = try await self.store.unsyncedOperations(limit: 100)
                if batch.isEmpty { return }
                var progressed = false
                for operation in batch where await self.apply(operation) { progressed = true }
                // Stop when a round made no progress (storage failing): the next tick retries.
                if batch.count < 100 || !progressed { return }
            }
        } catch {
            self.logger.error("Queue processing failed", metadata: ["error.type": "\(String(reflecting: type(of: error)))"])
        }
    }

    /// Applies one queued operation and marks it synced; `false` when it must be retried later.
    @discardableResult
    func apply(_ operation: QueuedOperation) async -> Bool {
        var result: JSONValue
        do {
            let op = try Seed001Controller.syncOperation(
                .init(id: operation.id, type: operation.type, entity: operation.entity, entityId: operation.entityId, data: operation.data, timestamp: .number(Double(operation.createdAt))),
                opId: operation.id
            )
            let outcome = try await self.engine.push(PushRequest(profileId: operation.profileId, clientId: "queue", operations: [op]))
            let first = outcome.results.first
            let status = first?.status == .duplicate ? first?.originalStatus : first?.status
            result = ["status": .string(status?.rawValue ?? "applied"), "version": first?.version.map { .number(Double($0)) } ?? .null]
            if let error = first?.error { result = ["status": .string(status?.rawValue ?? "rejected"), "code": .string(error.code), "message": .string(error.message)] }
        } catch let error as CairnError {
            result = ["status": "rejected", "code": .string(error.code.rawValue), "message": .string(error.message)]
        } catch {
            // A storage failure: leave it queued for the next round.
            return false
        }
        return (try? await self.store.markOperationsSynced(profileId: operation.profileId, ids: [operation.id], results: [operation.id: result], at: self.clock.nowMilliseconds)) != nil
    }
}
