/// Fractional indexing: order keys that can always be generated between two others, so that
/// inserting between two siblings never renumbers the rest.
///
/// Keys are non-empty strings over the base-62 digits `0-9A-Za-z` (ASCII order), compared as
/// strings, and never end in `0` (so there is always room below them).
public enum FractionalIndex {
    static let digits: [UInt8] = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
    static let base = 62
    /// The key of a first item in an empty list.
    public static let start = "V"
    /// The longest key accepted from a client.
    public static let maximumLength = 128

    static func value(of byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): Int(byte - UInt8(ascii: "A")) + 10
        case UInt8(ascii: "a")...UInt8(ascii: "z"): Int(byte - UInt8(ascii: "a")) + 36
        default: nil
        }
    }

    /// Whether `key` is a well-formed key.
    public static func isValid(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        guard !bytes.isEmpty, bytes.count <= maximumLength, bytes.last != UInt8(ascii: "0") else { return false }
        return bytes.allSatisfy { value(of: $0) != nil }
    }

    /// A key strictly between `lower` and `upper` (either may be `nil` for an open end).
    /// `lower` must sort before `upper` when both are given.
    public static func between(_ lower: String?, _ upper: String?) -> String {
        let a = lower.map { Array($0.utf8) } ?? []
        let b = upper.map { Array($0.utf8) }
        if let b, !a.isEmpty, !(a.lexicographicallyPrecedes(b)) {
            // Inconsistent bounds: fall back to just after the lower one.
            return String(decoding: self.after(a), as: UTF8.self)
        }
        if b == nil, !a.isEmpty { return String(decoding: self.after(a), as: UTF8.self) }
        return String(decoding: self.midpoint(a, b), as: UTF8.self)
    }

    /// A short key after `a` for an append: its last digit plus one, or, after `z`, one digit
    /// more. Appending one item after another thus grows keys by one character per 61 appends
    /// (halving the space left, as a midpoint would, grew them by one per 6, and a few thousand
    /// appends to one folder ended in identical keys).
    static func after(_ a: [UInt8]) -> [UInt8] {
        guard let last = a.last, let digit = value(of: last), a.allSatisfy({ value(of: $0) != nil }) else { return self.midpoint(a, nil) }
        if digit < base - 1 { return a.dropLast() + [digits[digit + 1]] }
        return a + [digits[1]]
    }

    /// `count` keys in order, evenly spread between `lower` and `upper`.
    public static func sequence(count: Int, between lower: String? = nil, and upper: String? = nil) -> [String] {
        guard count > 0 else { return [] }
        if count == 1 { return [self.between(lower, upper)] }
        let middle = count / 2
        let pivot = self.between(lower, upper)
        return self.sequence(count: middle, between: lower, and: pivot) + [pivot]
            + self.sequence(count: count - middle - 1, between: pivot, and: upper)
    }

    /// Digits strictly between `a` (may be empty = 0) and `b` (`nil` = 1.0), as a base-62 fraction.
    static func midpoint(_ a: [UInt8], _ b: [UInt8]?) -> [UInt8] {
        var result: [UInt8] = []
        var index = 0
        var upperOpen = b == nil
        while true {
            let low = index < a.count ? (value(of: a[index]) ?? 0) : 0
            let high: Int
            if upperOpen {
                high = base
            } else if let b, index < b.count {
                high = value(of: b[index]) ?? base
            } else {
                high = base
                upperOpen = true
            }
            if high - low > 1 {
                result.append(digits[(low + high) / 2])
                return result
            }
            // Same digit (or adjacent): keep the lower digit and go one place deeper.
            result.append(digits[low])
            if high - low == 1 {
                // Anything below `high` at this place is below `b`: the upper bound opens up.
                upperOpen = true
            }
            index += 1
            if index > 4 * maximumLength { return result + [digits[base / 2]] }
        }
    }
}
