/// A message a client sends on `/api/sync/ws` (seed 000 names).
///
/// ```json
/// {"type": "auth", "token": "eyJ…", "clientId": "laptop-firefox", "profile": "default"}
/// {"type": "sync_request", "lastSyncVersion": 42}
/// {"type": "bookmark_update", "id": "b1", "data": {"title": "New"}, "expectedVersion": 42, "opId": "laptop-17"}
/// ```
public enum ClientMessage: Sendable, Equatable {
    case auth(token: String, clientId: String?, profile: String?)
    case syncRequest(lastSyncVersion: Int64, collections: [String]?)
    case bookmarkCreate(id: String?, data: JSONValue, opId: String?, hlc: HLC?)
    case bookmarkUpdate(id: String, data: JSONValue, expectedVersion: Int64?, opId: String?, hlc: HLC?)
    case bookmarkDelete(id: String, expectedVersion: Int64?, opId: String?)
    case bookmarkMove(id: String, newParentId: JSONValue?, newIndex: Int?, expectedVersion: Int64?, opId: String?, hlc: HLC?, afterId: String?, beforeId: String?)
    case push(operations: [SyncOperation], atomic: Bool, strategy: ConflictStrategy?)
    case ping

    /// The message's `type` on the wire.
    public var type: String {
        switch self {
        case .auth: "auth"
        case .syncRequest: "sync_request"
        case .bookmarkCreate: "bookmark_create"
        case .bookmarkUpdate: "bookmark_update"
        case .bookmarkDelete: "bookmark_delete"
        case .bookmarkMove: "bookmark_move"
        case .push: "push"
        case .ping: "ping"
        }
    }

    /// Every client message type.
    public static let types: Set<String> = [
        "auth", "sync_request", "bookmark_create", "bookmark_update", "bookmark_delete", "bookmark_move", "push", "ping",
    ]
}

extension ClientMessage: Codable {
    enum Keys: String, CodingKey {
        case type, token, clientId, profile, lastSyncVersion, collections, id, data, opId, hlc, expectedVersion, newParentId, parentId, newIndex
        case index, afterId, beforeId, operations, atomic, strategy
    }

    /// Why a message could not be understood.
    public struct Malformed: Error, Sendable {
        public var code: String
        public var message: String
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        let type = try container.decode(String.self, forKey: .type)
        switch type {
        case "auth":
            self = .auth(
                token: try container.decode(String.self, forKey: .token), clientId: try container.decodeIfPresent(String.self, forKey: .clientId),
                profile: try container.decodeIfPresent(String.self, forKey: .profile)
            )
        case "sync_request":
            self = .syncRequest(
                lastSyncVersion: try container.decodeIfPresent(Int64.self, forKey: .lastSyncVersion) ?? 0,
                collections: try container.decodeIfPresent([String].self, forKey: .collections)
            )
        case "bookmark_create":
            let data = try container.decodeIfPresent(JSONValue.self, forKey: .data) ?? .object([:])
            self = .bookmarkCreate(
                id: try container.decodeIfPresent(String.self, forKey: .id) ?? data["id"]?.stringValue, data: data,
                opId: try container.decodeIfPresent(String.self, forKey: .opId), hlc: try container.decodeIfPresent(HLC.self, forKey: .hlc)
            )
        case "bookmark_update":
            self = .bookmarkUpdate(
                id: try container.decode(String.self, forKey: .id), data: try container.decodeIfPresent(JSONValue.self, forKey: .data) ?? .object([:]),
                expectedVersion: try container.decodeIfPresent(Int64.self, forKey: .expectedVersion),
                opId: try container.decodeIfPresent(String.self, forKey: .opId), hlc: try container.decodeIfPresent(HLC.self, forKey: .hlc)
            )
        case "bookmark_delete":
            self = .bookmarkDelete(
                id: try container.decode(String.self, forKey: .id), expectedVersion: try container.decodeIfPresent(Int64.self, forKey: .expectedVersion),
                opId: try container.decodeIfPresent(String.self, forKey: .opId)
            )
        case "bookmark_move":
            let parent: JSONValue? =
                container.contains(.newParentId)
                ? try container.decode(JSONValue.self, forKey: .newParentId)
                : (container.contains(.parentId) ? try container.decode(JSONValue.self, forKey: .parentId) : nil)
            self = .bookmarkMove(
                id: try container.decode(String.self, forKey: .id), newParentId: parent,
                newIndex: try container.decodeIfPresent(Int.self, forKey: .newIndex) ?? container.decodeIfPresent(Int.self, forKey: .index),
                expectedVersion: try container.decodeIfPresent(Int64.self, forKey: .expectedVersion),
                opId: try container.decodeIfPresent(String.self, forKey: .opId), hlc: try container.decodeIfPresent(HLC.self, forKey: .hlc),
                afterId: try container.decodeIfPresent(String.self, forKey: .afterId), beforeId: try container.decodeIfPresent(String.self, forKey: .beforeId)
            )
        case "push":
            self = .push(
                operations: try container.decode([SyncOperation].self, forKey: .operations),
                atomic: try container.decodeIfPresent(Bool.self, forKey: .atomic) ?? false,
                strategy: try container.decodeIfPresent(ConflictStrategy.self, forKey: .strategy)
            )
        case "ping":
            self = .ping
        default:
            throw Malformed(code: "UNKNOWN_MESSAGE_TYPE", message: "Unknown message type '\(type.prefix(64))'")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(self.type, forKey: .type)
        switch self {
        case .auth(let token, let clientId, let profile):
            try container.encode(token, forKey: .token)
            try container.encodeIfPresent(clientId, forKey: .clientId)
            try container.encodeIfPresent(profile, forKey: .profile)
        case .syncRequest(let lastSyncVersion, let collections):
            try container.encode(lastSyncVersion, forKey: .lastSyncVersion)
            try container.encodeIfPresent(collections, forKey: .collections)
        case .bookmarkCreate(let id, let data, let opId, let hlc):
            try container.encodeIfPresent(id, forKey: .id)
            try container.encode(data, forKey: .data)
            try container.encodeIfPresent(opId, forKey: .opId)
            try container.encodeIfPresent(hlc, forKey: .hlc)
        case .bookmarkUpdate(let id, let data, let expectedVersion, let opId, let hlc):
            try container.encode(id, forKey: .id)
            try container.encode(data, forKey: .data)
            try container.encodeIfPresent(expectedVersion, forKey: .expectedVersion)
            try container.encodeIfPresent(opId, forKey: .opId)
            try container.encodeIfPresent(hlc, forKey: .hlc)
        case .bookmarkDelete(let id, let expectedVersion, let opId):
            try container.encode(id, forKey: .id)
            try container.encodeIfPresent(expectedVersion, forKey: .expectedVersion)
            try container.encodeIfPresent(opId, forKey: .opId)
        case .bookmarkMove(let id, let newParentId, let newIndex, let expectedVersion, let opId, let hlc, let afterId, let beforeId):
            try container.encode(id, forKey: .id)
            try container.encodeIfPresent(newParentId, forKey: .newParentId)
            try container.encodeIfPresent(newIndex, forKey: .newIndex)
            try container.encodeIfPresent(expectedVersion, forKey: .expectedVersion)
            try container.encodeIfPresent(opId, forKey: .opId)
            try container.encodeIfPresent(hlc, forKey: .hlc)
            try container.encodeIfPresent(afterId, forKey: .afterId)
            try container.encodeIfPresent(beforeId, forKey: .beforeId)
        case .push(let operations, let atomic, let strategy):
            try container.encode(operations, forKey: .operations)
            try container.encode(atomic, forKey: .atomic)
            try container.encodeIfPresent(strategy, forKey: .strategy)
        case .ping:
            break
        }
    }
}

/// One change as the WebSocket delivers it (seed 000 `SyncEvent`, plus `collection`).
public struct SyncEventMessage: Codable, Sendable, Equatable {
    /// The change's sequence number, as a string (seed 000 `id`).
    public var id: String
    /// `create`, `update` or `delete`.
    public var type: String
    public var collection: String
    /// The record id (seed 000 name, also for non-bookmark collections).
    public var bookmarkId: String
    /// The record after the change (a seed 000 `Bookmark` for bookmarks).
    public var data: JSONValue
    /// When the change was committed (ms).
    public var timestamp: Int64
    /// The device that made the change (`server` for server-made changes).
    public var clientId: String
    /// The record's version after the change.
    public var syncVersion: Int64

    public init(id: String, type: String, collection: String, bookmarkId: String, data: JSONValue, timestamp: Int64, clientId: String, syncVersion: Int64) {
        self.id = id
        self.type = type
        self.collection = collection
        self.bookmarkId = bookmarkId
        self.data = data
        self.timestamp = timestamp
        self.clientId = clientId
        self.syncVersion = syncVersion
    }

    /// The same fields as its `Codable` form, built directly.
    public var jsonValue: JSONValue {
        [
            "id": .string(self.id), "type": .string(self.type), "collection": .string(self.collection), "bookmarkId": .string(self.bookmarkId),
            "data": self.data, "timestamp": .number(Double(self.timestamp)), "clientId": .string(self.clientId),
            "syncVersion": .number(Double(self.syncVersion)),
        ]
    }
}
