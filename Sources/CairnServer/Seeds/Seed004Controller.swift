import CairnCore
import Foundation
import HTTPTypes
import Hummingbird

/// Seed 004 ("Peek"): `/items` (url, text, tagset and image items) and `/profiles`, with API-key
/// auth, `?profile=`, integer millisecond timestamps (ISO accepted on input), tombstones via
/// `deleted_at`, and the two dedup rules: `sync_id` on the sync path, content on the other.
struct Seed004Controller {
    let engine: SyncEngine
    let store: any SyncStore
    let profiles: ProfileResolver
    let profileRoutes: ProfilesController
    let limits: Limits
    let clock: ServerClock

    static let collection = "items"
    static let types: Set<String> = ["url", "text", "tagset", "image"]

    func addRoutes(to group: RouterGroup<CairnRequestContext>) {
        group.get("items", use: self.list)
        group.get("items/since/{timestamp}", use: self.since)
        group.get("items/{id}", use: self.get)
        group.post("items", use: self.save)
        group.patch("items/{id}/tags", use: self.setTags)
        group.delete("items/{id}", use: self.delete)
        group.get("profiles", use: self.listProfiles)
        group.post("profiles", use: self.createProfile)
        group.delete("profiles/{id}", use: self.deleteProfile)
    }

    // MARK: Shapes

    /// An item: `id` (= the `sync_id` clients keep), `type`, `content`, `tags`, `metadata`, and
    /// `created_at` / `updated_at` / `deleted_at` in ms.
    static func json(_ record: StoredRecord) -> JSONValue {
        [
            "id": .string(record.id), "sync_id": .string(record.id), "type": record.data["type"] ?? .null, "content": record.data["content"] ?? .null,
            "tags": record.data["tags"] ?? .array([]), "metadata": record.data["metadata"] ?? .null,
            "created_at": .number(Double(record.data["created_at"]?.intValue ?? record.createdAt)), "updated_at": .number(Double(record.updatedAt)),
            "deleted_at": record.deletedAt.map { .number(Double($0)) } ?? .null,
        ]
    }

    static func tags(_ value: JSONValue?) throws -> [String] {
        guard let value, !value.isNull else { return [] }
        guard case .array(let items) = value else { throw CairnError(.validation, "tags must be an array of strings", field: "tags") }
        var seen: Set<String> = []
        var tags: [String] = []
        for item in items {
            guard let tag = item.stringValue?.trimmingWhitespace(), tag.count <= 100 else {
                throw CairnError(.validation, "tags must be strings of at most 100 characters", field: "tags")
            }
            if !tag.isEmpty, seen.insert(tag).inserted { tags.append(tag) }
        }
        guard tags.count <= 1000 else { throw CairnError(.validation, "at most 1,000 tags", field: "tags") }
        return tags
    }

    func profile(_ request: Request, _ context: CairnRequestContext) async throws -> ProfileRef {
        try await self.profiles.resolve(request, context: context, parameter: "profile")
    }

    // MARK: Reads

    @Sendable func list(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profile(request, context)
        let records = try await self.engine.records(profileId: profile.id, collection: Self.collection, includeDeleted: request.boolParameter("includeDeleted"))
            .sorted { $0.createdSeq < $1.createdSeq }
        return try JSONResponse.make(JSONValue.object(["items": .array(records.map(Self.json))]))
    }

    /// Items changed at or after the timestamp (ms or ISO), tombstones always included;
    /// `server_time` is the timestamp to ask from next.
    @Sendable func since(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profile(request, context)
        guard let since = Timestamps.milliseconds(try context.parameters.decoded("timestamp").removingPercentEncoding ?? "") else {
            throw CairnError(.validation, "timestamp must be milliseconds or an ISO 8601 date", field: "timestamp")
        }
        let (records, next) = try await self.engine.recordsUpdated(profileId: profile.id, collections: [Self.collection], since: since, limit: 10_000)
        return try JSONResponse.make(JSONValue.object(["items": .array(records.map(Self.json)), "server_time": .number(Double(next))]))
    }

    @Sendable func get(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profile(request, context)
        let id = try context.parameters.decoded("id")
        guard RecordRules.isValidId(id), let record = try await self.engine.record(profileId: profile.id, collection: Self.collection, id: id),
            !record.deleted || request.boolParameter("includeDeleted")
        else { throw CairnError.notFound("Item") }
        return try JSONResponse.make(JSONValue.object(["item": Self.json(record)]))
    }

    // MARK: Writes

    struct SaveAnswer: Encodable {
        var id: String
        var created: Bool
        var item: JSONValue
    }

    /// `POST /items`: create or update. With `sync_id` the item with that id is updated (last
    /// write wins by `updated_at`) or created under it; without, an identical live item (url and
    /// text by type and content, tagset by its tag set) is returned instead of a copy. A
    /// `deleted_at` records a tombstone.
    @Sendable func save(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profile(request, context)
        let value = try await request.decodeJSON(as: JSONValue.self, context: context, maxDepth: self.limits.maxJSONDepth)
        guard let body = value.objectValue else { throw CairnError(.validation, "The body must be a JSON object") }
        guard let type = body["type"]?.stringValue, Self.types.contains(type) else {
            throw CairnError(.validation, "type must be url, text, tagset or image", field: "type")
        }
        let content = body["content"] ?? .null
        if type != "tagset" {
            guard let text = content.stringValue, !text.isEmpty else { throw CairnError(.validation, "content is required for \(type) items", field: "content") }
            if type == "url" { try BookmarkURL.validate(text, maxBytes: self.limits.maxURLBytes) }
        }
        let tags = try Self.tags(body["tags"])
        var data: [String: JSONValue] = ["type": .string(type), "content": type == "tagset" ? .null : content, "tags": .array(tags.map { .string($0) })]
        if let metadata = body["metadata"], !metadata.isNull { data["metadata"] = metadata }
        if let created = Timestamps.milliseconds(body["created_at"] ?? body["createdAt"]) { data["created_at"] = .number(Double(created)) }
        let updatedAt = Timestamps.milliseconds(body["updated_at"] ?? body["updatedAt"])
        let deletedAt = Timestamps.milliseconds(body["deleted_at"] ?? body["deletedAt"])
        let stamp = updatedAt.map { HLC(wall: $0, node: "peek") }
        let clientId = request.headers[.clientID]

        var id = body["sync_id"]?.stringValue ?? body["syncId"]?.stringValue
        var created = false
        if let syncId = id {
            guard RecordRules.isValidId(syncId) else { throw CairnError(.validation, "sync_id must match [A-Za-z0-9_.:-]{1,128}", field: "sync_id") }
            let existing = try await self.engine.record(profileId: profile.id, collection: Self.collection, id: syncId)
            created = existing == nil
            if let existing, existing.deleted, deletedAt == nil, (updatedAt ?? 0) <= (existing.deletedAt ?? 0) {
                // A re-push of an item deleted elsewhere (not edited since): the tombstone stays.
                return try JSONResponse.make(SaveAnswer(id: syncId, created: false, item: Self.json(existing)))
            }
        } else if let twin = try await self.twin(of: data, profileId: profile.id) {
            // The non-sync path: the same content already exists.
            id = twin.id
            if deletedAt == nil {
                return try JSONResponse.make(SaveAnswer(id: twin.id, created: false, item: Self.json(twin)))
            }
        } else if deletedAt != nil {
            throw CairnError.notFound("Item")
        } else {
            id = Identifiers.uuid()
            created = true
        }
        guard let id else { throw CairnError(.internalError, "no id") }
        var operations: [SyncOperation] = []
        if created || deletedAt == nil {
            operations.append(SyncOperation(opId: "peek-\(Identifiers.uuid())", type: .upsert, collection: Self.collection, id: id, data: .object(data), hlc: stamp))
        }
        if deletedAt != nil {
            operations.append(SyncOperation(opId: "peek-\(Identifiers.uuid())", type: .delete, collection: Self.collection, id: id, hlc: stamp))
        }
        let outcome = try await self.engine.push(
            PushRequest(profileId: profile.id, clientId: clientId, operations: operations, atomic: true, strategy: created ? .clientWins : .lww, mintedOpIds: true)
        )
        if !outcome.committed, let failure = outcome.results.first(where: { $0.status == .rejected && $0.error?.code != CairnError.Code.syncFailed.rawValue }) {
            try failure.throwIfRefused()
        }
        guard let record = try await self.engine.record(profileId: profile.id, collection: Self.collection, id: id) else { throw CairnError.notFound("Item") }
        return try JSONResponse.make(SaveAnswer(id: id, created: created, item: Self.json(record)), status: created ? .created : .ok)
    }

    /// A live item with the same content: url and text by type and content, tagset by tag set.
    func twin(of data: [String: JSONValue], profileId: String) async throws -> StoredRecord? {
        let type = data["type"]?.stringValue
        let items = try await self.engine.records(profileId: profileId, collection: Self.collection, includeDeleted: false)
        switch type {
        case "tagset":
            let wanted = Set((try? Self.tags(data["tags"])) ?? [])
            return items.first { $0.data["type"]?.stringValue == "tagset" && Set((try? Self.tags($0.data["tags"])) ?? []) == wanted }
        default:
            return items.first { $0.data["type"]?.stringValue == type && $0.data["content"] == data["content"] }
        }
    }

    struct TagsBody: Decodable {
        var tags: JSONValue
    }

    @Sendable func setTags(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profile(request, context)
        let id = try context.parameters.decoded("id")
        guard RecordRules.isValidId(id), let current = try await self.engine.record(profileId: profile.id, collection: Self.collection, id: id), !current.deleted else {
            throw CairnError.notFound("Item")
        }
        let body = try await request.decodeJSON(as: TagsBody.self, context: context, maxDepth: 4)
        let tags = try Self.tags(body.tags)
        let (result, _) = try await self.engine.pushOne(
            SyncOperation(opId: "peek-\(Identifiers.uuid())", type: .update, collection: Self.collection, id: id, patch: ["tags": .array(tags.map { .string($0) })]),
            profileId: profile.id, clientId: request.headers[.clientID], mintedOpId: true
        )
        try result.throwIfRefused()
        guard let record = try await self.engine.record(profileId: profile.id, collection: Self.collection, id: id) else { throw CairnError.notFound("Item") }
        return try JSONResponse.make(JSONValue.object(["item": Self.json(record)]))
    }

    /// Removes the item's content and keeps a tombstone, so other devices learn of the delete.
    @Sendable func delete(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profile(request, context)
        let id = try context.parameters.decoded("id")
        guard RecordRules.isValidId(id), let current = try await self.engine.record(profileId: profile.id, collection: Self.collection, id: id) else {
            throw CairnError.notFound("Item")
        }
        if !current.deleted {
            let outcome = try await self.engine.push(
                PushRequest(
                    profileId: profile.id, clientId: request.headers[.clientID],
                    operations: [
                        SyncOperation(opId: "peek-\(Identifiers.uuid())", type: .update, collection: Self.collection, id: id, patch: ["content": .null, "metadata": .null]),
                        SyncOperation(opId: "peek-\(Identifiers.uuid())", type: .delete, collection: Self.collection, id: id),
                    ],
                    atomic: true, strategy: .clientWins, mintedOpIds: true
                )
            )
            guard outcome.committed else { throw CairnError(.syncFailed, "The item could not be deleted") }
        }
        return try JSONResponse.make(JSONValue.object(["success": true, "id": .string(id)]))
    }

    // MARK: Profiles

    static func profileJSON(_ profile: StoredProfile) -> JSONValue {
        [
            "id": .string(profile.id), "name": .string(profile.name), "slug": .string(profile.name),
            "created_at": .number(Double(profile.createdAt)), "updated_at": .number(Double(profile.updatedAt)),
        ]
    }

    @Sendable func listProfiles(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        var all = try await self.store.profiles(userId: identity.user.id)
        if let scope = identity.scopedProfileId { all = all.filter { $0.id == scope } }
        return try JSONResponse.make(JSONValue.object(["profiles": .array(all.map(Self.profileJSON))]))
    }

    @Sendable func createProfile(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let response = try await self.profileRoutes.create(request, context: context)
        guard let id = response.headers[.location]?.split(separator: "/").last.map(String.init) else { return response }
        let profile = try await self.profiles.current(identity: try context.requireIdentity(), wanted: id)
        return try JSONResponse.make(JSONValue.object(["profile": Self.profileJSON(profile)]), status: .created)
    }

    @Sendable func deleteProfile(_ request: Request, context: CairnRequestContext) async throws -> Response {
        _ = try await self.profileRoutes.delete(request, context: context)
        return try JSONResponse.make(JSONValue.object(["success": true]))
    }
}
