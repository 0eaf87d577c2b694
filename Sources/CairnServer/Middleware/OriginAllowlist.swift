/// The configured CORS / WebSocket origin allowlist. Entries are exact origins
/// (`https://app.example.com`) or a scheme wildcard (`chrome-extension://*`). `null` is never
/// allowed.
public struct OriginAllowlist: Sendable {
    let exact: Set<String>
    let schemes: Set<String>

    public init(_ entries: [String]) {
        var exact = Set<String>()
        var schemes = Set<String>()
        for entry in entries {
            let value = entry.trimmingWhitespace()
            if value.hasSuffix("://*") {
                schemes.insert(String(value.dropLast(4)).lowercased())
            } else if !value.isEmpty, value != "null" {
                exact.insert(value.hasSuffix("/") ? String(value.dropLast()) : value)
            }
        }
        self.exact = exact
        self.schemes = schemes
    }

    /// Whether a request's `Origin` header value is allowed.
    public func allows(_ origin: String) -> Bool {
        if origin == "null" || origin.isEmpty { return false }
        if self.exact.contains(origin) { return true }
        if let range = origin.range(of: "://") {
            let scheme = origin[..<range.lowerBound].lowercased()
            let rest = origin[range.upperBound...]
            return self.schemes.contains(scheme) && !rest.isEmpty && !rest.contains("/")
        }
        return false
    }
}

import CairnCore
