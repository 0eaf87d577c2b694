/// Structural limits of a JSON document checked on the raw bytes before it is decoded, so that
/// a deeply nested or absurdly wide document is refused in linear time without building it.
public enum JSONShape {
    /// Returns the maximum nesting depth of arrays and objects in `bytes`, stopping early as soon
    /// as `limit` is exceeded (then `limit + 1` is returned). Strings are skipped correctly,
    /// including escaped quotes.
    ///
    /// Inlinable, as is `containsEscapedNUL`: every request body goes through both before it is
    /// parsed, and unspecialized (one witness-table call per byte) the two scans of a push of 100
    /// ops cost half as much as parsing it. The bodies are compiled into the modules that call
    /// them, so a change to either reaches a caller when it is rebuilt (always, with SwiftPM
    /// building from source; a binary distribution of CairnCore would need to say so).
    @inlinable
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

    /// The error message for a NUL character in a request.
    public static let nulMessage = "Text must not contain the NUL character (\\u0000 or %00)"

    /// Whether a JSON text contains the escape `\u0000` inside a string (a NUL character once
    /// decoded). Raw control bytes are invalid JSON anyway; the escaped form decodes, and a NUL
    /// would silently cut a string wherever it is bound as C text (SQLite), so requests carrying
    /// one are refused.
    @inlinable
    public static func containsEscapedNUL(_ bytes: some Sequence<UInt8>) -> Bool {
        let backslash = UInt8(ascii: "\\"), zero = UInt8(ascii: "0")
        // 0: plain text; 1: just after a backslash; 2 to 5: after `\u` and (state - 2) zeros.
        var state = 0
        for byte in bytes {
            switch state {
            case 1:
                // The escaped character (a second backslash included) is skipped.
                state = byte == UInt8(ascii: "u") ? 2 : 0
            case 2...5:
                if byte == zero {
                    if state == 5 { return true }
                    state += 1
                } else {
                    state = byte == backslash ? 1 : 0
                }
            default:
                if byte == backslash { state = 1 }
            }
        }
        return false
    }
}
