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
        let fields = JSONFields(object: object, codingPath: codingPath)
        self.init(
            opId: try fields.string("opId"),
            type: try fields.kind("type"),
            collection: try fields.string("collection"),
            id: try fields.optionalString("id"),
            data: fields.present("data"),
            patch: fields.present("patch"),
            expectedVersion: try fields.optionalInteger("expectedVersion", Int64.self),
            parentId: fields.present("parentId"),
            index: try fields.optionalInteger("index", Int.self),
            afterId: try fields.optionalString("afterId"),
            beforeId: try fields.optionalString("beforeId"),
            position: try fields.optionalString("position"),
            hlc: try fields.optionalStamp("hlc")
        )
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

/// The members of one object, read as a synthesized `init(from:)` reads them: a required field
/// must be there and not null; an optional one that is missing or null is nil.
private struct JSONFields {
    let object: [String: JSONValue]
    let codingPath: [any CodingKey]

    func path(_ name: String) -> [any CodingKey] { self.codingPath + [JSONFieldKey(name)] }

    func required(_ name: String) throws -> JSONValue {
        guard let value = self.object[name] else {
            throw DecodingError.keyNotFound(
                JSONFieldKey(name), .init(codingPath: self.codingPath, debugDescription: "No value for key \(name)")
            )
        }
        return value
    }

    func present(_ name: String) -> JSONValue? {
        guard let value = self.object[name], !value.isNull else { return nil }
        return value
    }

    func string(_ name: String) throws -> String {
        let value = try self.required(name)
        guard case .string(let text) = value else { throw JSONValueDecoding.mismatch(String.self, value, self.path(name)) }
        return text
    }

    func optionalString(_ name: String) throws -> String? {
        guard let value = self.present(name) else { return nil }
        guard case .string(let text) = value else { throw JSONValueDecoding.mismatch(String.self, value, self.path(name)) }
        return text
    }

    func optionalInteger<I: FixedWidthInteger>(_ name: String, _ type: I.Type) throws -> I? {
        guard let value = self.present(name) else { return nil }
        return try JSONValueDecoding.integer(I.self, value, self.path(name))
    }

    func optionalStamp(_ name: String) throws -> HLC? {
        guard let value = self.present(name) else { return nil }
        return try HLC(decoding: value, codingPath: self.path(name))
    }

    /// As a `String`-backed enum decodes itself.
    func kind(_ name: String) throws -> SyncOperation.Kind {
        let value = try self.required(name)
        guard case .string(let text) = value else { throw JSONValueDecoding.mismatch(String.self, value, self.path(name)) }
        guard let kind = SyncOperation.Kind(rawValue: text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: self.path(name), debugDescription: "Cannot initialize Kind from invalid String value \(text)")
            )
        }
        return kind
    }
}
