/// The top-level members of a JSON object's text, found without parsing their values: each
/// member's key (the bytes between its quotes, escapes left as they are) and its value's bytes,
/// as ranges into the text.
///
/// For copying values that are already JSON text (a record's stored data) into an answer as
/// they are, instead of parsing them into `JSONValue`s and writing them back out. The scan finds
/// where each value ends; it does not check what is inside a nested array or object, so use it
/// only on text a JSON writer produced.
public enum JSONMembers {
    /// Calls `body(key, value)` for each member of the object `bytes` holds, in order. Returns
    /// false, having stopped, when the text is not one object (nothing it reported may be trusted
    /// then).
    @discardableResult
    public static func scan(_ bytes: UnsafeBufferPointer<UInt8>, _ body: (_ key: Range<Int>, _ value: Range<Int>) -> Void) -> Bool {
        var index = Self.skipSpace(bytes, 0)
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { return false }
        index = Self.skipSpace(bytes, index + 1)
        guard index < bytes.count else { return false }
        if bytes[index] == UInt8(ascii: "}") {
            return Self.skipSpace(bytes, index + 1) == bytes.count
        }
        while true {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\""), let keyEnd = Self.stringEnd(bytes, index) else { return false }
            let key = (index + 1)..<(keyEnd - 1)
            index = Self.skipSpace(bytes, keyEnd)
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return false }
            let valueStart = Self.skipSpace(bytes, index + 1)
            guard let valueEnd = Self.valueEnd(bytes, valueStart) else { return false }
            body(key, valueStart..<valueEnd)
            index = Self.skipSpace(bytes, valueEnd)
            guard index < bytes.count else { return false }
            switch bytes[index] {
            case UInt8(ascii: ","):
                index = Self.skipSpace(bytes, index + 1)
            case UInt8(ascii: "}"):
                return Self.skipSpace(bytes, index + 1) == bytes.count
            default:
                return false
            }
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

    /// The index just past the closing quote of the string opening at `start`.
    private static func stringEnd(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int? {
        var index = start + 1
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""): return index + 1
            case UInt8(ascii: "\\"): index += 2
            case 0..<0x20: return nil
            default: index += 1
            }
        }
        return nil
    }

    /// The index just past the value starting at `start`: a string, an array or object (brackets
    /// counted, strings skipped), or a scalar running to the next delimiter.
    private static func valueEnd(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int? {
        guard start < bytes.count else { return nil }
        switch bytes[start] {
        case UInt8(ascii: "\""):
            return Self.stringEnd(bytes, start)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            var index = start
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\""):
                    guard let end = Self.stringEnd(bytes, index) else { return nil }
                    index = end
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { return index + 1 }
                default:
                    break
                }
                index += 1
            }
            return nil
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            var index = start
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"):
                    return index
                default:
                    index += 1
                }
            }
            return index
        default:
            return nil
        }
    }
}
