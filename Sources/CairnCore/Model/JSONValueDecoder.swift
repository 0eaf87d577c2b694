/// Decodes `Decodable` types from a parsed `JSONValue` with `JSONDecoder`'s rules (strict
/// types, whole numbers for integers, `keyNotFound`/`typeMismatch`/`valueNotFound` with the coding
/// path), so a request body is parsed once by the direct reader and `JSONValue` fields inside it
/// (record data, patches) are taken as they are instead of being rebuilt through a `try` per kind.
public struct JSONValueDecoder: Sendable {
    public init() {}

    public func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
        try JSONValueDecoding.decode(T.self, value, [])
    }
}

/// A coding key for a position in an array (named like `JSONDecoder`'s: `Index 3`).
struct JSONIndexKey: CodingKey {
    let index: Int
    var intValue: Int? { self.index }
    // Written when asked for (an error's path), not for every element decoded.
    var stringValue: String { "Index \(self.index)" }

    init(index: Int) {
        self.index = index
    }

    init?(intValue: Int) { self.init(index: intValue) }
    init?(stringValue: String) { nil }
}

struct JSONValueDecoding: Decoder {
    let value: JSONValue
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let object) = self.value else {
            throw Self.mismatch([String: JSONValue].self, self.value, self.codingPath)
        }
        return KeyedDecodingContainer(JSONKeyedContainer<Key>(object: object, codingPath: self.codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = self.value else { throw Self.mismatch([JSONValue].self, self.value, self.codingPath) }
        return JSONUnkeyedContainer(items: items, codingPath: self.codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        JSONSingleContainer(value: self.value, codingPath: self.codingPath)
    }

    static func mismatch(_ type: Any.Type, _ value: JSONValue, _ path: [any CodingKey]) -> DecodingError {
        if value.isNull {
            return DecodingError.valueNotFound(type, .init(codingPath: path, debugDescription: "Expected \(type) but found null"))
        }
        return DecodingError.typeMismatch(type, .init(codingPath: path, debugDescription: "Expected \(type)"))
    }

    /// A value as `T`: the primitive kinds directly, anything else through its `init(from:)`.
    static func decode<T: Decodable>(_ type: T.Type, _ value: JSONValue, _ path: [any CodingKey]) throws -> T {
        if T.self == JSONValue.self { return value as! T }
        if T.self == String.self {
            guard case .string(let text) = value else { throw Self.mismatch(T.self, value, path) }
            return text as! T
        }
        if T.self == Bool.self {
            guard case .bool(let flag) = value else { throw Self.mismatch(T.self, value, path) }
            return flag as! T
        }
        if T.self == Double.self {
            guard case .number(let number) = value else { throw Self.mismatch(T.self, value, path) }
            return number as! T
        }
        if T.self == Int.self { return try Self.integer(Int.self, value, path) as! T }
        if T.self == Int64.self { return try Self.integer(Int64.self, value, path) as! T }
        // The types a push is made of, without their keyed containers (same fields, same errors).
        if T.self == SyncOperation.self { return try SyncOperation(decoding: value, codingPath: path) as! T }
        if T.self == HLC.self { return try HLC(decoding: value, codingPath: path) as! T }
        return try T(from: JSONValueDecoding(value: value, codingPath: path))
    }

    static func integer<I: FixedWidthInteger>(_ type: I.Type, _ value: JSONValue, _ path: [any CodingKey]) throws -> I {
        guard case .number(let number) = value else { throw Self.mismatch(I.self, value, path) }
        guard let integer = I(exactly: number) else {
            throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "\(number) does not fit in \(I.self)"))
        }
        return integer
    }

    static func float<F: BinaryFloatingPoint>(_ type: F.Type, _ value: JSONValue, _ path: [any CodingKey]) throws -> F {
        guard case .number(let number) = value else { throw Self.mismatch(F.self, value, path) }
        return F(number)
    }
}

struct JSONKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let object: [String: JSONValue]
    let codingPath: [any CodingKey]

    var allKeys: [Key] { self.object.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { self.object[key.stringValue] != nil }

    func value(_ key: Key) throws -> JSONValue {
        guard let value = self.object[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: self.codingPath, debugDescription: "No value for key \(key.stringValue)"))
        }
        return value
    }

    func decodeNil(forKey key: Key) throws -> Bool { try self.value(key).isNull }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try JSONValueDecoding.decode(T.self, try self.value(key), self.codingPath + [key])
    }

    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try JSONValueDecoding.float(Float.self, try self.value(key), self.codingPath + [key]) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try JSONValueDecoding.integer(Int8.self, try self.value(key), self.codingPath + [key]) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try JSONValueDecoding.integer(Int16.self, try self.value(key), self.codingPath + [key]) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try JSONValueDecoding.integer(Int32.self, try self.value(key), self.codingPath + [key]) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try JSONValueDecoding.integer(UInt.self, try self.value(key), self.codingPath + [key]) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try JSONValueDecoding.integer(UInt8.self, try self.value(key), self.codingPath + [key]) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try JSONValueDecoding.integer(UInt16.self, try self.value(key), self.codingPath + [key]) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try JSONValueDecoding.integer(UInt32.self, try self.value(key), self.codingPath + [key]) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try JSONValueDecoding.integer(UInt64.self, try self.value(key), self.codingPath + [key]) }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try JSONValueDecoding(value: try self.value(key), codingPath: self.codingPath + [key]).container(keyedBy: NestedKey.self)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try JSONValueDecoding(value: try self.value(key), codingPath: self.codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        JSONValueDecoding(value: .object(self.object), codingPath: self.codingPath)
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        JSONValueDecoding(value: self.object[key.stringValue] ?? .null, codingPath: self.codingPath + [key])
    }
}

struct JSONUnkeyedContainer: UnkeyedDecodingContainer {
    let items: [JSONValue]
    let codingPath: [any CodingKey]
    var currentIndex = 0

    init(items: [JSONValue], codingPath: [any CodingKey]) {
        self.items = items
        self.codingPath = codingPath
    }

    var count: Int? { self.items.count }
    var isAtEnd: Bool { self.currentIndex >= self.items.count }

    mutating func next(_ type: Any.Type) throws -> (JSONValue, [any CodingKey]) {
        let path = self.codingPath + [JSONIndexKey(index: self.currentIndex)]
        guard !self.isAtEnd else {
            throw DecodingError.valueNotFound(type, .init(codingPath: path, debugDescription: "Unkeyed container is at end"))
        }
        defer { self.currentIndex += 1 }
        return (self.items[self.currentIndex], path)
    }

    mutating func decodeNil() throws -> Bool {
        guard !self.isAtEnd, self.items[self.currentIndex].isNull else { return false }
        self.currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (value, path) = try self.next(T.self)
        return try JSONValueDecoding.decode(T.self, value, path)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let (value, path) = try self.next([String: JSONValue].self)
        return try JSONValueDecoding(value: value, codingPath: path).container(keyedBy: NestedKey.self)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let (value, path) = try self.next([JSONValue].self)
        return try JSONValueDecoding(value: value, codingPath: path).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder {
        let (value, path) = try self.next(JSONValue.self)
        return JSONValueDecoding(value: value, codingPath: path)
    }
}

struct JSONSingleContainer: SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool { self.value.isNull }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONValueDecoding.decode(T.self, self.value, self.codingPath)
    }

    func decode(_ type: Float.Type) throws -> Float { try JSONValueDecoding.float(Float.self, self.value, self.codingPath) }
    func decode(_ type: Int8.Type) throws -> Int8 { try JSONValueDecoding.integer(Int8.self, self.value, self.codingPath) }
    func decode(_ type: Int16.Type) throws -> Int16 { try JSONValueDecoding.integer(Int16.self, self.value, self.codingPath) }
    func decode(_ type: Int32.Type) throws -> Int32 { try JSONValueDecoding.integer(Int32.self, self.value, self.codingPath) }
    func decode(_ type: UInt.Type) throws -> UInt { try JSONValueDecoding.integer(UInt.self, self.value, self.codingPath) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try JSONValueDecoding.integer(UInt8.self, self.value, self.codingPath) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try JSONValueDecoding.integer(UInt16.self, self.value, self.codingPath) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try JSONValueDecoding.integer(UInt32.self, self.value, self.codingPath) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try JSONValueDecoding.integer(UInt64.self, self.value, self.codingPath) }
}
