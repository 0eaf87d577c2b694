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
        guard let colon = url.firstIndex(of: ":") else { return nil }
        let scheme = url[..<colon]
        guard let first = scheme.unicodeScalars.first, ("a"..."z").contains(first) || ("A"..."Z").contains(first),
            scheme.unicodeScalars.allSatisfy({ isAlphanumeric($0) || $0 == "+" || $0 == "-" || $0 == "." })
        else { return nil }
        return scheme.lowercased()
    }

    /// Throws `VALIDATION_ERROR` (field `url`) unless `url` is within `maxBytes` and uses an allowed scheme.
    public static func validate(_ url: String, maxBytes: Int) throws(CairnError) {
        guard !url.isEmpty else { throw CairnError(.validation, "url must not be empty", field: "url") }
        guard url.utf8.count <= maxBytes else { throw CairnError(.validation, "url exceeds \(maxBytes) bytes", field: "url") }
        guard !url.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw CairnError(.validation, "url contains control characters", field: "url")
        }
        guard let scheme = scheme(of: url), allowedSchemes.contains(scheme) else {
            throw CairnError(.validation, "url scheme is not allowed", field: "url")
        }
        if hierarchicalSchemes.contains(scheme) {
            let rest = url.dropFirst(scheme.count + 1)
            guard rest.hasPrefix("//"), !rest.dropFirst(2).prefix(while: { !"/?#".contains($0) }).isEmpty else {
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

func isAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
    ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
}
