/// Who a request is from, as established by the authenticator.
public struct AuthIdentity: Sendable, Equatable {
    /// How the credential was presented.
    public enum Method: Sendable, Equatable {
        /// A JWT access token, issued and expiring at these times (seconds since 1970).
        case accessToken(issuedAt: Int64, expiresAt: Int64)
        /// An API key, optionally limited to one profile.
        case apiKey(id: String, profileId: String?)
    }

    /// The authenticated user.
    public var user: StoredUser
    /// The credential kind.
    public var method: Method

    /// The profile an API key is limited to, if any.
    public var scopedProfileId: String? {
        if case .apiKey(_, let profileId) = self.method { return profileId }
        return nil
    }
}
