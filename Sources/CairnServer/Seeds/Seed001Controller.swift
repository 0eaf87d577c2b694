import CairnCore
import Foundation
import Hummingbird

/// Seed 001 ("Booky" user data sync): `/api/sync/operations`, `/pending`, `/changes`, `/full`,
/// `/queue`, `/mark-synced`, `/clear` (and the shared `/status`), as a thin adapter over the
/// engine. Entities map to collections: book→books, rating→ratings, tag→tags,
/// collection→bookCollections (not `collections`, which seed 002's cards use),
/// readingLog→readingLogs, userSettings→userSettings.
struct Seed001Controller {
    let engine: SyncEngine
    let store: any SyncStore
    let profiles: ProfileResolver
    let queue: QueueProcessor
    let limits: Limits
    let clock: ServerClock

    static let entities: [String: String] = [
        "book": "books", "rating": "ratings", "tag": "tags", "collection": "bookCollections", "readingLog": "readingLogs",
        "userSettings": "userSettings",
    ]
    static let entityOfCollection: [String: String] = Dictionary(uniqueKeysWithValues: entities.map { ($0.value, $0.key) })
    /// `POST /api/sync/full` keys → collections (the seed's example uses `readings` and `settings`).
    static let fullSyncKeys: [String: String] = [
        "books": "books", "ratings": "ratings", "tags": "tags", "collections": "bookCollections", "readings": "readingLogs",
        "readingLogs": "readingLogs", "settings": "userSettings", "userSettings": "userSettings",
    ]

    func addRoutes(to group: RouterGroup<CairnRequestContext>) {
        group.post("sync/operations", use: self.operations)
        group.get("sync/pending", use: self.pending)
        group.get("sync/changes", use: self.changes)
        group.post("sync/full", use: self.full)
        group.post("sync/queue", use: self.enqueue)
        group.post("sync/mark-synced", use: self.markSynced)
        group.delete("sync/clear", use: self.clear)
    }

    // MARK: Shapes

    /// A seed 001 entity: its data with `id`, ISO `createdAt`/`updatedAt`, `deleted`, `deletedAt`.
    static func entityJSON(_ record: StoredRecord) -> JSONValue {
        var object = record.data
        object["id"] = .string(record.id)
        object["createdAt"] = .string(Timestamps.iso(record.createdAt))
        object["updatedAt"] = .string(Timestamps.iso(record.updatedAt))
        object["deleted"] = .bool(record.deleted)
        object["deletedAt"] = record.deletedAt.map { .string(Timestamps.iso($0)) } ?? .null
        object["version"] = .number(Double(record.version))
        return .object(object)
    }

    struct Operation: Decodable {
        var id: String?
        var type: String
        var entity: String
        var entityId: String
        var data: JSONValue?
        var timestamp: JSONValue?
    }

    static func syncOperation(_ operation: Operation, opId: String) throws -> SyncOperation {
        guard let collection = Self.entities[operation.entity] else {
            throw CairnError(.validation, "Unknown entity '\(operation.entity.prefix(64))'", field: "entity")
        }
        guard let type = SyncOperation.Kind(rawValue: operation.type), type != .move else {
            throw CairnError(.validation, "type must be create, update or delete", field: "type")
        }
        if type != .delete, operation.data?.objectValue == nil {
            throw CairnError(.validation, "data must be an object", field: "data")
        }
        let data = operation.data?.objectValue.map { JSONValue.object($0.filter { !["id", "createdAt", "updatedAt", "deleted", "deletedAt", "version"].contains($0.key) }) }
        let stamp = Timestamps.milliseconds(operation.timestamp).map { HLC(wall: $0, node: "seed001") }
        return SyncOperation(
            opId: opId, type: type, collection: collection, id: operation.entityId,
            data: type == .create || type == .upsert ? data : nil, patch: type == .update ? data : nil, hlc: stamp
        )
    }

    // MARK: Routes

    struct OperationsBody: Decodable {
        var operations: [Operation]
    }

    struct OperationResultView: Encodable {
        var id: String
        var status: String
        var entity: String
        var entityId: String
        var version: Int64?
        var error: OperationError?
        var serverData: JSONValue?
    }

    struct OperationsAnswer: Encodable {
        var results: [OperationResultView]
    }

    @Sendable func operations(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let body = try await request.decodeJSON(as: OperationsBody.self, context: context, maxDepth: self.limits.maxJSONDepth)
        guard body.operations.count <= self.limits.maxOpsPerPush else {
            throw CairnError(.payloadTooLarge, "At most \(self.limits.maxOpsPerPush) operations", field: "operations")
        }
        // Invalid operations are answered without reaching the engine; the rest go in one push.
        var views: [OperationResultView?] = Array(repeating: nil, count: body.operations.count)
        var mapped: [(Int, SyncOperation)] = []
        for (index, operation) in body.operations.enumerated() {
            let opId = operation.id ?? "op-\(Identifiers.uuid())"
            do {
                mapped.append((index, try Self.syncOperation(operation, opId: opId)))
            } catch let error as CairnError {
                views[index] = OperationResultView(id: opId, status: "error", entity: operation.entity, entityId: operation.entityId, error: OperationError(error))
            }
        }
        let outcome = try await self.engine.push(PushRequest(profileId: profile.id, clientId: request.headers[.clientID], operations: mapped.map(\.1)))
        for ((index, op), result) in zip(mapped, outcome.results) {
            let source = body.operations[index]
            let effective = result.status == .duplicate ? (result.originalStatus ?? .applied) : result.status
            let status: String
            switch effective {
            case .applied, .merged, .duplicate: status = "success"
            case .conflict: status = "conflict"
            case .rejected: status = "error"
            }
            views[index] = OperationResultView(
                id: op.opId, status: status, entity: source.entity, entityId: source.entityId, version: result.version, error: result.error,
                serverData: effective == .conflict ? result.record : nil
            )
        }
        return try JSONResponse.make(OperationsAnswer(results: views.compactMap { $0 }))
    }

    struct QueuedView: Encodable {
        var id: String
        var type: String
        var entity: String
        var entityId: String
        var data: JSONValue?
        var timestamp: String
        var synced: Bool
    }

    static func view(_ operation: QueuedOperation, withData: Bool) -> QueuedView {
        QueuedView(
            id: operation.id, type: operation.type, entity: operation.entity, entityId: operation.entityId,
            data: withData ? operation.data : nil, timestamp: Timestamps.iso(operation.createdAt), synced: operation.synced
        )
    }

    struct PendingAnswer: Encodable {
        var success: Bool
        var operations: [QueuedView]
    }

    @Sendable func pending(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let operations = try await self.store.pendingOperations(profileId: profile.id)
        return try JSONResponse.make(PendingAnswer(success: true, operations: operations.map { Self.view($0, withData: true) }))
    }

    struct ChangesAnswer: Encodable {
        struct Change: Encodable {
            var type: String
            var data: JSONValue
        }
        var success: Bool
        var changes: [Change]
        var since: String
        /// Pass this as the next `since` (the newest change returned, or `since`).
        var syncedAt: String
    }

    /// Changes at or after `since` (ISO 8601 or ms): at-or-after rather than after, so a change
    /// committed in the same millisecond as the last sync is never missed (applying it twice is
    /// harmless).
    @Sendable func changes(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let raw = request.uri.queryParameters.get("since") ?? "1970-01-01T00:00:00Z"
        guard let since = Timestamps.milliseconds(raw) else { throw CairnError(.validation, "since must be an ISO 8601 date or milliseconds", field: "since") }
        let (records, next) = try await self.engine.recordsUpdated(profileId: profile.id, collections: Array(Self.entities.values), since: since, limit: 10_000)
        let changes = records.map { ChangesAnswer.Change(type: Self.entityOfCollection[$0.collection] ?? $0.collection, data: Self.entityJSON($0)) }
        return try JSONResponse.make(ChangesAnswer(success: true, changes: changes, since: raw, syncedAt: Timestamps.iso(next)))
    }

    struct SyncedAnswer: Encodable {
        var success: Bool
        var syncedAt: String
    }

    /// Replaces all data of the named entities in one transaction (tombstones + writes).
    @Sendable func full(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let body = try await request.decodeJSON(as: [String: JSONValue].self, context: context, maxDepth: self.limits.maxJSONDepth)
        // Taken before the write: a client that asks for changes since this time (inclusive)
        // misses nothing committed meanwhile.
        let syncedAt = self.clock.nowMilliseconds
        var contents: [String: [[String: JSONValue]]] = [:]
        for (key, value) in body.sorted(by: { $0.key < $1.key }) where key != "force" {
            guard let collection = Self.fullSyncKeys[key] else { throw CairnError(.validation, "Unknown entity list '\(key.prefix(64))'", field: key) }
            switch value {
            case .array(let items):
                // `readings` and `readingLogs` (or `settings` and `userSettings`) name one list: both are kept.
                contents[collection, default: []] += try items.map { item in
                    guard let object = item.objectValue else { throw CairnError(.validation, "\(key) must hold objects", field: key) }
                    return object.filter { !["createdAt", "updatedAt", "deleted", "deletedAt", "version"].contains($0.key) }
                }
            case .object(var settings):
                // Settings are one object: stored as the record `settings`.
                settings["id"] = .string("settings")
                contents[collection, default: []].append(settings)
            default:
                throw CairnError(.validation, "\(key) must be a list (or, for settings, an object)", field: key)
            }
        }
        if !contents.isEmpty {
            _ = try await self.engine.replaceCollections(profileId: profile.id, clientId: request.headers[.clientID], contents: contents)
        }
        return try JSONResponse.make(SyncedAnswer(success: true, syncedAt: Timestamps.iso(syncedAt)))
    }

    struct QueueBody: Decodable {
        var id: String?
        var type: String
        var entity: String
        var entityId: String
        var data: JSONValue?
    }

    struct QueueAnswer: Encodable {
        var success: Bool
        var operation: QueuedView
    }

    /// Queues an operation; the server applies it shortly after and marks it synced.
    @Sendable func enqueue(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let body = try await request.decodeJSON(as: QueueBody.self, context: context, maxDepth: self.limits.maxJSONDepth)
        let id = body.id ?? "op-\(Identifiers.uuid())"
        guard RecordRules.isValidId(id), RecordRules.isValidId(body.entityId) else { throw CairnError(.validation, "id and entityId must match [A-Za-z0-9_.:-]{1,128}") }
        // Validate now, so the client learns of a bad operation at once.
        _ = try Self.syncOperation(Operation(id: id, type: body.type, entity: body.entity, entityId: body.entityId, data: body.data, timestamp: nil), opId: id)
        let operation = QueuedOperation(
            profileId: profile.id, id: id, type: body.type, entity: body.entity, entityId: body.entityId, data: body.data, createdAt: self.clock.nowMilliseconds
        )
        try await self.store.enqueueOperation(operation)
        self.queue.kick()
        return try JSONResponse.make(QueueAnswer(success: true, operation: Self.view(operation, withData: false)), status: .created)
    }

    struct MarkBody: Decodable {
        var operationIds: [String]
    }

    struct MessageAnswer: Encodable {
        var success: Bool
        var message: String
    }

    @Sendable func markSynced(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let body = try await request.decodeJSON(as: MarkBody.self, context: context, maxDepth: 4)
        guard body.operationIds.count <= 10_000 else { throw CairnError(.validation, "At most 10,000 ids", field: "operationIds") }
        let count = try await self.store.markOperationsSynced(profileId: profile.id, ids: body.operationIds, results: [:], at: self.clock.nowMilliseconds)
        return try JSONResponse.make(MessageAnswer(success: true, message: "Marked \(count) operations as synced"))
    }

    @Sendable func clear(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        _ = try await self.store.clearSyncedOperations(profileId: profile.id)
        return try JSONResponse.make(MessageAnswer(success: true, message: "Cleared synced operations"))
    }
}
