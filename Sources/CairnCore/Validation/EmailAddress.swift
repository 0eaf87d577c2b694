/// Validation and normalisation of account email addresses.
public enum EmailAddress {
    /// The longest address accepted (RFC 5321 path limit).
    public static let maximumLength = 254

    /// Returns the address trimmed, or throws `VALIDATION_ERROR` when it is not a plausible
    /// `local@domain.tld` address.
    public static func validate(_ raw: String) throws(CairnError) -> String {
        let email = raw.trimmingWhitespace()
        guard !email.isEmpty, email.utf8.count <= maximumLength else {
            throw CairnError(.validation, "A valid email address is required", field: "email")
        }
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, let local = parts.first, let domain = parts.last,
            !local.isEmpty, local.utf8.count <= 64,
            domain.contains("."), !domain.hasPrefix("."), !domain.hasSuffix("."), !domain.contains(".."),
            !email.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F })
        else {
            throw CairnError(.validation, "A valid email address is required", field: "email")
        }
        return email
    }

    /// The form used for uniqueness and lookup: case-insensitive comparison.
    public static func normalized(_ email: String) -> String {
        email.trimmingWhitespace().lowercased()
    }
}

extension String {
    /// The string without leading and trailing whitespace (Foundation-free).
    public func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars = scalars.dropFirst() }
        while let last = scalars.last, last.isWhitespace { scalars = scalars.dropLast() }
        return String(scalars)
    }
}
