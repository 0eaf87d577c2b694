/// A direct JSON reader and writer for `JSONValue`, for text the server and SDK store themselves
/// (record data, field stamps, change rows) and for answers they build. Going through
/// `JSONDecoder` costs a thrown error for every kind a value is not (`JSONValue.init(from:)`
/// tries them in turn), and `JSONEncoder` a container per value; on a pull or a push of
/// thousands of records that was most of the server's time.
///
/// The reader accepts standard JSON (RFC 8259) with a nesting limit; the writer produces what
/// `JSONValue.encode(to:)` produces through `JSONEncoder` (whole numbers below 2^53 as integers,
/// slashes unescaped), with keys sorted by their UTF-8 bytes so that equal values give equal text.
extension JSONValue {
    /// An error of the reader: what was wrong and at which byte.
    public struct ParseError: Error, CustomStringConvertible, Sendable {
        /// What kind of refusal it is: the text breaks JSON's grammar, or it is JSON that the
        /// reader was told to refuse (nested too deep, a NUL character when asked to refuse one).
        public enum Kind: Sendable {
            case malformed
            case tooDeep
            case nul
        }

        public let message: String
        public let offset: Int
        public let kind: Kind

        public init(message: String, offset: Int, kind: Kind = .malformed) {
            self.message = message
            self.offset = offset
            self.kind = kind
        }

        public var description: String { "Invalid JSON at byte \(self.offset): \(self.message)" }
    }

    /// The deepest nesting `parse` accepts unless told otherwise.
    public static let defaultMaxDepth = 512

    /// Parses one JSON document.
    public static func parse(_ text: String, maxDepth: Int = JSONValue.defaultMaxDepth) throws -> JSONValue {
        var text = text
        return try text.withUTF8 { try Self.parse(bytes: $0, maxDepth: maxDepth) }
    }

    /// Parses one JSON document from UTF-8 bytes.
    ///
    /// Containers nested deeper than `maxDepth` are refused (`ParseError.Kind.tooDeep`), and with
    /// `refusingNUL` so is a string holding the escape `\u0000` (`.nul`: a NUL character once
    /// decoded), which requests may not carry (``JSONShape/containsEscapedNUL(_:)``). Each check
    /// stops the read where it is, so a document is refused for the first of its faults.
    public static func parse(
        bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int = JSONValue.defaultMaxDepth, refusingNUL: Bool = false
    ) throws -> JSONValue {
        var reader = JSONReader(bytes: bytes, maxDepth: maxDepth)
        reader.refusesNUL = refusingNUL
        let value = try reader.readDocument()
        return value
    }

    /// Parses one JSON document from UTF-8 bytes.
    public static func parse(bytes: some Sequence<UInt8>, maxDepth: Int = JSONValue.defaultMaxDepth) throws -> JSONValue {
        let array = Array(bytes)
        return try array.withUnsafeBufferPointer { try Self.parse(bytes: $0, maxDepth: maxDepth) }
    }

    /// Parses a JSON object; anything else is an error.
    public static func parseObject(_ text: String) throws -> [String: JSONValue] {
        guard case .object(let object) = try Self.parse(text) else {
            throw ParseError(message: "expected an object", offset: 0)
        }
        return object
    }

    /// The JSON text of this value (object keys in no particular order).
    public var jsonText: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(128)
        self.writeJSON(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The JSON text with object keys sorted by their UTF-8 bytes: equal values give equal text
    /// (what payload hashes are taken over).
    public var canonicalJSONText: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(128)
        self.writeJSON(to: &bytes, sortedKeys: true)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// How many bytes `jsonText` has, counted without writing it.
    public var jsonByteCount: Int {
        switch self {
        case .null: return 4
        case .bool(let value): return value ? 4 : 5
        case .number(let value):
            var bytes: [UInt8] = []
            JSONWriter.writeNumber(value, to: &bytes)
            return bytes.count
        case .string(let value): return JSONWriter.byteCount(of: value)
        case .array(let items): return items.reduce(1 + max(0, items.count - 1) + 1) { $0 + $1.jsonByteCount }
        case .object(let object):
            return object.reduce(1 + max(0, object.count - 1) + 1) { $0 + JSONWriter.byteCount(of: $1.key) + 1 + $1.value.jsonByteCount }
        }
    }

    /// The JSON text of an object.
    public static func jsonText(_ object: [String: JSONValue]) -> String {
        JSONValue.object(object).jsonText
    }

    /// Appends the JSON text of this value to `bytes`, object keys sorted when asked.
    public func writeJSON(to bytes: inout [UInt8], sortedKeys: Bool = false) {
        switch self {
        case .null: bytes.append(contentsOf: JSONWriter.null)
        case .bool(let value): bytes.append(contentsOf: value ? JSONWriter.true : JSONWriter.false)
        case .number(let value): JSONWriter.writeNumber(value, to: &bytes)
        case .string(let value): JSONWriter.writeString(value, to: &bytes)
        case .array(let items):
            bytes.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                item.writeJSON(to: &bytes, sortedKeys: sortedKeys)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let object):
            bytes.append(UInt8(ascii: "{"))
            var first = true
            func member(_ key: String, _ value: JSONValue) {
                if !first { bytes.append(UInt8(ascii: ",")) }
                first = false
                JSONWriter.writeString(key, to: &bytes)
                bytes.append(UInt8(ascii: ":"))
                value.writeJSON(to: &bytes, sortedKeys: sortedKeys)
            }
            if sortedKeys {
                for (key, value) in JSONWriter.sortedMembers(object) { member(key, value) }
            } else {
                for (key, value) in object { member(key, value) }
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }
}

/// Writes one object's members in the order they are given, for hand-written encoders. To match
/// the sorted writer (`writeJSON(to:sortedKeys: true)`), give the keys in the order of their
/// UTF-8 bytes.
public struct JSONObjectWriter {
    private var empty = true

    public init() {}

    /// Opens the object or adds a comma, then writes `"name":`. `name` needs no escaping.
    public mutating func key(_ name: StaticString, to bytes: inout [UInt8]) {
        bytes.append(self.empty ? UInt8(ascii: "{") : UInt8(ascii: ","))
        self.empty = false
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    /// Closes the object (`{}` when it has no member).
    public func end(to bytes: inout [UInt8]) {
        if self.empty { bytes.append(UInt8(ascii: "{")) }
        bytes.append(UInt8(ascii: "}"))
    }
}

/// Pieces of the writer, shared with hand-written encoders of larger documents.
public enum JSONWriter {
    static let null = Array("null".utf8)
    static let `true` = Array("true".utf8)
    static let `false` = Array("false".utf8)

    public static func writeBool(_ value: Bool, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: value ? Self.true : Self.false)
    }

    /// An object's members in a stable order: by their keys' UTF-8 bytes. The members are sorted,
    /// not the keys then looked up: no key is hashed again.
    static func sortedMembers(_ object: [String: JSONValue]) -> [(key: String, value: JSONValue)] {
        object.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
    }

    /// A number the way `JSONValue.encode(to:)` writes it: whole numbers below 9e15 as integers.
    public static func writeNumber(_ value: Double, to bytes: inout [UInt8]) {
        if value.rounded() == value, abs(value) < 9.0e15 {
            bytes.append(contentsOf: String(Int64(value)).utf8)
        } else if value.isFinite {
            bytes.append(contentsOf: value.description.utf8)
        } else {
            bytes.append(contentsOf: Self.null)
        }
    }

    /// An integer.
    public static func writeInteger(_ value: Int64, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: String(value).utf8)
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// The bytes `writeString` writes for `value`, quotes included.
    public static func byteCount(of value: String) -> Int {
        var count = 2
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x0A, 0x0D, 0x09, 0x08, 0x0C: count += 2
            case 0..<0x20: count += 6
            default: count += 1
            }
        }
        return count
    }

    /// A string with the escapes JSON requires (quote, backslash, control characters).
    public static func writeString(_ value: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        if value.utf8.withContiguousStorageIfAvailable({ Self.appendUnescaped($0, to: &bytes) }) != true {
            for byte in value.utf8 { Self.appendEscaped(byte, to: &bytes) }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// ``writeString(_:to:)`` for text already in UTF-8 bytes.
    public static func writeString(bytes value: [UInt8], to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        if value.withUnsafeBufferPointer({ !Self.appendUnescaped($0, to: &bytes) }) {
            for byte in value { Self.appendEscaped(byte, to: &bytes) }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// Appends `utf8` in one copy when none of its bytes needs an escape (ids, URLs, most
    /// titles); false, having appended nothing, otherwise.
    @inline(__always)
    private static func appendUnescaped(_ utf8: UnsafeBufferPointer<UInt8>, to bytes: inout [UInt8]) -> Bool {
        for byte in utf8 where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
            return false
        }
        bytes.append(contentsOf: utf8)
        return true
    }

    @inline(__always)
    private static func appendEscaped(_ byte: UInt8, to bytes: inout [UInt8]) {
        switch byte {
        case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "\\"))
        case 0x0A: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "n"))
        case 0x0D: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "r"))
        case 0x09: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "t"))
        case 0x08: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "b"))
        case 0x0C: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "f"))
        case 0..<0x20:
            bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
            bytes.append(Self.hex[Int(byte >> 4)])
            bytes.append(Self.hex[Int(byte & 0x0F)])
        default: bytes.append(byte)
        }
    }
}

/// A recursive-descent reader over UTF-8 bytes.
struct JSONReader {
    let bytes: UnsafeBufferPointer<UInt8>
    let maxDepth: Int
    /// Whether `\u0000` in a string is refused (`ParseError.Kind.nul`).
    var refusesNUL = false
    var index = 0
    var depth = 0
    /// The members of the objects being read, innermost last: an object is built at its final
    /// size once its members are known (grown member by member, a pushed op's object was
    /// rehashed three or four times).
    private var members: [(String, JSONValue)] = []
    /// The bytes of a string with escapes, reused from one such string to the next (a pushed
    /// bookmark's URL written by `JSONEncoder`, whose slashes are escaped, took an array each).
    private var unescaped: [UInt8] = []

    init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    func error(_ message: String) -> JSONValue.ParseError {
        JSONValue.ParseError(message: message, offset: self.index)
    }

    mutating func readDocument() throws -> JSONValue {
        let value = try self.readValue()
        self.skipWhitespace()
        guard self.index == self.bytes.count else { throw self.error("unexpected text after the value") }
        return value
    }

    mutating func skipWhitespace() {
        while self.index < self.bytes.count {
            switch self.bytes[self.index] {
            case 0x20, 0x0A, 0x0D, 0x09: self.index += 1
            default: return
            }
        }
    }

    mutating func readValue() throws -> JSONValue {
        self.skipWhitespace()
        guard self.index < self.bytes.count else { throw self.error("unexpected end") }
        switch self.bytes[self.index] {
        case UInt8(ascii: "{"): return .object(try self.readObject())
        case UInt8(ascii: "["): return .array(try self.readArray())
        case UInt8(ascii: "\""): return .string(try self.readString())
        case UInt8(ascii: "t"): try self.expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try self.expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try self.expect("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try self.readNumber())
        default: throw self.error("unexpected character")
        }
    }

    mutating func expect(_ word: StaticString) throws {
        let count = word.utf8CodeUnitCount
        guard self.index + count <= self.bytes.count else { throw self.error("unexpected end") }
        let start = word.utf8Start
        for offset in 0..<count where self.bytes[self.index + offset] != start[offset] {
            throw self.error("invalid literal")
        }
        self.index += count
    }

    mutating func enter() throws {
        self.depth += 1
        if self.depth > self.maxDepth {
            throw JSONValue.ParseError(message: "nested deeper than \(self.maxDepth)", offset: self.index, kind: .tooDeep)
        }
    }

    mutating func readObject() throws -> [String: JSONValue] {
        try self.enter()
        self.index += 1
        self.skipWhitespace()
        if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "}") {
            self.index += 1
            self.depth -= 1
            return [:]
        }
        let first = self.members.count
        defer { self.members.removeSubrange(first...) }
        while true {
            self.skipWhitespace()
            guard self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "\"") else { throw self.error("expected a key") }
            let key = try self.readString()
            self.skipWhitespace()
            guard self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: ":") else { throw self.error("expected ':'") }
            self.index += 1
            let value = try self.readValue()
            self.members.append((key, value))
            if try self.closes(UInt8(ascii: "}")) { break }
        }
        self.depth -= 1
        // A repeated key keeps its last value, as assigning member by member did.
        var object = [String: JSONValue](minimumCapacity: self.members.count - first)
        for (key, value) in self.members[first...] { object[key] = value }
        return object
    }

    mutating func readArray() throws -> [JSONValue] {
        try self.enter()
        self.index += 1
        var items: [JSONValue] = []
        self.skipWhitespace()
        if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "]") {
            self.index += 1
            self.depth -= 1
            return items
        }
        while true {
            items.append(try self.readValue())
            if try self.closes(UInt8(ascii: "]")) { break }
        }
        self.depth -= 1
        return items
    }

    /// After a member or element: `true` at `closing` (consumed), `false` at a comma (consumed).
    mutating func closes(_ closing: UInt8) throws -> Bool {
        self.skipWhitespace()
        guard self.index < self.bytes.count else { throw self.error("unexpected end") }
        switch self.bytes[self.index] {
        case closing:
            self.index += 1
            return true
        case UInt8(ascii: ","):
            self.index += 1
            return false
        default:
            throw self.error("expected ',' or '\(Character(Unicode.Scalar(closing)))'")
        }
    }

    mutating func readString() throws -> String {
        self.index += 1
        let start = self.index
        // Fast path: no escapes.
        var ascii = true
        while self.index < self.bytes.count {
            let byte = self.bytes[self.index]
            if byte == UInt8(ascii: "\"") {
                let slice = UnsafeBufferPointer(rebasing: self.bytes[start..<self.index])
                let text = ascii ? String(decoding: slice, as: UTF8.self) : try self.validated(slice)
                self.index += 1
                return text
            }
            if byte >= 0x80 { ascii = false }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw self.error("control character in a string") }
            self.index += 1
        }
        var buffer: [UInt8] = []
        swap(&buffer, &self.unescaped)
        defer { swap(&buffer, &self.unescaped) }
        buffer.removeAll(keepingCapacity: true)
        buffer.append(contentsOf: UnsafeBufferPointer(rebasing: self.bytes[start..<self.index]))
        while self.index < self.bytes.count {
            let byte = self.bytes[self.index]
            self.index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return try buffer.withUnsafeBufferPointer { try self.validated($0) }
            case UInt8(ascii: "\\"):
                guard self.index < self.bytes.count else { throw self.error("unexpected end") }
                let escape = self.bytes[self.index]
                self.index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): buffer.append(escape)
                case UInt8(ascii: "n"): buffer.append(0x0A)
                case UInt8(ascii: "r"): buffer.append(0x0D)
                case UInt8(ascii: "t"): buffer.append(0x09)
                case UInt8(ascii: "b"): buffer.append(0x08)
                case UInt8(ascii: "f"): buffer.append(0x0C)
                case UInt8(ascii: "u"):
                    var scalar = try self.readHex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        // A high surrogate must be followed by an escaped low one.
                        guard self.index + 1 < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "\\"),
                            self.bytes[self.index + 1] == UInt8(ascii: "u")
                        else { throw self.error("unpaired surrogate") }
                        self.index += 2
                        let low = try self.readHex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw self.error("unpaired surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw self.error("unpaired surrogate")
                    }
                    if scalar == 0, self.refusesNUL {
                        throw JSONValue.ParseError(message: "NUL character in a string", offset: self.index, kind: .nul)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw self.error("invalid escape") }
                    buffer.append(contentsOf: String(Character(unicode)).utf8)
                default:
                    throw self.error("invalid escape")
                }
            default:
                if byte < 0x20 { throw self.error("control character in a string") }
                buffer.append(byte)
            }
        }
        throw self.error("unterminated string")
    }

    /// The text of UTF-8 bytes; invalid UTF-8 is an error, never replaced.
    func validated(_ bytes: UnsafeBufferPointer<UInt8>) throws -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw self.error("invalid UTF-8 in a string") }
        return text
    }

    mutating func readHex4() throws -> UInt32 {
        guard self.index + 4 <= self.bytes.count else { throw self.error("unexpected end") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = HexDigit.value(self.bytes[self.index]) else { throw self.error("invalid \\u escape") }
            value = value << 4 | UInt32(digit)
            self.index += 1
        }
        return value
    }

    mutating func readNumber() throws -> Double {
        let start = self.index
        var negative = false
        if self.bytes[self.index] == UInt8(ascii: "-") {
            negative = true
            self.index += 1
        }
        var integer: UInt64 = 0
        var digits = 0
        let integerStart = self.index
        while self.index < self.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self.bytes[self.index]) {
            if digits < 18 { integer = integer * 10 + UInt64(self.bytes[self.index] - UInt8(ascii: "0")) }
            digits += 1
            self.index += 1
        }
        guard digits > 0 else { throw self.error("invalid number") }
        if digits > 1, self.bytes[integerStart] == UInt8(ascii: "0") { throw self.error("leading zero in a number") }
        var simple = digits <= 15
        if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: ".") {
            simple = false
            self.index += 1
            let fractionStart = self.index
            while self.index < self.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self.bytes[self.index]) { self.index += 1 }
            guard self.index > fractionStart else { throw self.error("invalid number") }
        }
        if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "e") || self.bytes[self.index] == UInt8(ascii: "E") {
            simple = false
            self.index += 1
            if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "+") || self.bytes[self.index] == UInt8(ascii: "-") {
                self.index += 1
            }
            let exponentStart = self.index
            while self.index < self.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self.bytes[self.index]) { self.index += 1 }
            guard self.index > exponentStart else { throw self.error("invalid number") }
        }
        if simple {
            let value = Double(integer)
            return negative ? -value : value
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: self.bytes[start..<self.index]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else { throw self.error("number out of range") }
        return value
    }
}
