import CairnCore
import Foundation
import Hummingbird

/// `/api/sync/*`: the generic push/pull protocol and the conflict log.
struct SyncController {
    let engine: SyncEngine
    let store: any SyncStore
    let profiles: ProfileResolver
    let limits: Limits
    let clock: ServerClock
    let devices: DeviceLog

    func addRoutes(to group: RouterGroup<CairnRequestContext>) {
        group.post("sync/push", use: self.push)
        group.get("sync/pull", use: self.pull)
        group.get("sync/conflicts", use: self.conflicts)
        group.get("sync/status", use: self.status)
    }

    struct PushBody: Decodable {
        var clientId: String?
        var cursor: Int64?
        var operations: [SyncOperation]
        var atomic: Bool?
        var strategy: ConflictStrategy?
    }

    struct PushAnswer: Encodable, JSONValueRepresentable, JSONBytesWritable {
        var results: [OperationResult]
        var committed: Bool
        /// Changes since the given cursor, not this push's own.
        var changes: [RecordChange]
        var cursor: Int64
        var hasMore: Bool

        var jsonValue: JSONValue {
            [
                "results": .array(self.results.map(\.jsonValue)), "committed": .bool(self.committed),
                "changes": .array(self.changes.map(\.jsonValue)), "cursor": .integer(self.cursor), "hasMore": .bool(self.hasMore),
            ]
        }

        /// The bytes `jsonValue` gives with its keys sorted, with each result written directly.
        func writeJSON(to bytes: inout [UInt8]) {
            bytes.append(contentsOf: #"{"changes":"#.utf8)
            JSONValue.array(self.changes.map(\.jsonValue)).writeJSON(to: &bytes, sortedKeys: true)
            bytes.append(contentsOf: #","committed":"#.utf8)
            JSONValue.bool(self.committed).writeJSON(to: &bytes)
            bytes.append(contentsOf: #","cursor":"#.utf8)
            JSONWriter.writeNumber(Double(self.cursor), to: &bytes)
            bytes.append(contentsOf: #","hasMore":"#.utf8)
            JSONValue.bool(self.hasMore).writeJSON(to: &bytes)
            bytes.append(contentsOf: #","results":["#.utf8)
            for (index, result) in self.results.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                result.writeJSON(to: &bytes)
            }
            bytes.append(contentsOf: "]}".utf8)
        }
    }

    @Sendable func push(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let body = try await request.decodeJSON(as: PushBody.self, context: context, maxDepth: self.limits.maxJSONDepth)
        guard body.operations.count <= self.limits.maxOpsPerPush else {
            throw CairnError(.payloadTooLarge, "At most \(self.limits.maxOpsPerPush) operations per push", field: "operations")
        }
        let clientId = body.clientId ?? request.headers[.clientID]
        var push = PushRequest(profileId: profile.id, clientId: clientId, operations: body.operations, atomic: body.atomic ?? false, strategy: body.strategy)
        push.cursor = body.cursor
        let outcome = try await self.engine.push(push)
        try await self.touch(profile: profile, clientId: clientId, cursor: body.cursor ?? outcome.previousSequence)
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

    /// A seed 003 checkpoint: the server position and one cursor per collection.
    struct Checkpoint: Encodable {
        var serverSequence: Int64
        var collections: [String: Int64]
    }

    struct CheckpointPull: Encodable {
        var changes: [RecordChange]
        var cursor: Int64
        var hasMore: Bool
        var checkpoint: Checkpoint
    }

    /// `cursors=todos:50,users:25` → per-collection cursors.
    static func parseCursors(_ raw: String) throws -> [String: Int64] {
        var cursors: [String: Int64] = [:]
        for part in raw.split(separator: ",") {
            let pieces = part.split(separator: ":")
            guard pieces.count == 2, RecordRules.isValidCollection(String(pieces[0])), let value = Int64(pieces[1]), value >= 0 else {
                throw CairnError(.validation, "cursors must look like todos:50,users:25", field: "cursors")
            }
            cursors[String(pieces[0])] = value
        }
        guard !cursors.isEmpty, cursors.count <= 64 else { throw CairnError(.validation, "cursors must name 1 to 64 collections", field: "cursors") }
        return cursors
    }

    @Sendable func pull(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.resolve(request, context: context)
        let limit = try request.intParameter("limit", default: 1000, range: 1...5000)
        let clientId = request.uri.queryParameters.get("clientId") ?? request.headers[.clientID]
        if let raw = request.uri.queryParameters.get("cursors") {
            // Seed 003 checkpoints: each collection from its own cursor.
            var checkpoint = Checkpoint(serverSequence: 0, collections: [:])
            var changes: [RecordChange] = []
            var hasMore = false
            for (collection, since) in try Self.parseCursors(raw).sorted(by: { $0.key < $1.key }) {
                let page = try await self.engine.pull(profileId: profile.id, since: since, collections: [collection], limit: limit)
                changes += page.changes
                checkpoint.collections[collection] = page.cursor
                hasMore = hasMore || page.hasMore
            }
            checkpoint.serverSequence = try await self.engine.sequence(profileId: profile.id)
            let cursor = checkpoint.collections.values.min() ?? 0
            try await self.touch(profile: profile, clientId: clientId, cursor: cursor)
            return try JSONResponse.make(CheckpointPull(changes: changes.sorted { $0.version < $1.version }, cursor: cursor, hasMore: hasMore, checkpoint: checkpoint))
        }
        let sinceText = request.uri.queryParameters.get("since") ?? "0"
        guard let since = Int64(sinceText), since >= 0 else { throw CairnError(.validation, "since must be a non-negative integer", field: "since") }
        let collections = request.uri.queryParameters.get("collections").map {
            $0.split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
        }
        if let collections {
            guard collections.count <= 64, collections.allSatisfy(RecordRules.isValidCollection) else {
                throw CairnError(.validation, "collections must be a comma-separated list of collection names", field: "collections")
            }
        }
        let page = try await self.engine.pullJSON(profileId: profile.id, since: since, collections: collections, limit: limit)
        try await self.touch(profile: profile, clientId: clientId, cursor: page.cursor)
        return JSONResponse.make(json: page.json)
    }

    /// Remembers the device's position (for `/api/sync/status`).
    func touch(profile: ProfileRef, clientId: String?, cursor: Int64) async throws {
        guard let clientId, !clientId.isEmpty, clientId.utf8.count <= 128 else { return }
        self.devices.note(profileId: profile.id, clientId: clientId, cursor: cursor, at: self.clock.nowMilliseconds)
    }

    /// `GET /api/sync/status`: the native status and seed 001's shape in one answer.
    struct StatusAnswer: Encodable {
        var success: Bool
        var status: String
        /// Seed 001: the last time anything in this profile changed (ISO 8601), or null.
        var lastSync: String?
        /// Seed 001: queued operations not yet applied.
        var pendingOperations: Int
        /// Open logged conflicts.
        var conflicts: Int
        var profile: String
        var syncVersion: Int64
        var cursor: Int64
        var devices: [DeviceInfo]
    }

    @Sendable func status(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.current(request, context: context)
        let pending = try await self.store.pendingOperations(profileId: profile.id).count
        let conflicts = try await self.engine.conflicts(profileId: profile.id, includeResolved: false, limit: 1000).count
        try await self.devices.flush()
        let devices = try await self.store.devices(profileId: profile.id)
        let lastChange = try await self.engine.lastChangeTime(profileId: profile.id)
        return try JSONResponse.make(
            StatusAnswer(
                success: true, status: pending > 0 ? "syncing" : "ready", lastSync: lastChange.map(Timestamps.iso), pendingOperations: pending,
                conflicts: conflicts, profile: profile.id, syncVersion: profile.seq, cursor: profile.seq, devices: devices
            )
        )
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
