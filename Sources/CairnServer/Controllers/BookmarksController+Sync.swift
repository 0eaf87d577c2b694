import CairnCore
import Foundation
import Hummingbird

/// `POST /api/bookmarks/sync`: seed 000's batch endpoint for offline changes.
///
/// Request `{changes: SyncEvent[], lastSyncVersion, clientId}`; answer `{applied, conflicts,
/// serverChanges, newSyncVersion}` as the seed shows, plus `rejected`, `results` (per-op detail)
/// and `hasMore`.
extension BookmarksController {
    /// A seed 000 `SyncEvent` as a client sends it.
    struct SyncEvent: Decodable {
        var id: String?
        var opId: String?
        var type: String
        var bookmarkId: String?
        var data: JSONValue?
        var timestamp: Int64?
        var clientId: String?
        var syncVersion: Int64?
        var expectedVersion: Int64?
        var hlc: HLC?
    }

    struct SyncBody: Decodable {
        var changes: [SyncEvent]
        var lastSyncVersion: Int64?
        var clientId: String?
        var atomic: Bool?
        var strategy: ConflictStrategy?
    }

    /// A seed 000 `SyncEvent` as the server sends it.
    struct ServerEvent: Encodable {
        var id: String
        var type: String
        var bookmarkId: String
        var data: JSONValue
        var timestamp: Int64
        var clientId: String
        var syncVersion: Int64
    }

    struct ConflictInfo: Encodable {
        var eventId: String
        var bookmarkId: String?
        var code: String
        var message: String
        var serverVersion: JSONValue?
        var clientVersion: JSONValue?
    }

    struct RejectedInfo: Encodable {
        var eventId: String
        var bookmarkId: String?
        var code: String
        var message: String
        var field: String?
    }

    struct SyncAnswer: Encodable {
        var applied: [String]
        var conflicts: [ConflictInfo]
        var rejected: [RejectedInfo]
        var serverChanges: [ServerEvent]
        var newSyncVersion: Int64
        var hasMore: Bool
        var results: [OperationResult]
    }

    static func operation(for event: SyncEvent, clientId: String?) throws -> SyncOperation {
        guard let kind = SyncOperation.Kind(rawValue: event.type) else {
            throw CairnError(.validation, "type must be create, update, delete or move", field: "type")
        }
        let data = event.data?.objectValue ?? [:]
        let expected = kind == .create ? event.expectedVersion : (event.expectedVersion ?? event.syncVersion.flatMap { $0 > 0 ? $0 : nil })
        let stamp = event.hlc ?? event.timestamp.map { HLC(wall: $0, node: event.clientId ?? clientId ?? "") }
        return SyncOperation(
            opId: event.opId ?? event.id ?? "sync-\(Identifiers.uuid())", type: kind, collection: BookmarkRules.collection,
            id: event.bookmarkId ?? data["id"]?.stringValue, data: kind == .create ? .object(data) : nil, patch: kind == .update ? .object(data) : nil,
            expectedVersion: expected, parentId: data["parentId"] ?? data["newParentId"],
            index: (data["index"] ?? data["newIndex"])?.intValue.map { Int(clamping: $0) }, afterId: data["afterId"]?.stringValue,
            beforeId: data["beforeId"]?.stringValue, position: data["position"]?.stringValue, hlc: stamp
        )
    }

    @Sendable func sync(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let body = try await request.decodeJSON(as: SyncBody.self, context: context, maxDepth: self.limits.maxJSONDepth)
        guard body.changes.count <= self.limits.maxOpsPerPush else {
            throw CairnError(.payloadTooLarge, "At most \(self.limits.maxOpsPerPush) changes per sync", field: "changes")
        }
        let clientId = body.clientId ?? request.headers[.clientID]
        let lastSyncVersion = body.lastSyncVersion ?? 0
        var operations: [SyncOperation] = []
        for (index, event) in body.changes.enumerated() {
            do {
                operations.append(try Self.operation(for: event, clientId: clientId))
            } catch let error as CairnError {
                throw CairnError(.validation, "changes[\(index)]: \(error.message)", field: "changes[\(index)].\(error.field ?? "type")")
            }
        }
        var push = PushRequest(profileId: profile.id, clientId: clientId, operations: operations, atomic: body.atomic ?? false, strategy: body.strategy)
        push.cursor = lastSyncVersion
        let outcome = try await self.engine.push(push)
        var answer = SyncAnswer(applied: [], conflicts: [], rejected: [], serverChanges: [], newSyncVersion: outcome.sequence, hasMore: false, results: outcome.results)
        for (event, result) in zip(body.changes, outcome.results) {
            let eventId = event.id ?? result.opId
            let status = result.status == .duplicate ? (result.originalStatus ?? .applied) : result.status
            switch status {
            case .applied, .merged, .duplicate:
                answer.applied.append(eventId)
            case .conflict:
                answer.conflicts.append(
                    ConflictInfo(
                        eventId: eventId, bookmarkId: result.id, code: result.error?.code ?? "CONFLICT_DETECTED", message: result.error?.message ?? "Conflict",
                        serverVersion: result.record, clientVersion: event.data
                    )
                )
            case .rejected:
                answer.rejected.append(
                    RejectedInfo(eventId: eventId, bookmarkId: result.id, code: result.error?.code ?? "VALIDATION_ERROR", message: result.error?.message ?? "Rejected", field: result.error?.field)
                )
            }
        }
        // Changes from other clients since the client's last sync, not this push's own.
        if lastSyncVersion < outcome.previousSequence {
            let (changes, hasMore) = try await self.engine.changesBetween(profileId: profile.id, since: lastSyncVersion, upTo: outcome.previousSequence, limit: 1000)
            answer.serverChanges = changes.map { change, changeClient, createdSeq in
                ServerEvent(
                    id: "\(change.version)", type: change.deleted ? "delete" : (createdSeq > lastSyncVersion ? "create" : "update"),
                    bookmarkId: change.id, data: change.data, timestamp: change.updatedAt, clientId: changeClient ?? "server",
                    syncVersion: change.version
                )
            }
            if hasMore {
                answer.hasMore = true
                answer.newSyncVersion = changes.last?.record.version ?? lastSyncVersion
            }
        }
        if !answer.hasMore {
            // Bookmarks this push changed last but that other devices had changed since the client's
            // last sync: their current state, so those other edits are not lost to this client.
            let unseen = outcome.recordsWithUnseenChanges(since: lastSyncVersion).filter { $0.collection == BookmarkRules.collection }
            for change in try await self.engine.currentChanges(profileId: profile.id, keys: unseen) {
                answer.serverChanges.append(
                    ServerEvent(
                        id: "\(change.version)", type: change.deleted ? "delete" : "update", bookmarkId: change.id, data: change.data,
                        timestamp: change.updatedAt, clientId: clientId ?? "server", syncVersion: change.version
                    )
                )
            }
        }
        return try JSONResponse.make(answer)
    }
}
