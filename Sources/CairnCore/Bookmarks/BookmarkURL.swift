import Foundation

/// URL rules for bookmarks: the scheme allowlist, limits, and the normalised form used to spot
/// duplicates.
public enum BookmarkURL {
    /// Schemes a bookmark may use. Bookmarklets (`javascript:`) and browser-internal pages are
    /// part of real bookmark trees and are kept; clients must not auto-open them.
    public static let allowedSchemes: Set<String> = [
        "http", "https", "ftp", "ftps", "file", "about", "javascript", "place", "data", "mailto", "tel", "sms", "news", "irc",
        "ircs", "magnet", "ipfs", "ipns", "ws", "wss", "chrome", "chrome-extension", "edge", "brave", "vivaldi", "opera",
        "moz-extension", "view-source", "resource", "feed",
    ]

    /// Schemes that need `//host`.
    static let hierarchicalSchemes: Set<String> = ["http", "https", "ftp", "ftps", "ws", "wss"]

    /// The scheme of `url`, lower-cased, if it has a syntactically valid one.
    public static func scheme(of url: String) -> String? {
        self.scheme(ofUTF8: url.utf8)?.scheme
    }

    /// The scheme (lower-cased) and the byte offset of its colon. Read from the UTF-8 bytes: a
    /// scheme is ASCII, and every pushed bookmark is validated, so no grapheme breaking.
    static func scheme(ofUTF8 bytes: String.UTF8View) -> (scheme: String, colon: Int)? {
        var scheme: [UInt8] = []
        for byte in bytes {
            if byte == UInt8(ascii: ":") {
                guard !scheme.isEmpty else { return nil }
                return (String(decoding: scheme, as: UTF8.self), scheme.count)
            }
            let lower = byte | 0x20
            let isLetter = lower >= UInt8(ascii: "a") && lower <= UInt8(ascii: "z")
            if scheme.isEmpty {
                guard isLetter else { return nil }
            } else {
                let isDigit = byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
                guard isLetter || isDigit || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") else {
                    return nil
                }
            }
            scheme.append(isLetter ? lower : byte)
        }
        return nil
    }

    /// Throws `VALIDATION_ERROR` (field `url`) unless `url` is within `maxBytes` and uses an allowed scheme.
    public static func validate(_ url: String, maxBytes: Int) throws(CairnError) {
        let bytes = url.utf8
        guard !bytes.isEmpty else { throw CairnError(.validation, "url must not be empty", field: "url") }
        guard bytes.count <= maxBytes else { throw CairnError(.validation, "url exceeds \(maxBytes) bytes", field: "url") }
        // U+0000–U+001F and U+007F are one byte each in UTF-8, and no other character's bytes
        // fall in that range.
        guard !bytes.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw CairnError(.validation, "url contains control characters", field: "url")
        }
        guard let (scheme, colon) = scheme(ofUTF8: bytes), allowedSchemes.contains(scheme) else {
            throw CairnError(.validation, "url scheme is not allowed", field: "url")
        }
        if hierarchicalSchemes.contains(scheme) {
            // `//` and a host: at least one byte before the path, query or fragment.
            var rest = bytes.dropFirst(colon + 1).makeIterator()
            guard rest.next() == UInt8(ascii: "/"), rest.next() == UInt8(ascii: "/"), let first = rest.next(),
                first != UInt8(ascii: "/"), first != UInt8(ascii: "?"), first != UInt8(ascii: "#")
            else {
                throw CairnError(.validation, "url has no host", field: "url")
            }
        }
    }

    /// The form two URLs share when they are the same page: scheme and host lower-cased, default
    /// port dropped, an empty path made `/`, a trailing slash on a longer path dropped.
    public static func normalized(_ url: String) -> String {
        let trimmed = url.trimmingWhitespace()
        guard let schemeEnd = trimmed.range(of: "://") else { return trimmed.lowercased() }
        let scheme = trimmed[..<schemeEnd.lowerBound].lowercased()
        let rest = trimmed[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        var authority = rest[..<authorityEnd].lowercased()
        var tail = String(rest[authorityEnd...])
        if (scheme == "http" && authority.hasSuffix(":80")) || (scheme == "https" && authority.hasSuffix(":443")) {
            authority = String(authority[..<(authority.lastIndex(of: ":") ?? authority.endIndex)])
        }
        if tail.isEmpty || tail.hasPrefix("?") || tail.hasPrefix("#") {
            tail = "/" + tail
        }
        let pathEnd = tail.firstIndex(where: { $0 == "?" || $0 == "#" }) ?? tail.endIndex
        var path = String(tail[..<pathEnd])
        let suffix = String(tail[pathEnd...])
        if path.count > 1, path.hasSuffix("/") { path.removeLast() }
        return "\(scheme)://\(authority)\(path)\(suffix)"
    }
}
