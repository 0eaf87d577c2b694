/// The password rules: 8 to 1,024 characters, every byte significant.
public enum PasswordPolicy {
    /// Fewest characters accepted.
    public static let minimumLength = 8
    /// Most characters accepted.
    public static let maximumLength = 1024

    /// Throws `VALIDATION_ERROR` when `password` is outside the accepted length.
    public static func validate(_ password: String) throws(CairnError) {
        let count = password.count
        guard count >= minimumLength else {
            throw CairnError(.validation, "Password must be at least \(minimumLength) characters", field: "password")
        }
        guard count <= maximumLength else {
            throw CairnError(.validation, "Password must be at most \(maximumLength) characters", field: "password")
        }
    }
}
