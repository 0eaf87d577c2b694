/// Carries "profile P changed up to sequence S" hints from a commit to whoever streams changes
/// (the WebSocket hub). Hints only: receivers pull from their own cursor, so a lost or repeated
/// hint never loses or duplicates a change.
public protocol ChangeNotifier: Sendable {
    /// Called after a commit that produced changes.
    func profileChanged(profileId: String, sequence: Int64, originClientId: String?)
}

/// A notifier that tells no one.
public struct NoChangeNotifier: ChangeNotifier {
    public init() {}
    public func profileChanged(profileId: String, sequence: Int64, originClientId: String?) {}
}
