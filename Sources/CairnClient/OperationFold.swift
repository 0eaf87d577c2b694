import CairnCore

/// A record's state in the replica: its fields and whether it is deleted. `nil` fields mean the
/// record does not exist (yet).
struct RecordState: Sendable, Equatable {
    var data: [String: JSONValue]?
    var deleted: Bool

    static let absent = RecordState(data: nil, deleted: false)

    var isLive: Bool { self.data != nil && !self.deleted }
}

/// Applies operations to record states the way the server does (docs/sync.md), so that the local
/// view is "the last known server state with this device's pending operations on top". Used for
/// every local write and again, over the new server state, after every pull (the rebase).
enum OperationFold {
    static let bookmarks = "bookmarks"

    static func apply(_ op: SyncOperation, to state: RecordState) -> RecordState {
        let isBookmark = op.collection == bookmarks
        var next = state
        switch op.type {
        case .create, .upsert:
            let incoming = op.data?.objectValue ?? [:]
            var data: [String: JSONValue]
            if isBookmark {
                data = state.data ?? [:]
                for (key, value) in incoming { data[key] = value }
                if let id = op.id { data["id"] = .string(id) }
                if data["parentId"] == nil && op.parentId == nil { data["parentId"] = "other" }
                if data["isFolder"] == nil { data["isFolder"] = .bool(data["url"] == nil || data["url"]?.isNull == true) }
                if data["tags"] == nil { data["tags"] = .array([]) }
                data["isDeleted"] = .bool(false)
                data["deletedAt"] = .null
            } else if op.type == .create && state.isLive {
                data = state.data ?? [:]
                for (key, value) in incoming { data[key] = value }
            } else {
                data = incoming
            }
            next = RecordState(data: data, deleted: false)
            if isBookmark { self.place(op, into: &next) }
        case .update:
            guard state.isLive, var data = state.data else { return state }
            for (key, value) in (op.patch ?? op.data)?.objectValue ?? [:] {
                if value.isNull && !isBookmark { data.removeValue(forKey: key) } else { data[key] = value }
            }
            next.data = data
            if isBookmark { self.place(op, into: &next) }
        case .move:
            guard state.isLive else { return state }
            self.place(op, into: &next)
        case .delete:
            guard state.data != nil else { return state }
            next.deleted = true
            if isBookmark {
                next.data?["isDeleted"] = .bool(true)
            }
        }
        return next
    }

    /// Sets a bookmark's `parentId` and `position` from an op that carries them (the client always
    /// sends an explicit `position`).
    private static func place(_ op: SyncOperation, into state: inout RecordState) {
        if let parent = op.parentId { state.data?["parentId"] = parent }
        if let position = op.position { state.data?["position"] = .string(position) }
    }

    /// The state a server record answer describes: for bookmarks the bookmark object, for other
    /// collections `{collection, id, version, deleted, data, …}`.
    static func serverState(collection: String, record: JSONValue) -> (RecordState, Int64?) {
        let object = record.objectValue ?? [:]
        if collection == bookmarks {
            return (RecordState(data: object, deleted: object["isDeleted"]?.boolValue ?? false), object["syncVersion"]?.intValue)
        }
        return (
            RecordState(data: object["data"]?.objectValue ?? [:], deleted: object["deleted"]?.boolValue ?? false),
            object["version"]?.intValue
        )
    }
}
