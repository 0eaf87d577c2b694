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

    /// A short key after `a`, for an append (any key after the last one will do):
    /// - below the top digit `z`, the next first digit alone (`V` → `W`, `Vz3` → `W`);
    /// - from `z` on, counters of growing width: the leading `z`s, a digit `w` for the width,
    ///   then `w` digits (`z` → `z11` … `z1z` → `z201` … `z2zz` → `z3001` …), so that `n`
    ///   appends to one folder end in keys of about log₆₂(n) + 2 characters (10,000 appends:
    ///   5 characters);
    /// - for a key that is not a counter (made by a client or by the older rule: `z5`, `zz7`),
    ///   the older rule, the last digit plus one (`z6`), until the next run of `z`s starts a
    ///   counter (`zy` → `zz` → `zz11`); reading it as a counter would make it much longer.
    ///
    /// Before, every append took the last digit plus one, which grew keys by one character per
    /// 61 appends: 10,000 appends to one folder ended in 165-character keys, copied into the
    /// record, its index entries and every answer.
    static func after(_ a: [UInt8]) -> [UInt8] {
        guard let first = a.first, let head = value(of: first), a.allSatisfy({ value(of: $0) != nil }) else { return self.midpoint(a, nil) }
        if head < base - 1 { return [digits[head + 1]] }
        let counter = self.afterInCounters(a)
        return counter.count <= a.count + 2 ? counter : self.afterByLastDigit(a)
    }

    /// The next counter key after `a`, which starts with `z`: its leading `z`s, the width digit
    /// `w` and `w` digits, taken from `a` (cut, or padded with `0`) and counted up by one.
    static func afterInCounters(_ a: [UInt8]) -> [UInt8] {
        let top = digits[base - 1]
        let leading = a.prefix(while: { $0 == top }).count
        let prefix = [UInt8](repeating: top, count: leading)
        guard leading < a.count, let width = value(of: a[leading]), width > 0 else {
            // Only `z`s, or `z…z0…`: below every counter after those `z`s.
            return prefix + [digits[1], digits[1]]
        }
        // The next counter is after `a`: greater in its first `leading + 1 + width` characters,
        // or `a` is shorter and a prefix of it.
        let start = leading + 1
        var counter = (0..<width).map { start + $0 < a.count ? (value(of: a[start + $0]) ?? 0) : 0 }
        repeat {
            var place = width - 1
            while place >= 0, counter[place] == base - 1 {
                counter[place] = 0
                place -= 1
            }
            if place < 0 {
                // Every counter of this width is used: the next width starts at 0…01; past the
                // widest (60 digits), one more `z` starts over.
                guard width + 1 < base - 1 else { return prefix + [top, digits[1], digits[1]] }
                return prefix + [digits[width + 1]] + [UInt8](repeating: digits[0], count: width) + [digits[1]]
            }
            counter[place] += 1
        } while counter[width - 1] == 0  // a key never ends in `0`
        return prefix + [a[leading]] + counter.map { digits[$0] }
    }

    /// The older append: the last digit plus one, or, after `z`, one digit more.
    static func afterByLastDigit(_ a: [UInt8]) -> [UInt8] {
        guard let last = a.last, let digit = value(of: last) else { return self.midpoint(a, nil) }
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
