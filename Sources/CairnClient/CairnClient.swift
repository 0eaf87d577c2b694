import CairnCore

/// The Cairn client SDK (offline-first replica and sync engine). Its implementation lands with
/// the SDK issue; this module currently exposes the shared wire types through `CairnCore`.
public enum CairnClientInfo {
    /// The SDK's version.
    public static let version = "0.1.0"
}
