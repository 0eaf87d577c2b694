import CairnCore
import Foundation

/// The rules of the bookmark tree: typed fields, the four roots, placement by fractional index,
/// no cycles, no orphans, subtree deletes and revival of deleted ancestors.
struct BookmarkRules {
    static let collection = "bookmarks"
    /// The stored data fields a client may set.
    static let dataFields: Set<String> = ["title", "url", "favicon", "isFolder", "tags", "notes", "dateAdded", "dateModified"]
    static let maximumTags = 100
    static let maximumTagLength = 100
    static let maximumNotesBytes = 64 * 1024
    static let maximumDepth = 10_000

    let applier: BatchApplier
    var tx: any SyncTransaction { self.applier.tx }
    var profileId: String { self.applier.profileId }

    /// Where the client wants the node: a parent and one way of saying where among its children.
    struct Placement {
        /// `.some(nil)` is the top level; `nil` means "not given".
        var parentId: String??
        var index: Int?
        var afterId: String?
        var beforeId: String?
        var position: String?

        var isGiven: Bool { self.parentId != nil || self.index != nil || self.afterId != nil || self.beforeId != nil || self.position != nil }
    }

    // MARK: Entry point

    func apply(_ op: SyncOperation) throws -> OperationResult {
        try self.ensureRoots()
        let (stamp, clamped) = self.applier.stamp(for: op)
        var result: OperationResult
        switch op.type {
        case .create, .upsert:
            result = try self.create(op, stamp: stamp)
        case .update, .move:
            guard let id = op.id else { throw CairnError(.validation, "id is required", field: "id") }
            guard let existing = try self.applier.record(Self.collection, id) else { throw CairnError.notFound("Bookmark") }
            let source = op.type == .move ? [:] : (op.patch?.objectValue ?? op.data?.objectValue ?? [:])
            if op.type == .update, op.patch == nil, op.data == nil, !(try self.placement(of: op, data: [:])).isGiven {
                throw CairnError(.validation, "patch must be a JSON object", field: "patch")
            }
            result = try self.update(op, existing: existing, data: source, stamp: stamp)
        case .delete:
            result = try self.delete(op, stamp: stamp)
        }
        if clamped { result.clockClamped = true }
        return result
    }

    // MARK: Roots

    /// Creates the canonical roots of the profile if they are missing (once per batch, and not at
    /// all once a push saw them committed: ``ProfileRoots``).
    func ensureRoots() throws {
        guard !self.applier.rootsEnsured else { return }
        self.applier.rootsEnsured = true
        let existing = try self.tx.records(self.profileId, Self.collection, ids: Bookmark.rootIds)
        guard existing.count < Bookmark.rootIds.count else { return }
        let positions = FractionalIndex.sequence(count: Bookmark.rootIds.count, between: nil, and: "1")
        let stamp = HLC(wall: 0, node: "server")
        for (offset, id) in Bookmark.rootIds.enumerated() where existing[id] == nil {
            let data: [String: JSONValue] = [
                "title": .string(Bookmark.rootTitles[id] ?? id), "isFolder": true, "url": .null, "tags": [],
                "dateAdded": .number(Double(self.applier.now)), "dateModified": .number(Double(self.applier.now)),
            ]
            // Every field stamped, like any new record: the same stamps whether a later op of
            // this batch sees the record as committed here or as read back from the store.
            var record = StoredRecord(
                profileId: self.profileId, collection: Self.collection, id: id, version: 0, data: data,
                fieldStamps: data.mapValues { _ in stamp }, hlc: stamp, parentId: nil, position: positions[offset], createdAt: self.applier.now,
                updatedAt: self.applier.now, createdSeq: 0
            )
            try self.applier.commit(&record, isNew: true)
        }
    }

    // MARK: Create

    func create(_ op: SyncOperation, stamp: HLC) throws -> OperationResult {
        let data = op.data?.objectValue ?? [:]
        let named = try op.id.flatMap { try self.applier.record(Self.collection, $0) }
        if let existing = named, !existing.deleted {
            // The sync path matches by id: a create of a known id is an update of it.
            return try self.update(op, existing: existing, data: data, stamp: stamp)
        }
        var fields = try self.validatedFields(data, existing: nil)
        let isFolder = fields["isFolder"]??.boolValue ?? false
        fields["isFolder"] = .bool(isFolder)
        let url = fields["url"]??.stringValue
        if isFolder {
            guard url == nil else { throw CairnError(.validation, "A folder has no url", field: "url") }
            fields["url"] = .null
        } else if url == nil {
            throw CairnError(.validation, "url is required for a bookmark", field: "url")
        }
        let placement = try self.placement(of: op, data: data)
        let parentId: String? = placement.parentId ?? "other"

        // The non-sync path: "save this page" twice gives one bookmark.
        if op.id == nil, self.applier.deduplicateCreates, !isFolder, let url {
            let normalized = BookmarkURL.normalized(url)
            if let parentId, let parent = try self.applier.record(Self.collection, parentId), !parent.deleted,
                let twin = try self.tx.children(self.profileId, Self.collection, parentId: parentId, includeDeleted: false)
                    .first(where: { $0.data["url"]?.stringValue.map(BookmarkURL.normalized) == normalized })
            {
                var result = self.applier.result(op, .applied, twin)
                result.deduplicated = true
                result.record = try self.json(twin, deduplicated: true)
                return result
            }
        }

        let id = op.id ?? Identifiers.uuid()
        if Bookmark.isRoot(id) { throw CairnError(.forbidden, "Root folders cannot be recreated", field: "id") }
        // A tombstone of the id the op named (read above), or a record of the id just minted.
        let previous = op.id == nil ? try self.applier.record(Self.collection, id) : named
        if let previous, (previous.data["isFolder"]?.boolValue ?? false) != isFolder {
            throw CairnError(.validation, "isFolder cannot change (this id was a \(isFolder ? "bookmark" : "folder"))", field: "isFolder")
        }
        // Re-creating a deleted id: it may be an ancestor of the parent asked for (a new id cannot be).
        if previous != nil, let parentId, try self.wouldCycle(moving: id, into: parentId) {
            throw CairnError(.cycle, "\(id) cannot be placed inside itself", field: "parentId")
        }
        let revived = try self.prepareParent(parentId, moving: nil)
        let position = try self.position(for: placement, parentId: parentId, moving: nil)
        // Built once at its final size: growing it key by key rehashed it twice per create.
        var stored = [String: JSONValue](minimumCapacity: fields.count + 6)
        for case let (key, value?) in fields { stored[key] = value }
        if fields["dateAdded"] == nil { stored["dateAdded"] = .number(Double(self.applier.now)) }
        if fields["dateModified"] == nil { stored["dateModified"] = .number(Double(self.applier.now)) }
        if fields["title"] == nil { stored["title"] = "" }
        if fields["tags"] == nil { stored["tags"] = [] }
        stored["parentId"] = parentId.map { .string($0) } ?? .null
        stored["position"] = .string(position)
        var record = StoredRecord(
            profileId: self.profileId, collection: Self.collection, id: id, version: 0, data: stored,
            fieldStamps: stored.mapValues { _ in stamp }, hlc: stamp, parentId: parentId, position: position,
            createdAt: previous?.createdAt ?? self.applier.now, updatedAt: self.applier.now, createdSeq: previous?.createdSeq ?? 0
        )
        let encoded = try RecordRules(applier: self.applier).encodedWithinLimit(record.data)
        // The op's last write: after it, only its result is built.
        try self.applier.commit(&record, isNew: previous == nil, last: true, encodedData: encoded)
        var result = self.applier.result(op, .applied, record)
        if !revived.isEmpty { result.affected = revived }
        // Carried to the next op only when nothing else changed a folder: a revived folder can
        // be a child of another one, or be moved into `other`.
        if revived.isEmpty, placement.position == nil, placement.afterId == nil, placement.beforeId == nil, placement.index == nil {
            self.applier.appendedByOp = (parentId, SiblingKey(id: id, position: position))
        }
        return result
    }

    // MARK: Update and move

    func update(_ op: SyncOperation, existing: StoredRecord, data: [String: JSONValue], stamp: HLC) throws -> OperationResult {
        let original = existing
        var existing = existing
        let strategy = self.applier.strategy(for: Self.collection)
        let revivesSelf = existing.deleted
        if existing.deleted {
            guard !self.applier.deleteWins else {
                return try self.applier.conflictResult(op, existing, code: .conflict, message: "The bookmark was deleted", recordJSON: { try self.json($0) })
            }
            existing.deleted = false
            existing.deletedAt = nil
        }
        var fields = try self.validatedFields(data, existing: existing)
        if let folder = fields["isFolder"]??.boolValue, folder != (existing.data["isFolder"]?.boolValue ?? false) {
            throw CairnError(.validation, "isFolder cannot change", field: "isFolder")
        }
        fields.removeValue(forKey: "isFolder")
        let isFolder = existing.data["isFolder"]?.boolValue ?? false
        if isFolder, let url = fields["url"], url != nil, url != .null {
            throw CairnError(.validation, "A folder has no url", field: "url")
        }
        if !isFolder, let url = fields["url"], url == nil || url == .null {
            throw CairnError(.validation, "url is required for a bookmark", field: "url")
        }

        var placement = try self.placement(of: op, data: data)
        if op.type == .move, placement.parentId == nil {
            // A move without a parent reorders within the current parent.
            placement.parentId = .some(existing.parentId)
        }
        var targetParent: String?? = nil
        if placement.isGiven {
            if Bookmark.isRoot(existing.id) { throw CairnError(.forbidden, "Root folders cannot be moved", field: "parentId") }
            let parentId: String? = placement.parentId ?? existing.parentId
            if let parentId, try self.wouldCycle(moving: existing.id, into: parentId) {
                return try self.applier.conflictResult(
                    op, existing, code: .cycle, message: "Moving \(existing.id) into \(parentId) would make it its own ancestor",
                    recordJSON: { try self.json($0) }
                )
            }
            try self.checkParent(parentId)
            targetParent = .some(parentId)
            let position = try self.position(for: placement, parentId: parentId, moving: existing.id)
            fields["parentId"] = .some(parentId.map { .string($0) } ?? .null)
            fields["position"] = .some(.string(position))
        }
        guard !fields.isEmpty else { return self.applier.result(op, .applied, original) }
        if fields["dateModified"] == nil, fields.keys.contains(where: { $0 != "parentId" && $0 != "position" }) {
            fields["dateModified"] = .some(.number(Double(self.applier.now)))
        }

        switch try self.applier.decideWrite(op: op, existing: existing, fields: fields, stamp: stamp, strategy: strategy, recordJSON: { try self.json($0) }) {
        case .refuse(var result):
            if revivesSelf {
                // Nothing was written: report the tombstone the server still holds.
                result.version = original.version
                if result.record != nil { result.record = try self.json(original) }
            }
            return result
        case .merge(var merge, let status):
            var revived: [String] = []
            if revivesSelf, !(merge.appliedFields.contains("parentId")) {
                // A bookmark brought back by an update (deleteWins off) needs a live parent chain too.
                revived = try self.prepareParent(merge.record.parentId, moving: existing.id)
            }
            if merge.appliedFields.contains("parentId") || merge.appliedFields.contains("position") {
                let parentId = merge.record.data["parentId"]?.stringValue
                if case .some(let target) = targetParent, target == parentId {
                    revived += try self.prepareParent(parentId, moving: existing.id)
                }
                merge.record.parentId = parentId
                merge.record.position = merge.record.data["position"]?.stringValue
            }
            let encoded = try RecordRules(applier: self.applier).encodedWithinLimit(merge.record.data)
            let stored = try self.applier.record(Self.collection, existing.id)
            if merge.changed || stored?.deleted == true {
                // The op's last write: after it, only its result is built.
                try self.applier.commit(&merge.record, isNew: false, last: true, encodedData: encoded)
            }
            var result = self.applier.result(op, status, merge.record)
            if status == .merged { result.record = try self.json(merge.record) }
            if !revived.isEmpty { result.affected = revived }
            return result
        }
    }

    // MARK: Delete

    func delete(_ op: SyncOperation, stamp: HLC) throws -> OperationResult {
        guard let id = op.id else { throw CairnError(.validation, "id is required", field: "id") }
        if Bookmark.isRoot(id) { throw CairnError(.forbidden, "Root folders cannot be deleted", field: "id") }
        guard var record = try self.applier.record(Self.collection, id) else { throw CairnError.notFound("Bookmark") }
        if record.deleted { return self.applier.result(op, .applied, record) }
        let strategy = self.applier.strategy(for: Self.collection)
        if let refused = try self.applier.decideDelete(op: op, existing: record, strategy: strategy, recordJSON: { try self.json($0) }) {
            return refused
        }
        // Children first (deepest last in the log is fine: every one is tombstoned in this transaction).
        var affected: [String] = []
        var queue = [record.id]
        var visited: Set<String> = [record.id]
        while let folder = queue.popLast() {
            for var child in try self.tx.children(self.profileId, Self.collection, parentId: folder, includeDeleted: false) {
                guard visited.insert(child.id).inserted else { continue }
                child.deleted = true
                child.deletedAt = self.applier.now
                child.fieldStamps["_deleted"] = stamp
                try self.applier.commit(&child, isNew: false)
                try self.applier.resolveConflicts(Self.collection, child.id)
                affected.append(child.id)
                if child.data["isFolder"]?.boolValue == true { queue.append(child.id) }
            }
        }
        record.deleted = true
        record.deletedAt = self.applier.now
        record.fieldStamps["_deleted"] = stamp
        try self.applier.commit(&record, isNew: false)
        try self.applier.resolveConflicts(Self.collection, record.id)
        var result = self.applier.result(op, .applied, record)
        if !affected.isEmpty { result.affected = affected }
        return result
    }

    // MARK: Tree helpers

    /// The placement the op asks for, from the envelope or the data.
    func placement(of op: SyncOperation, data: [String: JSONValue]) throws -> Placement {
        var placement = Placement()
        let parent = op.parentId ?? data["parentId"]
        if let parent {
            guard parent.isNull || parent.stringValue != nil else {
                throw CairnError(.validation, "parentId must be a string or null", field: "parentId")
            }
            placement.parentId = .some(parent.stringValue)
        }
        placement.index = op.index ?? data["index"]?.intValue.map { Int(clamping: $0) }
        placement.afterId = op.afterId ?? data["afterId"]?.stringValue
        placement.beforeId = op.beforeId ?? data["beforeId"]?.stringValue
        placement.position = op.position ?? data["position"]?.stringValue
        return placement
    }

    /// Throws unless `parentId` is `nil` or an existing folder of this profile.
    func checkParent(_ parentId: String?) throws {
        guard let parentId else { return }
        guard let parent = try self.applier.record(Self.collection, parentId) else {
            throw CairnError(.notFound, "Parent folder not found", field: "parentId")
        }
        guard parent.data["isFolder"]?.boolValue == true else {
            throw CairnError(.validation, "The parent is not a folder", field: "parentId")
        }
    }

    /// Checks the parent and revives it and its deleted ancestors (new data is never swallowed by
    /// a concurrent delete). Returns the revived ids.
    func prepareParent(_ parentId: String?, moving: String?) throws -> [String] {
        try self.checkParent(parentId)
        var revived: [String] = []
        var cursor = parentId
        var depth = 0
        while let id = cursor, depth < Self.maximumDepth, var node = try self.applier.record(Self.collection, id), node.deleted {
            node.deleted = false
            node.deletedAt = nil
            node.fieldStamps.removeValue(forKey: "_deleted")
            if let parent = node.parentId, try self.applier.record(Self.collection, parent) == nil {
                node.parentId = "other"
                node.data["parentId"] = "other"
            }
            try self.applier.commit(&node, isNew: false)
            revived.append(id)
            cursor = node.parentId
            depth += 1
        }
        return revived
    }

    /// Whether putting `id` under `parentId` would make `id` its own ancestor.
    func wouldCycle(moving id: String, into parentId: String) throws -> Bool {
        var cursor: String? = parentId
        var depth = 0
        while let current = cursor, depth < Self.maximumDepth {
            if current == id { return true }
            cursor = try self.applier.record(Self.collection, current)?.parentId
            depth += 1
        }
        return false
    }

    /// The fractional-index key for the requested placement among the live children of `parentId`.
    func position(for placement: Placement, parentId: String?, moving: String?) throws -> String {
        let collection = Self.collection
        if let position = placement.position {
            guard FractionalIndex.isValid(position) else {
                throw CairnError(.validation, "position must be a fractional index key ([0-9A-Za-z], not ending in 0)", field: "position")
            }
            return position
        }
        if let afterId = placement.afterId {
            guard let anchor = try self.applier.record(collection, afterId), !anchor.deleted, anchor.parentId == parentId, let key = anchor.siblingKey else {
                throw CairnError(.validation, "afterId is not a child of the parent", field: "afterId")
            }
            let next = try self.tx.siblingNext(self.profileId, collection, parentId: parentId, excluding: moving, after: key, forward: true)
            return FractionalIndex.between(key.position, next?.position)
        }
        if let beforeId = placement.beforeId {
            guard let anchor = try self.applier.record(collection, beforeId), !anchor.deleted, anchor.parentId == parentId, let key = anchor.siblingKey else {
                throw CairnError(.validation, "beforeId is not a child of the parent", field: "beforeId")
            }
            let previous = try self.tx.siblingNext(self.profileId, collection, parentId: parentId, excluding: moving, after: key, forward: false)
            return FractionalIndex.between(previous?.position, key.position)
        }
        if let index = placement.index {
            guard index >= 0 else { throw CairnError(.validation, "index must not be negative", field: "index") }
            if index == 0 {
                let first = try self.tx.siblingSlice(self.profileId, collection, parentId: parentId, excluding: moving, offset: 0, limit: 1).first
                return FractionalIndex.between(nil, first?.position)
            }
            let pair = try self.tx.siblingSlice(self.profileId, collection, parentId: parentId, excluding: moving, offset: index - 1, limit: 2)
            if let before = pair.first {
                return FractionalIndex.between(before.position, pair.count > 1 ? pair[1].position : nil)
            }
        }
        if moving == nil, let carried = self.applier.appendedLast, carried.parentId == parentId {
            return FractionalIndex.between(carried.key.position, nil)
        }
        let last = try self.tx.lastSibling(self.profileId, collection, parentId: parentId, excluding: moving)
        return FractionalIndex.between(last?.position, nil)
    }

    // MARK: Validation

    /// The client's fields, validated; unknown and server-owned fields are ignored. A `nil`
    /// value removes the field.
    func validatedFields(_ data: [String: JSONValue], existing: StoredRecord?) throws -> [String: JSONValue?] {
        let limits = self.applier.limits
        var fields = [String: JSONValue?](minimumCapacity: data.count + 2)
        // The cases below are `dataFields`; any other member is not a bookmark field and is
        // dropped (the switch's default, without a lookup in the set first).
        for (key, value) in data {
            switch key {
            case "title":
                if value.isNull {
                    fields[key] = .string("")
                    continue
                }
                guard let title = value.stringValue else { throw CairnError(.validation, "title must be a string", field: "title") }
                guard title.count <= limits.maxTitleLength else {
                    throw CairnError(.validation, "title exceeds \(limits.maxTitleLength) characters", field: "title")
                }
                fields[key] = .string(title)
            case "url":
                if value.isNull {
                    fields[key] = .some(.null)
                    continue
                }
                guard let url = value.stringValue else { throw CairnError(.validation, "url must be a string", field: "url") }
                try BookmarkURL.validate(url, maxBytes: limits.maxURLBytes)
                fields[key] = .string(url)
            case "favicon":
                if value.isNull {
                    fields[key] = .some(nil)
                    continue
                }
                guard let favicon = value.stringValue else { throw CairnError(.validation, "favicon must be a string", field: "favicon") }
                guard favicon.utf8.count <= limits.maxFaviconBytes else {
                    throw CairnError(.validation, "favicon exceeds \(limits.maxFaviconBytes) bytes", field: "favicon")
                }
                let lower = favicon.prefix(16).lowercased()
                guard lower.hasPrefix("http://") || lower.hasPrefix("https://") || lower.hasPrefix("data:image/") else {
                    throw CairnError(.validation, "favicon must be an http(s) URL or a data:image/ URI", field: "favicon")
                }
                fields[key] = .string(favicon)
            case "isFolder":
                guard let flag = value.boolValue else { throw CairnError(.validation, "isFolder must be a boolean", field: "isFolder") }
                fields[key] = .bool(flag)
            case "tags":
                if value.isNull {
                    fields[key] = .array([])
                    continue
                }
                guard case .array(let items) = value else { throw CairnError(.validation, "tags must be an array of strings", field: "tags") }
                var seen: Set<String> = []
                var tags: [JSONValue] = []
                for item in items {
                    guard let tag = item.stringValue?.trimmingWhitespace() else {
                        throw CairnError(.validation, "tags must be an array of strings", field: "tags")
                    }
                    guard tag.count <= Self.maximumTagLength else {
                        throw CairnError(.validation, "a tag exceeds \(Self.maximumTagLength) characters", field: "tags")
                    }
                    if !tag.isEmpty, seen.insert(tag).inserted { tags.append(.string(tag)) }
                }
                guard tags.count <= Self.maximumTags else { throw CairnError(.validation, "at most \(Self.maximumTags) tags", field: "tags") }
                fields[key] = .array(tags)
            case "notes":
                if value.isNull {
                    fields[key] = .some(nil)
                    continue
                }
                guard let notes = value.stringValue else { throw CairnError(.validation, "notes must be a string", field: "notes") }
                guard notes.utf8.count <= Self.maximumNotesBytes else {
                    throw CairnError(.validation, "notes exceed \(Self.maximumNotesBytes) bytes", field: "notes")
                }
                fields[key] = .string(notes)
            case "dateAdded", "dateModified":
                guard let milliseconds = value.intValue, milliseconds >= 0 else {
                    throw CairnError(.validation, "\(key) must be milliseconds since 1970", field: key)
                }
                fields[key] = .number(Double(milliseconds))
            default:
                break
            }
        }
        return fields
    }

    // MARK: Views

    static func searchFields(_ record: StoredRecord) -> BookmarkSearchFields {
        let tags = (record.data["tags"].flatMap { value -> [String]? in
            if case .array(let items) = value { return items.compactMap(\.stringValue) }
            return nil
        } ?? []).joined(separator: " ")
        return BookmarkSearchFields(
            title: record.data["title"]?.stringValue ?? "", url: record.data["url"]?.stringValue ?? "", tags: tags,
            notes: record.data["notes"]?.stringValue ?? ""
        )
    }

    /// The API JSON of a bookmark record (with its computed `sortOrder`).
    func json(_ record: StoredRecord, deduplicated: Bool? = nil) throws -> JSONValue {
        let sortOrder = try record.siblingKey.map { try self.tx.siblingIndex(self.profileId, Self.collection, parentId: record.parentId, key: $0) } ?? 0
        return BookmarkView.json(BookmarkView.bookmark(record, sortOrder: sortOrder, deduplicated: deduplicated))
    }
}

extension StoredRecord {
    /// The record's (position, id) among its siblings.
    var siblingKey: SiblingKey? {
        self.position.map { SiblingKey(id: self.id, position: $0) }
    }
}
