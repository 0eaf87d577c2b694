/// The top-level members of a JSON object's text, found without building their values: each
/// member's key (the bytes between its quotes, escapes left as they are) and its value's bytes,
/// as ranges into the text.
///
/// For copying values that are already JSON text (a record's stored data) into an answer as
/// they are, instead of parsing them into `JSONValue`s and writing them back out. The scan checks
/// the whole text against JSON's grammar as `JSONValue.parse` does (escapes, surrogate pairs,
/// literals, numbers, nesting up to the same depth), so a text it accepts can be copied into an
/// answer without making the answer invalid.
public enum JSONMembers {
    /// The deepest nesting accepted: `JSONValue.parse`'s.
    static let maxDepth = JSONValue.defaultMaxDepth

    /// Calls `body(key, value)` for each member of the object `bytes` holds, in order. Returns
    /// false, having stopped, when the text is not one valid JSON object (nothing it reported may
    /// be trusted then).
    @discardableResult
    public static func scan(_ bytes: UnsafeBufferPointer<UInt8>, _ body: (_ key: Range<Int>, _ value: Range<Int>) -> Void) -> Bool {
        let start = Self.skipSpace(bytes, 0)
        guard start < bytes.count, bytes[start] == UInt8(ascii: "{") else { return false }
        return withoutActuallyEscaping(body) { body in
            guard let end = Self.containerEnd(bytes, start, depth: 1, members: body) else { return false }
            return Self.skipSpace(bytes, end) == bytes.count
        }
    }

    /// Whether `bytes[range]` is exactly `literal`.
    @inlinable
    public static func equals(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ literal: StaticString) -> Bool {
        guard range.count == literal.utf8CodeUnitCount else { return false }
        let start = literal.utf8Start
        for offset in 0..<range.count where bytes[range.lowerBound + offset] != start[offset] {
            return false
        }
        return true
    }

    /// Whether `bytes[range]` is an integer as a JSON writer writes one (an optional minus sign,
    /// then 1 to 15 digits, so that it is exact as a `Double`).
    public static func isPlainInteger(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
        var digits = range
        if !digits.isEmpty, bytes[digits.lowerBound] == UInt8(ascii: "-") { digits = (digits.lowerBound + 1)..<digits.upperBound }
        guard (1...15).contains(digits.count) else { return false }
        for index in digits where !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { return false }
        return digits.count == 1 || bytes[digits.lowerBound] != UInt8(ascii: "0")
    }

    /// Whether `bytes[range]` is an array of strings only (`[]` included), as a JSON writer
    /// writes one.
    public static func isStringArray(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
        guard range.count >= 2, bytes[range.lowerBound] == UInt8(ascii: "["), bytes[range.upperBound - 1] == UInt8(ascii: "]") else { return false }
        let end = range.upperBound - 1
        var index = Self.skipSpace(bytes, range.lowerBound + 1)
        if index == end { return true }
        while true {
            guard index < end, bytes[index] == UInt8(ascii: "\""), let stringEnd = Self.stringEnd(bytes, index), stringEnd <= end else { return false }
            index = Self.skipSpace(bytes, stringEnd)
            if index == end { return true }
            guard index < end, bytes[index] == UInt8(ascii: ",") else { return false }
            index = Self.skipSpace(bytes, index + 1)
        }
    }

    // MARK: Scanning

    private static func skipSpace(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int {
        var index = start
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"): index += 1
            default: return index
            }
        }
        return index
    }

    /// The index just past the closing quote of the string opening at `start`, if the string is
    /// valid: no raw control characters, only JSON's escapes, surrogates only in pairs.
    private static func stringEnd(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int? {
        var index = start + 1
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""):
                return index + 1
            case UInt8(ascii: "\\"):
                guard index + 1 < bytes.count else { return nil }
                switch bytes[index + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
                    UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 2
                case UInt8(ascii: "u"):
                    guard let unit = Self.hexUnit(bytes, index + 2) else { return nil }
                    index += 6
                    if (0xD800..<0xDC00).contains(unit) {
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u"),
                            let low = Self.hexUnit(bytes, index + 2), (0xDC00..<0xE000).contains(low)
                        else { return nil }
                        index += 6
                    } else if (0xDC00..<0xE000).contains(unit) {
                        return nil
                    }
                default:
                    return nil
                }
            case 0..<0x20:
                return nil
            default:
                index += 1
            }
        }
        return nil
    }

    /// The four hex digits at `start`, as a UTF-16 unit.
    private static func hexUnit(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) -> UInt32? {
        guard start + 4 <= bytes.count else { return nil }
        var unit: UInt32 = 0
        for index in start..<(start + 4) {
            guard let digit = HexDigit.value(bytes[index]) else { return nil }
            unit = unit << 4 | UInt32(digit)
        }
        return unit
    }

    /// The index just past the valid value starting at `start`.
    private static func valueEnd(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, depth: Int) -> Int? {
        guard start < bytes.count else { return nil }
        switch bytes[start] {
        case UInt8(ascii: "\""):
            return Self.stringEnd(bytes, start)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            return Self.containerEnd(bytes, start, depth: depth + 1, members: nil)
        case UInt8(ascii: "t"):
            return Self.literalEnd(bytes, start, "true")
        case UInt8(ascii: "f"):
            return Self.literalEnd(bytes, start, "false")
        case UInt8(ascii: "n"):
            return Self.literalEnd(bytes, start, "null")
        default:
            return Self.numberEnd(bytes, start)
        }
    }

    /// The index just past the object or array opening at `start` (`members` sees an object's
    /// members).
    private static func containerEnd(
        _ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, depth: Int, members: ((Range<Int>, Range<Int>) -> Void)?
    ) -> Int? {
        guard depth <= Self.maxDepth else { return nil }
        let isObject = bytes[start] == UInt8(ascii: "{")
        let close = isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
        var index = Self.skipSpace(bytes, start + 1)
        guard index < bytes.count else { return nil }
        if bytes[index] == close { return index + 1 }
        while true {
            var key: Range<Int>?
            if isObject {
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\""), let keyEnd = Self.stringEnd(bytes, index) else { return nil }
                key = (index + 1)..<(keyEnd - 1)
                index = Self.skipSpace(bytes, keyEnd)
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
                index = Self.skipSpace(bytes, index + 1)
            }
            guard let valueEnd = Self.valueEnd(bytes, index, depth: depth) else { return nil }
            if let key, let members { members(key, index..<valueEnd) }
            index = Self.skipSpace(bytes, valueEnd)
            guard index < bytes.count else { return nil }
            if bytes[index] == close { return index + 1 }
            guard bytes[index] == UInt8(ascii: ",") else { return nil }
            index = Self.skipSpace(bytes, index + 1)
        }
    }

    private static func literalEnd(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ literal: StaticString) -> Int? {
        let end = start + literal.utf8CodeUnitCount
        guard end <= bytes.count, Self.equals(bytes, start..<end, literal) else { return nil }
        return end
    }

    /// The index just past a number in JSON's grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    private static func numberEnd(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int? {
        func isDigit(_ index: Int) -> Bool { index < bytes.count && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) }
        func digits(from index: Int) -> Int? {
            var end = index
            while isDigit(end) { end += 1 }
            return end > index ? end : nil
        }
        var index = start
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard isDigit(index) else { return nil }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            guard let end = digits(from: index) else { return nil }
            index = end
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            guard let end = digits(from: index + 1) else { return nil }
            index = end
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard let end = digits(from: index) else { return nil }
            index = end
        }
        return index
    }
}
