/// A hybrid logical clock stamp: wall time in ms, a counter for events in the same millisecond,
/// and the node that made it. Stamps are totally ordered (wall, counter, node) and are used only to
/// order concurrent edits, never as a cursor.
///
/// The string form `"<wall:15 digits>-<counter:6 hex digits>-<node>"` sorts like the stamp.
public struct HLC: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// Milliseconds since 1970.
    public var wall: Int64
    /// Tie-breaker for events within one millisecond.
    public var counter: Int
    /// The device or server that made the stamp.
    public var node: String

    /// The largest counter (six hex digits, as the string form writes it).
    public static let maximumCounter = 0xFF_FFFF
    /// The largest wall time accepted (the year 9999, in ms).
    public static let maximumWall: Int64 = 253_402_300_799_999

    public init(wall: Int64, counter: Int = 0, node: String) {
        self.wall = wall
        self.counter = counter
        self.node = node
    }

    public static func < (lhs: HLC, rhs: HLC) -> Bool {
        if lhs.wall != rhs.wall { return lhs.wall < rhs.wall }
        if lhs.counter != rhs.counter { return lhs.counter < rhs.counter }
        return lhs.node < rhs.node
    }

    /// The sortable string form: the wall time in 15 decimal digits, the counter in 6 hex digits,
    /// the node, joined by `-` (`001763724000000-00002a-node`).
    public var description: String {
        var bytes: [UInt8] = []
        self.write(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends ``description``'s UTF-8 to `bytes`, without building the intermediate strings
    /// (every stored write records one stamp per field).
    public func write(to bytes: inout [UInt8]) {
        bytes.reserveCapacity(bytes.count + 23 + self.node.utf8.count)
        Self.appendDigits(UInt64(max(0, self.wall)), radix: 10, width: 15, to: &bytes)
        bytes.append(UInt8(ascii: "-"))
        Self.appendDigits(UInt64(max(0, self.counter)), radix: 16, width: 6, to: &bytes)
        bytes.append(UInt8(ascii: "-"))
        bytes.append(contentsOf: self.node.utf8)
    }

    /// The form ``description`` writes (15 decimal digits, `-`, 6 hex digits, `-`, the node), read
    /// straight from the bytes: every stored record's stamp is parsed on every read. `nil` for
    /// anything else, which the general parser then judges, so both accept exactly the same.
    static func parseCanonical(_ string: String) -> HLC? {
        var string = string
        return string.withUTF8 { bytes -> HLC? in
            guard bytes.count >= 23, bytes[15] == UInt8(ascii: "-"), bytes[22] == UInt8(ascii: "-"), bytes.count - 23 <= 128 else { return nil }
            var wall: Int64 = 0
            for index in 0..<15 {
                let digit = bytes[index] &- UInt8(ascii: "0")
                guard digit < 10 else { return nil }
                wall = wall * 10 + Int64(digit)
            }
            var counter = 0
            for index in 16..<22 {
                guard let value = HexDigit.value(bytes[index]) else { return nil }
                counter = counter * 16 + Int(value)
            }
            guard wall <= HLC.maximumWall else { return nil }
            return HLC(wall: wall, counter: counter, node: String(decoding: UnsafeBufferPointer(rebasing: bytes[23...]), as: UTF8.self))
        }
    }

    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// `value` in `radix`, left-padded with zeros to at least `width` digits.
    static func appendDigits(_ value: UInt64, radix: UInt64, width: Int, to bytes: inout [UInt8]) {
        var divisor: UInt64 = 1
        var count = 1
        while value / divisor >= radix {
            divisor *= radix
            count += 1
        }
        for _ in count..<max(count, width) { bytes.append(UInt8(ascii: "0")) }
        var rest = value
        while divisor > 0 {
            bytes.append(Self.digits[Int(rest / divisor)])
            rest %= divisor
            divisor /= radix
        }
    }

    /// Parses the string form; also accepts a bare integer of milliseconds.
    public init?(_ string: String) {
        if let stamp = Self.parseCanonical(string) {
            self = stamp
            return
        }
        let parts = string.split(separator: "-", maxSplits: 2, omittingEmptySubsequences: false)
        if parts.count == 3, let wall = Int64(parts[0]), let counter = Int(parts[1], radix: 16), (0...HLC.maximumWall).contains(wall),
            (0...HLC.maximumCounter).contains(counter), parts[2].utf8.count <= 128
        {
            self.init(wall: wall, counter: counter, node: String(parts[2]))
        } else if parts.count == 1, let wall = Int64(string), (0...HLC.maximumWall).contains(wall) {
            self.init(wall: wall, counter: 0, node: "")
        } else {
            return nil
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let milliseconds = try? container.decode(Int64.self) {
            guard (0...HLC.maximumWall).contains(milliseconds) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "HLC wall time out of range")
            }
            self.init(wall: milliseconds, node: "")
            return
        }
        let string = try container.decode(String.self)
        guard let stamp = HLC(string) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "Invalid HLC stamp")
        }
        self = stamp
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self.description)
    }

    /// The smallest stamp greater than both `self` and `other`, on `node` (the counter rolls
    /// into the next millisecond rather than overflow).
    public func successor(after other: HLC, node: String) -> HLC {
        let base = max(self, other)
        return base.counter >= HLC.maximumCounter
            ? HLC(wall: base.wall + 1, counter: 0, node: node) : HLC(wall: base.wall, counter: base.counter + 1, node: node)
    }
}
