/// A type that builds its own JSON (the same object its `Encodable` conformance writes) directly
/// as a `JSONValue`, so that answers and stored results skip `JSONEncoder`.
public protocol JSONValueRepresentable {
    var jsonValue: JSONValue { get }
}

/// A type that writes its JSON text straight into bytes, with no `JSONValue` tree in between: for
/// the largest answers (a pull page of 5,000 records), where building the tree and then walking it
/// was a fifth of the page's cost. Writes the same object as its `jsonValue`.
public protocol JSONBytesWritable {
    func writeJSON(to bytes: inout [UInt8])
}

extension JSONValue {
    /// `.number` of an integer.
    @inlinable
    public static func integer(_ value: Int64) -> JSONValue { .number(Double(value)) }
}

extension Dictionary where Key == String, Value == JSONValue {
    /// Sets `key` only when `value` is present (`encodeIfPresent`).
    @inlinable
    mutating func setIfPresent(_ key: String, _ value: JSONValue?) {
        if let value { self[key] = value }
    }
}

extension HLC: JSONValueRepresentable {
    public var jsonValue: JSONValue { .string(self.description) }
}

extension OperationError: JSONValueRepresentable {
    public var jsonValue: JSONValue {
        var object: [String: JSONValue] = ["code": .string(self.code), "message": .string(self.message)]
        object.setIfPresent("field", self.field.map(JSONValue.string))
        return .object(object)
    }
}

extension OperationResult: JSONValueRepresentable {
    public var jsonValue: JSONValue {
        var object: [String: JSONValue] = ["opId": .string(self.opId), "status": .string(self.status.rawValue), "collection": .string(self.collection)]
        object.setIfPresent("originalStatus", self.originalStatus.map { .string($0.rawValue) })
        object.setIfPresent("id", self.id.map(JSONValue.string))
        object.setIfPresent("version", self.version.map(JSONValue.integer))
        object.setIfPresent("record", self.record)
        object.setIfPresent("error", self.error?.jsonValue)
        object.setIfPresent("clockClamped", self.clockClamped.map(JSONValue.bool))
        object.setIfPresent("affected", self.affected.map { .array($0.map(JSONValue.string)) })
        object.setIfPresent("deduplicated", self.deduplicated.map(JSONValue.bool))
        return .object(object)
    }
}

extension OperationResult: JSONBytesWritable {
    /// The text of `jsonValue` with its keys sorted (`writeJSON(to:sortedKeys: true)`), written
    /// without building the object first: every pushed op stores its result and answers with it.
    public func writeJSON(to bytes: inout [UInt8]) {
        var object = JSONObjectWriter()
        // In the order of their UTF-8 bytes, as the sorted writer puts them.
        if let affected = self.affected {
            object.key("affected", to: &bytes)
            bytes.append(UInt8(ascii: "["))
            for (index, id) in affected.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                JSONWriter.writeString(id, to: &bytes)
            }
            bytes.append(UInt8(ascii: "]"))
        }
        if let clockClamped = self.clockClamped {
            object.key("clockClamped", to: &bytes)
            JSONWriter.writeBool(clockClamped, to: &bytes)
        }
        object.key("collection", to: &bytes)
        JSONWriter.writeString(self.collection, to: &bytes)
        if let deduplicated = self.deduplicated {
            object.key("deduplicated", to: &bytes)
            JSONWriter.writeBool(deduplicated, to: &bytes)
        }
        if let error = self.error {
            object.key("error", to: &bytes)
            error.jsonValue.writeJSON(to: &bytes, sortedKeys: true)
        }
        if let id = self.id {
            object.key("id", to: &bytes)
            JSONWriter.writeString(id, to: &bytes)
        }
        object.key("opId", to: &bytes)
        JSONWriter.writeString(self.opId, to: &bytes)
        if let originalStatus = self.originalStatus {
            object.key("originalStatus", to: &bytes)
            JSONWriter.writeString(originalStatus.rawValue, to: &bytes)
        }
        if let record = self.record {
            object.key("record", to: &bytes)
            record.writeJSON(to: &bytes, sortedKeys: true)
        }
        object.key("status", to: &bytes)
        JSONWriter.writeString(self.status.rawValue, to: &bytes)
        if let version = self.version {
            object.key("version", to: &bytes)
            JSONWriter.writeNumber(Double(version), to: &bytes)
        }
        object.end(to: &bytes)
    }

    /// The same text as `jsonValue.jsonText` parses to (keys sorted).
    public var jsonText: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(128)
        self.writeJSON(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension RecordChange: JSONValueRepresentable {
    public var jsonValue: JSONValue {
        var object: [String: JSONValue] = [
            "collection": .string(self.collection), "id": .string(self.id), "version": .integer(self.version), "deleted": .bool(self.deleted),
            "createdAt": .integer(self.createdAt), "updatedAt": .integer(self.updatedAt), "data": self.data,
        ]
        object.setIfPresent("deletedAt", self.deletedAt.map(JSONValue.integer))
        return .object(object)
    }
}

extension RecordChange: JSONBytesWritable {
    public func writeJSON(to bytes: inout [UInt8]) {
        Self.writeJSON(
            collection: self.collection, id: self.id, version: self.version, deleted: self.deleted, createdAt: self.createdAt,
            updatedAt: self.updatedAt, deletedAt: self.deletedAt, to: &bytes
        ) { self.data.writeJSON(to: &$0) }
    }

    /// A pull entry's JSON with its `data` written by `data`: for servers that write a record's
    /// data from its stored text rather than from a `JSONValue`.
    public static func writeJSON(
        collection: String, id: String, version: Int64, deleted: Bool, createdAt: Int64, updatedAt: Int64, deletedAt: Int64?,
        to bytes: inout [UInt8], data: (inout [UInt8]) -> Void
    ) {
        bytes.append(contentsOf: #"{"collection":"#.utf8)
        JSONWriter.writeString(collection, to: &bytes)
        bytes.append(contentsOf: #","id":"#.utf8)
        JSONWriter.writeString(id, to: &bytes)
        bytes.append(contentsOf: #","version":"#.utf8)
        JSONWriter.writeInteger(version, to: &bytes)
        bytes.append(contentsOf: deleted ? #","deleted":true"#.utf8 : #","deleted":false"#.utf8)
        bytes.append(contentsOf: #","createdAt":"#.utf8)
        JSONWriter.writeInteger(createdAt, to: &bytes)
        bytes.append(contentsOf: #","updatedAt":"#.utf8)
        JSONWriter.writeInteger(updatedAt, to: &bytes)
        if let deletedAt {
            bytes.append(contentsOf: #","deletedAt":"#.utf8)
            JSONWriter.writeInteger(deletedAt, to: &bytes)
        }
        bytes.append(contentsOf: #","data":"#.utf8)
        data(&bytes)
        bytes.append(UInt8(ascii: "}"))
    }
}

extension PullResponse: JSONBytesWritable {
    public func writeJSON(to bytes: inout [UInt8]) {
        Self.writeJSON(cursor: self.cursor, hasMore: self.hasMore, to: &bytes) { bytes in
            for (index, change) in self.changes.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                change.writeJSON(to: &bytes)
            }
        }
    }

    /// A pull page's JSON with the entries of its `changes` array (comma-separated) written by
    /// `changes`.
    public static func writeJSON(cursor: Int64, hasMore: Bool, to bytes: inout [UInt8], changes: (inout [UInt8]) -> Void) {
        bytes.append(contentsOf: #"{"changes":["#.utf8)
        changes(&bytes)
        bytes.append(contentsOf: #"],"cursor":"#.utf8)
        JSONWriter.writeInteger(cursor, to: &bytes)
        bytes.append(contentsOf: hasMore ? #","hasMore":true}"#.utf8 : #","hasMore":false}"#.utf8)
    }
}

extension PullResponse: JSONValueRepresentable {
    public var jsonValue: JSONValue {
        ["changes": .array(self.changes.map(\.jsonValue)), "cursor": .integer(self.cursor), "hasMore": .bool(self.hasMore)]
    }
}

extension SyncOperation: JSONValueRepresentable {
    public var jsonValue: JSONValue {
        var object: [String: JSONValue] = ["opId": .string(self.opId), "type": .string(self.type.rawValue), "collection": .string(self.collection)]
        object.setIfPresent("id", self.id.map(JSONValue.string))
        object.setIfPresent("data", self.data)
        object.setIfPresent("patch", self.patch)
        object.setIfPresent("expectedVersion", self.expectedVersion.map(JSONValue.integer))
        object.setIfPresent("parentId", self.parentId)
        object.setIfPresent("index", self.index.map { .integer(Int64($0)) })
        object.setIfPresent("afterId", self.afterId.map(JSONValue.string))
        object.setIfPresent("beforeId", self.beforeId.map(JSONValue.string))
        object.setIfPresent("position", self.position.map(JSONValue.string))
        object.setIfPresent("hlc", self.hlc?.jsonValue)
        return .object(object)
    }

    /// The text of `jsonValue` with every object's keys sorted, written without building the
    /// envelope first: what payload hashes are taken over, for every op that keeps its result.
    /// Must stay byte for byte what `jsonValue.writeJSON(to:sortedKeys: true)` writes, or a
    /// stored op's retry would no longer match its hash.
    public func writeCanonicalJSON(to bytes: inout [UInt8]) {
        var object = JSONObjectWriter()
        // In the order of their UTF-8 bytes.
        if let afterId = self.afterId {
            object.key("afterId", to: &bytes)
            JSONWriter.writeString(afterId, to: &bytes)
        }
        if let beforeId = self.beforeId {
            object.key("beforeId", to: &bytes)
            JSONWriter.writeString(beforeId, to: &bytes)
        }
        object.key("collection", to: &bytes)
        JSONWriter.writeString(self.collection, to: &bytes)
        if let data = self.data {
            object.key("data", to: &bytes)
            data.writeJSON(to: &bytes, sortedKeys: true)
        }
        if let expectedVersion = self.expectedVersion {
            object.key("expectedVersion", to: &bytes)
            JSONWriter.writeNumber(Double(expectedVersion), to: &bytes)
        }
        if let hlc = self.hlc {
            object.key("hlc", to: &bytes)
            JSONWriter.writeString(hlc.description, to: &bytes)
        }
        if let id = self.id {
            object.key("id", to: &bytes)
            JSONWriter.writeString(id, to: &bytes)
        }
        if let index = self.index {
            object.key("index", to: &bytes)
            JSONWriter.writeNumber(Double(Int64(index)), to: &bytes)
        }
        object.key("opId", to: &bytes)
        JSONWriter.writeString(self.opId, to: &bytes)
        if let parentId = self.parentId {
            object.key("parentId", to: &bytes)
            parentId.writeJSON(to: &bytes, sortedKeys: true)
        }
        if let patch = self.patch {
            object.key("patch", to: &bytes)
            patch.writeJSON(to: &bytes, sortedKeys: true)
        }
        if let position = self.position {
            object.key("position", to: &bytes)
            JSONWriter.writeString(position, to: &bytes)
        }
        object.key("type", to: &bytes)
        JSONWriter.writeString(self.type.rawValue, to: &bytes)
        object.end(to: &bytes)
    }
}

extension Bookmark: JSONValueRepresentable {}
