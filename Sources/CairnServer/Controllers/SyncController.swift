import CairnCore
import Foundation
import Hummingbird

/// `/api/sync/*`: the generic push/pull protocol and the conflict log.
struct SyncController {
    let engine: SyncEngine
    let profiles: ProfileResolver
    let limits: Limits

    func addRoutes(to group: RouterGroup<CairnRequestContext>) {
        group.post("sync/push", use: self.push)
        group.get("sync/pull", use: self.pull)
        group.get("sync/conflicts", use: self.conflicts)
    }

    struct PushBody: Decodable {
        var clientId: String?
        var cursor: Int64?
        var operations: [SyncOperation]
        var atomic: Bool?
        var strategy: ConflictStrategy?
    }

    struct PushAnswer: Encodable {
        var results: [OperationResult]
        var committed: Bool
        /// Changes since the given cursor, not this push's own.
        var changes: [RecordChange]
        var cursor: Int64
        var hasMore: Bool
    }

    @Sendable func push(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let body = try await request.decodeJSON(as: PushBody.self, context: context, maxDepth: self.limits.maxJSONDepth)
        guard body.operations.count <= self.limits.maxOpsPerPush else {
            throw CairnError(.payloadTooLarge, "At most \(self.limits.maxOpsPerPush) operations per push", field: "operations")
        }
        if let cursor = body.cursor { try await self.engine.checkCursor(profileId: profile.id, cursor: cursor) }
        let outcome = try await self.engine.push(
            PushRequest(profileId: profile.id, clientId: body.clientId ?? request.headers[.clientID], operations: body.operations, atomic: body.atomic ?? false, strategy: body.strategy)
        )
        var answer = PushAnswer(results: outcome.results, committed: outcome.committed, changes: [], cursor: outcome.sequence, hasMore: false)
        if let cursor = body.cursor, cursor < outcome.previousSequence {
            let (changes, hasMore) = try await self.engine.changesBetween(
                profileId: profile.id, since: cursor, upTo: outcome.previousSequence, collections: nil, limit: 1000
            )
            answer.changes = changes.map(\.record)
            if hasMore {
                answer.hasMore = true
                answer.cursor = changes.last?.record.version ?? cursor
            }
        }
        if let cursor = body.cursor, !answer.hasMore {
            // Records this push changed last but that others had changed after the cursor: their
            // current state, so the client does not miss those other edits.
            answer.changes += try await self.engine.currentChanges(profileId: profile.id, keys: outcome.recordsWithUnseenChanges(since: cursor))
        }
        return try JSONResponse.make(answer)
    }

    @Sendable func pull(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let sinceText = request.uri.queryParameters.get("since") ?? "0"
        guard let since = Int64(sinceText), since >= 0 else { throw CairnError(.validation, "since must be a non-negative integer", field: "since") }
        let limit = try request.intParameter("limit", default: 1000, range: 1...5000)
        let collections = request.uri.queryParameters.get("collections").map {
            $0.split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
        }
        if let collections {
            guard collections.count <= 64, collections.allSatisfy(RecordRules.isValidCollection) else {
                throw CairnError(.validation, "collections must be a comma-separated list of collection names", field: "collections")
            }
        }
        return try JSONResponse.make(try await self.engine.pull(profileId: profile.id, since: since, collections: collections, limit: limit))
    }

    struct ConflictsAnswer: Encodable {
        var conflicts: [StoredConflict]
    }

    @Sendable func conflicts(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let limit = try request.intParameter("limit", default: 100, range: 1...1000)
        let all = try await self.engine.conflicts(profileId: profile.id, includeResolved: request.boolParameter("includeResolved"), limit: limit)
        return try JSONResponse.make(ConflictsAnswer(conflicts: all))
    }
}
