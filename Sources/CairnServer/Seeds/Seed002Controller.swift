import CairnCore
import Crypto
import Foundation
import HTTPTypes
import Hummingbird

/// Seed 002 ("Pawkit"): per-entity CRUD for cards, collections, todos and events filtered by
/// `workspaceId` (= a profile), `/api/workspaces` (= profiles), `/api/view-settings` upserted by
/// `viewKey`, and `GET /api/sync/delta`. Soft deletes (`deleted`, `deletedAt`), ISO `updatedAt`
/// on every entity, client-generated ids (cuid) accepted.
struct Seed002Controller {
    let engine: SyncEngine
    let store: any SyncStore
    let profiles: ProfileResolver
    let profileRoutes: ProfilesController
    let limits: Limits
    let clock: ServerClock

    /// Route name → (collection, JSON key of one entity).
    static let entities: [(route: String, collection: String, singular: String)] = [
        ("cards", "cards", "card"), ("collections", "collections", "collection"), ("todos", "todos", "todo"), ("events", "events", "event"),
    ]
    static let viewSettingsCollection = "viewSettings"

    func addRoutes(to group: RouterGroup<CairnRequestContext>) {
        for entity in Self.entities {
            group.get(RouterPath(entity.route)) { request, context in try await self.list(request, context, entity) }
            group.post(RouterPath(entity.route)) { request, context in try await self.create(request, context, entity) }
            group.get(RouterPath("\(entity.route)/{id}")) { request, context in try await self.get(request, context, entity) }
            group.patch(RouterPath("\(entity.route)/{id}")) { request, context in try await self.update(request, context, entity) }
            group.delete(RouterPath("\(entity.route)/{id}")) { request, context in try await self.delete(request, context, entity) }
        }
        group.get("workspaces", use: self.listWorkspaces)
        group.post("workspaces", use: self.createWorkspace)
        group.get("workspaces/{id}", use: self.getWorkspace)
        group.patch("workspaces/{id}", use: self.updateWorkspace)
        group.delete("workspaces/{id}", use: self.deleteWorkspace)
        group.get("view-settings", use: self.getViewSettings)
        group.put("view-settings", use: self.putViewSettings)
        group.get("sync/delta", use: self.delta)
    }

    // MARK: Shapes

    /// An entity: its fields, `id`, `workspaceId`, ISO `createdAt`/`updatedAt`, `deleted`, `deletedAt`.
    static func json(_ record: StoredRecord, workspaceId: String) -> JSONValue {
        var object = record.data
        object["id"] = .string(record.id)
        object["workspaceId"] = .string(workspaceId)
        object["createdAt"] = .string(Timestamps.iso(record.createdAt))
        object["updatedAt"] = .string(Timestamps.iso(record.updatedAt))
        object["deleted"] = .bool(record.deleted)
        object["deletedAt"] = record.deletedAt.map { .string(Timestamps.iso($0)) } ?? .null
        return .object(object)
    }

    static let serverOwned: Set<String> = ["id", "workspaceId", "createdAt", "updatedAt", "deleted", "deletedAt", "userId", "_synced", "_lastModified", "_deleted", "_serverVersion"]

    /// The workspace of a request: `?workspaceId=`, else the body's `workspaceId`, else the default.
    func workspace(_ request: Request, _ context: CairnRequestContext, body: [String: JSONValue]? = nil) async throws -> ProfileRef {
        let wanted = request.uri.queryParameters.get("workspaceId") ?? body?["workspaceId"]?.stringValue
        return try await self.profiles.resolve(identity: try context.requireIdentity(), wanted: wanted)
    }

    func body(_ request: Request, _ context: CairnRequestContext) async throws -> [String: JSONValue] {
        let value = try await request.decodeJSON(as: JSONValue.self, context: context, maxDepth: self.limits.maxJSONDepth)
        guard let object = value.objectValue else { throw CairnError(.validation, "The body must be a JSON object") }
        return object
    }

    func id(_ context: CairnRequestContext) throws -> String {
        let id = try context.parameters.decoded("id")
        guard RecordRules.isValidId(id) else { throw CairnError.notFound("Entity") }
        return id
    }

    func respond(_ key: String, _ value: JSONValue, status: HTTPResponse.Status = .ok) throws -> Response {
        try JSONResponse.make(JSONValue.object([key: value]), status: status)
    }

    /// Pushes one op, whose id was made up here, and returns the record after it (404 for a
    /// missing or another user's id).
    func write(_ op: SyncOperation, workspace: ProfileRef, request: Request) async throws -> StoredRecord {
        let (result, _) = try await self.engine.pushOne(op, profileId: workspace.id, clientId: request.headers[.clientID], mintedOpId: true)
        try result.throwIfRefused()
        guard let id = result.id, let record = try await self.engine.record(profileId: workspace.id, collection: op.collection, id: id) else {
            throw CairnError.notFound("Entity")
        }
        return record
    }

    // MARK: Entity CRUD

    func list(_ request: Request, _ context: CairnRequestContext, _ entity: (route: String, collection: String, singular: String)) async throws -> Response {
        let workspace = try await self.workspace(request, context)
        let records: [StoredRecord]
        if let raw = request.uri.queryParameters.get("since") {
            guard let since = Timestamps.milliseconds(raw) else { throw CairnError(.validation, "since must be an ISO 8601 date or milliseconds", field: "since") }
            records = try await self.engine.recordsUpdated(profileId: workspace.id, collections: [entity.collection], since: since, limit: 10_000).records
        } else {
            records = try await self.engine.records(profileId: workspace.id, collection: entity.collection, includeDeleted: request.boolParameter("includeDeleted"))
                .sorted { $0.createdSeq < $1.createdSeq }
        }
        return try self.respond(entity.route, .array(records.map { Self.json($0, workspaceId: workspace.id) }))
    }

    func create(_ request: Request, _ context: CairnRequestContext, _ entity: (route: String, collection: String, singular: String)) async throws -> Response {
        let body = try await self.body(request, context)
        let workspace = try await self.workspace(request, context, body: body)
        let id = body["id"]?.stringValue
        if let id, !RecordRules.isValidId(id) { throw CairnError(.validation, "id must match [A-Za-z0-9_.:-]{1,128}", field: "id") }
        let existed = try await id.asyncMap { try await self.engine.record(profileId: workspace.id, collection: entity.collection, id: $0) }?.map { !$0.deleted } ?? false
        let op = SyncOperation(
            opId: "pawkit-\(Identifiers.uuid())", type: .create, collection: entity.collection, id: id,
            data: .object(body.filter { !Self.serverOwned.contains($0.key) })
        )
        let record = try await self.write(op, workspace: workspace, request: request)
        return try self.respond(entity.singular, Self.json(record, workspaceId: workspace.id), status: existed ? .ok : .created)
    }

    func get(_ request: Request, _ context: CairnRequestContext, _ entity: (route: String, collection: String, singular: String)) async throws -> Response {
        let workspace = try await self.workspace(request, context)
        guard let record = try await self.engine.record(profileId: workspace.id, collection: entity.collection, id: try self.id(context)),
            !record.deleted || request.boolParameter("includeDeleted")
        else { throw CairnError.notFound("Entity") }
        return try self.respond(entity.singular, Self.json(record, workspaceId: workspace.id))
    }

    func update(_ request: Request, _ context: CairnRequestContext, _ entity: (route: String, collection: String, singular: String)) async throws -> Response {
        let id = try self.id(context)
        let body = try await self.body(request, context)
        let workspace = try await self.workspace(request, context, body: body)
        guard let current = try await self.engine.record(profileId: workspace.id, collection: entity.collection, id: id), !current.deleted else {
            throw CairnError.notFound("Entity")
        }
        let op = SyncOperation(
            opId: "pawkit-\(Identifiers.uuid())", type: .update, collection: entity.collection, id: id,
            patch: .object(body.filter { !Self.serverOwned.contains($0.key) })
        )
        let record = try await self.write(op, workspace: workspace, request: request)
        return try self.respond(entity.singular, Self.json(record, workspaceId: workspace.id))
    }

    func delete(_ request: Request, _ context: CairnRequestContext, _ entity: (route: String, collection: String, singular: String)) async throws -> Response {
        let id = try self.id(context)
        let workspace = try await self.workspace(request, context)
        guard try await self.engine.record(profileId: workspace.id, collection: entity.collection, id: id) != nil else { throw CairnError.notFound("Entity") }
        let op = SyncOperation(opId: "pawkit-\(Identifiers.uuid())", type: .delete, collection: entity.collection, id: id)
        let record = try await self.write(op, workspace: workspace, request: request)
        return try self.respond(entity.singular, Self.json(record, workspaceId: workspace.id))
    }

    // MARK: Workspaces (= profiles)

    static func workspaceJSON(_ profile: StoredProfile) -> JSONValue {
        [
            "id": .string(profile.id), "name": .string(profile.name), "userId": .string(profile.userId), "isDefault": .bool(profile.name == "default"),
            "createdAt": .string(Timestamps.iso(profile.createdAt)), "updatedAt": .string(Timestamps.iso(profile.updatedAt)),
        ]
    }

    @Sendable func listWorkspaces(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        var all = try await self.store.profiles(userId: identity.user.id)
        if let scope = identity.scopedProfileId { all = all.filter { $0.id == scope } }
        return try self.respond("workspaces", .array(all.map(Self.workspaceJSON)))
    }

    @Sendable func createWorkspace(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let response = try await self.profileRoutes.create(request, context: context)
        guard response.status == .created, let id = response.headers[.location]?.split(separator: "/").last.map(String.init) else { return response }
        let profile = try await self.profiles.current(identity: try context.requireIdentity(), wanted: id)
        return try self.respond("workspace", Self.workspaceJSON(profile), status: .created)
    }

    @Sendable func getWorkspace(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.current(identity: try context.requireIdentity(), wanted: try context.parameters.decoded("id"))
        return try self.respond("workspace", Self.workspaceJSON(profile))
    }

    @Sendable func updateWorkspace(_ request: Request, context: CairnRequestContext) async throws -> Response {
        _ = try await self.profileRoutes.update(request, context: context)
        let profile = try await self.profiles.current(identity: try context.requireIdentity(), wanted: try context.parameters.decoded("id"))
        return try self.respond("workspace", Self.workspaceJSON(profile))
    }

    @Sendable func deleteWorkspace(_ request: Request, context: CairnRequestContext) async throws -> Response {
        _ = try await self.profileRoutes.delete(request, context: context)
        return try JSONResponse.make(JSONValue.object(["success": true]))
    }

    // MARK: View settings (upsert by viewKey)

    /// The record id of a view key: the key itself when it is a valid id, else a hash of it.
    static func viewSettingsId(_ viewKey: String) -> String {
        if RecordRules.isValidId(viewKey) { return viewKey }
        return "vk-" + SHA256.hash(data: Data(viewKey.utf8)).prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    @Sendable func getViewSettings(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let workspace = try await self.workspace(request, context)
        var records = try await self.engine.records(profileId: workspace.id, collection: Self.viewSettingsCollection, includeDeleted: false)
        if let viewKey = request.uri.queryParameters.get("viewKey") {
            records = records.filter { $0.id == Self.viewSettingsId(viewKey) }
        }
        return try self.respond("viewSettings", .array(records.sorted { $0.createdSeq < $1.createdSeq }.map { Self.json($0, workspaceId: workspace.id) }))
    }

    @Sendable func putViewSettings(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let body = try await self.body(request, context)
        guard let viewKey = body["viewKey"]?.stringValue, !viewKey.isEmpty, viewKey.count <= 256 else {
            throw CairnError(.validation, "viewKey is required (1 to 256 characters)", field: "viewKey")
        }
        let workspace = try await self.workspace(request, context, body: body)
        let id = Self.viewSettingsId(viewKey)
        let existed = try await self.engine.record(profileId: workspace.id, collection: Self.viewSettingsCollection, id: id).map { !$0.deleted } ?? false
        let op = SyncOperation(
            opId: "pawkit-\(Identifiers.uuid())", type: .upsert, collection: Self.viewSettingsCollection, id: id,
            data: .object(body.filter { !Self.serverOwned.contains($0.key) })
        )
        let record = try await self.write(op, workspace: workspace, request: request)
        return try self.respond("viewSettings", Self.json(record, workspaceId: workspace.id), status: existed ? .ok : .created)
    }

    // MARK: Delta

    /// Everything changed at or after `since` (ISO 8601 or ms, default the beginning), deletions
    /// included; `serverTime` is the `since` to send next.
    @Sendable func delta(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let workspace = try await self.workspace(request, context)
        let raw = request.uri.queryParameters.get("since") ?? "0"
        guard let since = Timestamps.milliseconds(raw) else { throw CairnError(.validation, "since must be an ISO 8601 date or milliseconds", field: "since") }
        let collections = Self.entities.map(\.collection) + [Self.viewSettingsCollection]
        let (records, next) = try await self.engine.recordsUpdated(profileId: workspace.id, collections: collections, since: since, limit: 10_000)
        var answer: [String: JSONValue] = [:]
        for entity in Self.entities {
            answer[entity.route] = .array(records.filter { $0.collection == entity.collection }.map { Self.json($0, workspaceId: workspace.id) })
        }
        answer["viewSettings"] = .array(records.filter { $0.collection == Self.viewSettingsCollection }.map { Self.json($0, workspaceId: workspace.id) })
        answer["serverTime"] = .string(Timestamps.iso(next))
        return try JSONResponse.make(JSONValue.object(answer))
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        switch self {
        case .some(let value): try await transform(value)
        case .none: nil
        }
    }
}
