import CairnCore
import Foundation
import HTTPTypes
import Hummingbird

/// `GET/POST /api/records/{collection}`, `GET/PUT/PATCH/DELETE /api/records/{collection}/{id}`:
/// records of any collection, through the same engine as everything else.
struct RecordsController {
    let engine: SyncEngine
    let profiles: ProfileResolver
    let limits: Limits

    func addRoutes(to group: RouterGroup<CairnRequestContext>) {
        group.get("records/{collection}", use: self.list)
        group.post("records/{collection}", use: self.create)
        group.get("records/{collection}/{id}", use: self.get)
        group.put("records/{collection}/{id}", use: self.put)
        group.patch("records/{collection}/{id}", use: self.patch)
        group.delete("records/{collection}/{id}", use: self.delete)
    }

    func collection(_ context: CairnRequestContext) throws -> String {
        let name = try context.parameters.decoded("collection")
        guard RecordRules.isValidCollection(name) else {
            throw CairnError(.validation, "collection must match [a-z][a-zA-Z0-9_-]{0,63}", field: "collection")
        }
        return name
    }

    func id(_ context: CairnRequestContext) throws -> String {
        let id = try context.parameters.decoded("id")
        guard RecordRules.isValidId(id) else { throw CairnError(.validation, "id must match [A-Za-z0-9_.:-]{1,128}", field: "id") }
        return id
    }

    static func respond(_ record: StoredRecord, status: HTTPResponse.Status = .ok) throws -> Response {
        try JSONResponse.make(RecordRules.json(record), status: status, headers: [.eTag: "\"\(record.version)\""])
    }

    struct ListAnswer: Encodable {
        var records: [JSONValue]
        var cursor: Int64
        var hasMore: Bool
    }

    /// Records of the collection changed after `since` (default 0: all), oldest first, paged.
    @Sendable func list(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let collection = try self.collection(context)
        let since = Int64(try request.intParameter("since", default: 0, range: 0...Int.max))
        let limit = try request.intParameter("limit", default: 1000, range: 1...5000)
        let page = try await self.engine.pull(profileId: profile.id, since: since, collections: [collection], limit: limit)
        let includeDeleted = request.boolParameter("includeDeleted") || since > 0
        let records = page.changes.filter { includeDeleted || !$0.deleted }.map { change -> JSONValue in
            [
                "collection": .string(change.collection), "id": .string(change.id), "version": .number(Double(change.version)),
                "deleted": .bool(change.deleted), "deletedAt": change.deletedAt.map { .number(Double($0)) } ?? .null,
                "createdAt": .number(Double(change.createdAt)), "updatedAt": .number(Double(change.updatedAt)), "data": change.data,
            ]
        }
        return try JSONResponse.make(ListAnswer(records: records, cursor: page.cursor, hasMore: page.hasMore))
    }

    struct WriteBody: Decodable {
        var id: String?
        var opId: String?
        var data: JSONValue?
        var expectedVersion: Int64?
        var hlc: HLC?
    }

    func write(_ op: SyncOperation, profile: ProfileRef, request: Request, strict: Bool, mintedOpId: Bool) async throws -> StoredRecord {
        try await self.writeWithResult(op, profile: profile, request: request, strict: strict, mintedOpId: mintedOpId).0
    }

    /// ``write(_:profile:request:strict:mintedOpId:)`` with the op's result.
    func writeWithResult(_ op: SyncOperation, profile: ProfileRef, request: Request, strict: Bool, mintedOpId: Bool) async throws -> (StoredRecord, OperationResult) {
        // With If-Match the record must exist and be live: checked in the push's transaction.
        let (result, _, current) = try await self.engine.pushOneReturningRecord(
            op, profileId: profile.id, clientId: request.headers[.clientID], strictVersion: strict, requireLive: strict, mintedOpId: mintedOpId)
        if result.status == .conflict || (result.status == .duplicate && result.originalStatus == .conflict),
            result.record?["deleted"] == .bool(true)
        {
            throw CairnError.notFound("Record")
        }
        try result.throwIfRefused()
        guard result.id != nil, let record = current else { throw CairnError.notFound("Record") }
        return (record, result)
    }

    @Sendable func create(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let collection = try self.collection(context)
        let body = try await request.decodeJSON(as: WriteBody.self, context: context, maxDepth: self.limits.maxJSONDepth)
        guard body.data?.objectValue != nil else { throw CairnError(.validation, "data must be a JSON object", field: "data") }
        let opId = Identifiers.restOpId(body.opId)
        let op = SyncOperation(opId: opId.id, type: .create, collection: collection, id: body.id, data: body.data, hlc: body.hlc)
        let record = try await self.write(op, profile: profile, request: request, strict: false, mintedOpId: opId.minted)
        return try Self.respond(record, status: record.createdSeq == record.version ? .created : .ok)
    }

    @Sendable func get(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        guard let record = try await self.engine.record(profileId: profile.id, collection: try self.collection(context), id: try self.id(context)),
            !record.deleted || request.boolParameter("includeDeleted")
        else { throw CairnError.notFound("Record") }
        return try Self.respond(record)
    }

    @Sendable func put(_ request: Request, context: CairnRequestContext) async throws -> Response {
        try await self.replaceOrPatch(request, context: context, type: .upsert)
    }

    @Sendable func patch(_ request: Request, context: CairnRequestContext) async throws -> Response {
        try await self.replaceOrPatch(request, context: context, type: .update)
    }

    func replaceOrPatch(_ request: Request, context: CairnRequestContext, type: SyncOperation.Kind) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let collection = try self.collection(context)
        let id = try self.id(context)
        let ifMatch = try request.ifMatchVersion()
        let body = try await request.decodeJSON(as: WriteBody.self, context: context, maxDepth: self.limits.maxJSONDepth)
        guard let data = body.data, data.objectValue != nil else { throw CairnError(.validation, "data must be a JSON object", field: "data") }
        let opId = Identifiers.restOpId(body.opId)
        let op = SyncOperation(
            opId: opId.id, type: type, collection: collection, id: id,
            data: type == .upsert ? data : nil, patch: type == .update ? data : nil, expectedVersion: ifMatch ?? body.expectedVersion, hlc: body.hlc
        )
        // 201 only when this PUT created the record, and again when the same PUT (same opId) is
        // replayed; a PUT that changes nothing takes no version and answers 200.
        let before = type == .upsert ? try await self.engine.record(profileId: profile.id, collection: collection, id: id) : nil
        let (record, result) = try await self.writeWithResult(op, profile: profile, request: request, strict: ifMatch != nil, mintedOpId: opId.minted)
        let created = type == .upsert && record.createdSeq == result.version && (before == nil || result.status == .duplicate)
        return try Self.respond(record, status: created ? .created : .ok)
    }

    @Sendable func delete(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let collection = try self.collection(context)
        let id = try self.id(context)
        let ifMatch = try request.ifMatchVersion()
        let opId = Identifiers.restOpId(nil)
        let op = SyncOperation(opId: opId.id, type: .delete, collection: collection, id: id, expectedVersion: ifMatch)
        let record = try await self.write(op, profile: profile, request: request, strict: ifMatch != nil, mintedOpId: opId.minted)
        return try Self.respond(record)
    }
}
