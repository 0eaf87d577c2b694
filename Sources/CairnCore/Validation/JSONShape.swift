/// Structural limits of a JSON document checked on the raw bytes before it is decoded, so that
/// a deeply nested or absurdly wide document is refused in linear time without building it.
public enum JSONShape {
    /// Returns the maximum nesting depth of arrays and objects in `bytes`, stopping early as soon
    /// as `limit` is exceeded (then `limit + 1` is returned). Strings are skipped correctly,
    /// including escaped quotes.
    public static func depth(of bytes: some Sequence<UInt8>, limit: Int) -> Int {
        var depth = 0
        var maximum = 0
        var inString = false
        var escaped = false
        for byte in bytes {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                if depth > maximum {
                    maximum = depth
                    if maximum > limit { return maximum }
                }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
            default:
                break
            }
        }
        return maximum
    }
}
