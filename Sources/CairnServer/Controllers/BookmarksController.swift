import CairnCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `/api/bookmarks/*`: the bookmark tree over REST (seed 000).
struct BookmarksController {
    let engine: SyncEngine
    let profiles: ProfileResolver
    let limits: Limits

    func addRoutes(to group: RouterGroup<CairnRequestContext>) {
        group.get("bookmarks", use: self.list)
        group.post("bookmarks", use: self.create)
        group.post("bookmarks/sync", use: self.sync)
        group.get("bookmarks/search", use: self.search)
        group.get("bookmarks/duplicates", use: self.duplicates)
        group.get("bookmarks/export", use: self.export)
        group.post("bookmarks/import", use: self.importFile)
        group.get("bookmarks/{id}", use: self.get)
        group.patch("bookmarks/{id}", use: self.update)
        group.delete("bookmarks/{id}", use: self.delete)
        group.post("bookmarks/{id}/move", use: self.move)
    }

    // MARK: List and read

    struct ListResponse: Encodable {
        var bookmarks: [Bookmark]
        var syncVersion: Int64
    }

    @Sendable func list(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let format = request.uri.queryParameters.get("format") ?? "flat"
        guard format == "flat" || format == "tree" else { throw CairnError(.validation, "format must be flat or tree", field: "format") }
        let (bookmarks, syncVersion) = try await self.engine.bookmarks(profileId: profile.id, includeDeleted: request.boolParameter("includeDeleted"))
        return try JSONResponse.make(ListResponse(bookmarks: format == "tree" ? BookmarkView.tree(bookmarks) : bookmarks, syncVersion: syncVersion))
    }

    @Sendable func get(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let id = try context.parameters.decoded("id")
        let bookmark = try await self.engine.bookmark(profileId: profile.id, id: id, includeDeleted: request.boolParameter("includeDeleted"))
        return try Self.respond(bookmark)
    }

    static func respond(_ bookmark: Bookmark, status: HTTPResponse.Status = .ok) throws -> Response {
        try JSONResponse.make(bookmark, status: status, headers: [.eTag: "\"\(bookmark.syncVersion)\""])
    }

    // MARK: Writes

    /// The body of create, update and move: bookmark fields plus placement and sync metadata.
    struct WriteBody: Decodable {
        var id: String?
        var opId: String?
        var expectedVersion: Int64?
        var hlc: HLC?
        var parentId: JSONValue?
        var newParentId: JSONValue?
        var index: Int?
        var newIndex: Int?
        var afterId: String?
        var beforeId: String?
        var position: String?
        var fields: [String: JSONValue]

        enum Keys: String, CodingKey {
            case id, opId, expectedVersion, hlc, parentId, newParentId, index, newIndex, afterId, beforeId, position
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: Keys.self)
            self.id = try container.decodeIfPresent(String.self, forKey: .id)
            self.opId = try container.decodeIfPresent(String.self, forKey: .opId)
            self.expectedVersion = try container.decodeIfPresent(Int64.self, forKey: .expectedVersion)
            self.hlc = try container.decodeIfPresent(HLC.self, forKey: .hlc)
            self.parentId = container.contains(.parentId) ? try container.decode(JSONValue.self, forKey: .parentId) : nil
            self.newParentId = container.contains(.newParentId) ? try container.decode(JSONValue.self, forKey: .newParentId) : nil
            self.index = try container.decodeIfPresent(Int.self, forKey: .index)
            self.newIndex = try container.decodeIfPresent(Int.self, forKey: .newIndex)
            self.afterId = try container.decodeIfPresent(String.self, forKey: .afterId)
            self.beforeId = try container.decodeIfPresent(String.self, forKey: .beforeId)
            self.position = try container.decodeIfPresent(String.self, forKey: .position)
            guard case .object(let all) = try JSONValue(from: decoder) else {
                throw CairnError(.validation, "The body must be a JSON object")
            }
            self.fields = all.filter { BookmarkRules.dataFields.contains($0.key) }
            if let parent = self.parentId ?? self.newParentId, parent.stringValue == nil, !parent.isNull {
                throw CairnError(.validation, "parentId must be a string or null", field: "parentId")
            }
        }

        /// The op, and whether its id was made up here (see `Identifiers.restOpId`).
        func operation(_ type: SyncOperation.Kind, id: String?, expectedVersion: Int64?) -> (SyncOperation, mintedOpId: Bool) {
            let opId = Identifiers.restOpId(self.opId)
            let op = SyncOperation(
                opId: opId.id, type: type, collection: BookmarkRules.collection, id: id,
                data: type == .create ? .object(self.fields) : nil, patch: type == .update ? .object(self.fields) : nil,
                expectedVersion: expectedVersion, parentId: self.parentId ?? self.newParentId, index: self.index ?? self.newIndex,
                afterId: self.afterId, beforeId: self.beforeId, position: self.position, hlc: self.hlc
            )
            return (op, opId.minted)
        }
    }

    @Sendable func create(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let body = try await request.decodeJSON(as: WriteBody.self, context: context, maxDepth: self.limits.maxJSONDepth)
        let (op, mintedOpId) = body.operation(.create, id: body.id, expectedVersion: body.expectedVersion)
        // A create naming a live bookmark's id updates it (the sync path matches by id): 200, not 201.
        let existed = body.id == nil ? false : ((try? await self.engine.bookmark(profileId: profile.id, id: body.id ?? "")) != nil)
        let (result, _) = try await self.engine.pushOne(
            op, profileId: profile.id, clientId: request.headers[.clientID], deduplicate: body.id == nil, mintedOpId: mintedOpId)
        try result.throwIfRefused()
        guard let id = result.id else { throw CairnError(.internalError, "No id") }
        var bookmark = try await self.engine.bookmark(profileId: profile.id, id: id)
        let deduplicated = result.deduplicated == true
        if deduplicated { bookmark.deduplicated = true }
        var response = try Self.respond(bookmark, status: deduplicated || existed ? .ok : .created)
        response.headers[.location] = "/api/bookmarks/\(id)"
        return response
    }

    @Sendable func update(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let id = try context.parameters.decoded("id")
        let ifMatch = try request.ifMatchVersion()
        let body = try await request.decodeJSON(as: WriteBody.self, context: context, maxDepth: self.limits.maxJSONDepth)
        let (op, mintedOpId) = body.operation(.update, id: id, expectedVersion: ifMatch ?? body.expectedVersion)
        let (result, _) = try await self.engine.pushOne(
            op, profileId: profile.id, clientId: request.headers[.clientID], strictVersion: ifMatch != nil, mintedOpId: mintedOpId)
        try result.throwIfRefused()
        return try Self.respond(try await self.engine.bookmark(profileId: profile.id, id: id))
    }

    @Sendable func move(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let id = try context.parameters.decoded("id")
        let ifMatch = try request.ifMatchVersion()
        let body = try await request.decodeJSON(as: WriteBody.self, context: context, maxDepth: self.limits.maxJSONDepth)
        guard body.parentId != nil || body.newParentId != nil || body.index != nil || body.newIndex != nil || body.afterId != nil
            || body.beforeId != nil || body.position != nil
        else {
            throw CairnError(.validation, "A move needs parentId and/or index, afterId, beforeId or position", field: "parentId")
        }
        let (op, mintedOpId) = body.operation(.move, id: id, expectedVersion: ifMatch ?? body.expectedVersion)
        let (result, _) = try await self.engine.pushOne(
            op, profileId: profile.id, clientId: request.headers[.clientID], strictVersion: ifMatch != nil, mintedOpId: mintedOpId)
        try result.throwIfRefused()
        return try Self.respond(try await self.engine.bookmark(profileId: profile.id, id: id))
    }

    struct DeleteResponse: Encodable {
        var id: String
        var isDeleted: Bool
        var syncVersion: Int64
        /// Other bookmarks tombstoned with it (a folder's subtree).
        var deletedDescendants: [String]
    }

    @Sendable func delete(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let id = try context.parameters.decoded("id")
        let ifMatch = try request.ifMatchVersion()
        let opId = Identifiers.restOpId(nil)
        let op = SyncOperation(opId: opId.id, type: .delete, collection: BookmarkRules.collection, id: id, expectedVersion: ifMatch)
        let (result, _) = try await self.engine.pushOne(
            op, profileId: profile.id, clientId: request.headers[.clientID], strictVersion: ifMatch != nil, mintedOpId: opId.minted)
        try result.throwIfRefused()
        return try JSONResponse.make(DeleteResponse(id: id, isDeleted: true, syncVersion: result.version ?? 0, deletedDescendants: result.affected ?? []))
    }

    // MARK: Search and duplicates

    struct SearchResponse: Encodable {
        var results: [Bookmark]
        var total: Int
        var limit: Int
        var offset: Int
    }

    @Sendable func search(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        guard let query = request.uri.queryParameters.get("q"), !query.trimmingWhitespace().isEmpty else {
            throw CairnError(.validation, "q is required", field: "q")
        }
        guard query.utf8.count <= 1024 else { throw CairnError(.validation, "q is too long", field: "q") }
        let limit = try request.intParameter("limit", default: 50, range: 1...200)
        let offset = try request.intParameter("offset", default: 0, range: 0...1_000_000)
        let (results, total) = try await self.engine.searchBookmarks(profileId: profile.id, query: query, limit: limit, offset: offset)
        return try JSONResponse.make(SearchResponse(results: results, total: total, limit: limit, offset: offset))
    }

    struct DuplicatesResponse: Encodable {
        struct Group: Encodable {
            var url: String
            var bookmarks: [Bookmark]
        }
        var duplicates: [Group]
    }

    @Sendable func duplicates(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let groups = try await self.engine.duplicateBookmarks(profileId: profile.id)
        return try JSONResponse.make(
            DuplicatesResponse(duplicates: groups.map { .init(url: BookmarkURL.normalized($0.first?.url ?? ""), bookmarks: $0) })
        )
    }

    // MARK: Import and export

    struct ExportJSON: Encodable {
        var bookmarks: [BookmarkTreeNode]
        var syncVersion: Int64
        var exportedAt: Int64
    }

    @Sendable func export(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let format = request.uri.queryParameters.get("format") ?? "html"
        let (nodes, syncVersion) = try await self.engine.exportTree(profileId: profile.id)
        switch format {
        case "html":
            var headers = HTTPFields()
            headers[.contentType] = "text/html; charset=utf-8"
            headers[.contentDisposition] = "attachment; filename=\"bookmarks.html\""
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: NetscapeBookmarkFile.render(nodes))))
        case "json":
            var response = try JSONResponse.make(ExportJSON(bookmarks: nodes, syncVersion: syncVersion, exportedAt: Int64(Date().timeIntervalSince1970 * 1000)))
            response.headers[.contentDisposition] = "attachment; filename=\"bookmarks.json\""
            return response
        default:
            throw CairnError(.validation, "format must be html or json", field: "format")
        }
    }

    struct ImportJSON: Decodable {
        var bookmarks: [BookmarkTreeNode]
    }

    /// `POST /api/bookmarks/import`: a Netscape bookmark file (`text/html`) or JSON
    /// (`{"bookmarks": [tree nodes]}`), optionally into `?parentId=`.
    @Sendable func importFile(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        var body = request
        let buffer: ByteBuffer
        do {
            buffer = try await body.collectBody(upTo: context.maxUploadSize)
        } catch is NIOTooManyBytesError {
            throw CairnError(.payloadTooLarge, "Request body exceeds \(context.maxUploadSize) bytes")
        }
        let text = String(buffer: buffer)
        let contentType = request.headers[.contentType]?.lowercased() ?? ""
        let nodes: [BookmarkTreeNode]
        let trimmed = text.drop { $0.isWhitespace }
        if contentType.contains("json") || trimmed.hasPrefix("{") || trimmed.hasPrefix("[") {
            let depth = buffer.withUnsafeReadableBytes { JSONShape.depth(of: $0, limit: 256) }
            guard depth <= 256 else { throw CairnError(.validation, "JSON nesting too deep") }
            do {
                if trimmed.hasPrefix("[") {
                    nodes = try JSONDecoder().decode([BookmarkTreeNode].self, from: Data(buffer.readableBytesView))
                } else {
                    nodes = try JSONDecoder().decode(ImportJSON.self, from: Data(buffer.readableBytesView)).bookmarks
                }
            } catch {
                throw CairnError(.validation, "Expected {\"bookmarks\": [nodes]} with title, url, children, dateAdded, tags…")
            }
        } else {
            nodes = try NetscapeBookmarkFile.parse(text)
        }
        let parentId = request.uri.queryParameters.get("parentId") ?? request.uri.queryParameters.get("folder")
        let summary = try await self.engine.importBookmarks(profileId: profile.id, nodes: nodes, parentId: parentId, clientId: request.headers[.clientID])
        return try JSONResponse.make(summary)
    }
}

extension HTTPField.Name {
    /// `X-Client-Id`: the device making a REST write, recorded on its changes.
    static let clientID = HTTPField.Name("X-Client-Id")!
}
