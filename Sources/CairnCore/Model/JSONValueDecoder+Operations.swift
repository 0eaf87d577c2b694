/// Ops and clock stamps decoded straight from a parsed value, for `JSONValueDecoder`.
///
/// A push is mostly ops, and the synthesized `Decodable` of `SyncOperation` looks each of its
/// thirteen fields up through a keyed container, builds a coding path for each one present, and
/// decodes its clock stamp by trying an integer first, which throws (an error built and dropped)
/// for every stamp sent as text. These do the same work directly: the same fields, decoded in the
/// same order, with the same errors at the same coding paths, so a refused op reads exactly as
/// before. `JSONTextTests.operationsDecodeAsTheirSynthesizedDecodable` holds the two side by side.
extension SyncOperation {
    init(decoding value: JSONValue, codingPath: [any CodingKey]) throws {
        guard case .object(let object) = value else {
            throw JSONValueDecoding.mismatch([String: JSONValue].self, value, codingPath)
        }
        // The op's members in one walk (an op has about six): looking each of the thirteen
        // fields up hashed its name, and a push's ops were a fifth of its decoding.
        var members = OperationMembers()
        for (key, value) in object { members.take(key, value) }
        let fields = JSONFields(codingPath: codingPath)
        self.init(
            opId: try fields.string("opId", members.opId),
            type: try fields.kind("type", members.type),
            collection: try fields.string("collection", members.collection),
            id: try fields.optionalString("id", members.id),
            data: fields.present(members.data),
            patch: fields.present(members.patch),
            expectedVersion: try fields.optionalInteger("expectedVersion", members.expectedVersion, Int64.self),
            parentId: fields.present(members.parentId),
            index: try fields.optionalInteger("index", members.index, Int.self),
            afterId: try fields.optionalString("afterId", members.afterId),
            beforeId: try fields.optionalString("beforeId", members.beforeId),
            position: try fields.optionalString("position", members.position),
            hlc: try fields.optionalStamp("hlc", members.hlc)
        )
    }
}

/// The members of an op object that name its fields; any other member is ignored, as by the
/// synthesized `Decodable`.
private struct OperationMembers {
    var opId: JSONValue?
    var type: JSONValue?
    var collection: JSONValue?
    var id: JSONValue?
    var data: JSONValue?
    var patch: JSONValue?
    var expectedVersion: JSONValue?
    var parentId: JSONValue?
    var index: JSONValue?
    var afterId: JSONValue?
    var beforeId: JSONValue?
    var position: JSONValue?
    var hlc: JSONValue?

    mutating func take(_ key: String, _ value: JSONValue) {
        switch key {
        case "opId": self.opId = value
        case "type": self.type = value
        case "collection": self.collection = value
        case "id": self.id = value
        case "data": self.data = value
        case "patch": self.patch = value
        case "expectedVersion": self.expectedVersion = value
        case "parentId": self.parentId = value
        case "index": self.index = value
        case "afterId": self.afterId = value
        case "beforeId": self.beforeId = value
        case "position": self.position = value
        case "hlc": self.hlc = value
        default: break
        }
    }
}

extension HLC {
    /// As `init(from:)`: whole milliseconds, or the stamp's text.
    init(decoding value: JSONValue, codingPath: [any CodingKey]) throws {
        if case .number(let number) = value, let milliseconds = Int64(exactly: number) {
            guard (0...HLC.maximumWall).contains(milliseconds) else {
                throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "HLC wall time out of range"))
            }
            self.init(wall: milliseconds, node: "")
            return
        }
        guard case .string(let text) = value else { throw JSONValueDecoding.mismatch(String.self, value, codingPath) }
        guard let stamp = HLC(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "Invalid HLC stamp"))
        }
        self = stamp
    }
}

/// A field's name in a coding path.
struct JSONFieldKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }

    init(_ name: String) { self.stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// An object's members, read as a synthesized `init(from:)` reads them: a required field must
/// be there and not null; an optional one that is missing or null is nil. Each takes the member's
/// value (`nil`: missing) and its name, for the coding path of an error.
private struct JSONFields {
    let codingPath: [any CodingKey]

    func path(_ name: String) -> [any CodingKey] { self.codingPath + [JSONFieldKey(name)] }

    func required(_ name: String, _ value: JSONValue?) throws -> JSONValue {
        guard let value else {
            throw DecodingError.keyNotFound(
                JSONFieldKey(name), .init(codingPath: self.codingPath, debugDescription: "No value for key \(name)")
            )
        }
        return value
    }

    func present(_ value: JSONValue?) -> JSONValue? {
        guard let value, !value.isNull else { return nil }
        return value
    }

    func string(_ name: String, _ member: JSONValue?) throws -> String {
        let value = try self.required(name, member)
        guard case .string(let text) = value else { throw JSONValueDecoding.mismatch(String.self, value, self.path(name)) }
        return text
    }

    func optionalString(_ name: String, _ member: JSONValue?) throws -> String? {
        guard let value = self.present(member) else { return nil }
        guard case .string(let text) = value else { throw JSONValueDecoding.mismatch(String.self, value, self.path(name)) }
        return text
    }

    func optionalInteger<I: FixedWidthInteger>(_ name: String, _ member: JSONValue?, _ type: I.Type) throws -> I? {
        guard let value = self.present(member) else { return nil }
        return try JSONValueDecoding.integer(I.self, value, self.path(name))
    }

    func optionalStamp(_ name: String, _ member: JSONValue?) throws -> HLC? {
        guard let value = self.present(member) else { return nil }
        return try HLC(decoding: value, codingPath: self.path(name))
    }

    /// As a `String`-backed enum decodes itself.
    func kind(_ name: String, _ member: JSONValue?) throws -> SyncOperation.Kind {
        let value = try self.required(name, member)
        guard case .string(let text) = value else { throw JSONValueDecoding.mismatch(String.self, value, self.path(name)) }
        guard let kind = SyncOperation.Kind(rawValue: text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: self.path(name), debugDescription: "Cannot initialize Kind from invalid String value \(text)")
            )
        }
        return kind
    }
}
