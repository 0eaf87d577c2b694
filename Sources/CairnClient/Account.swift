import CairnCore
import Foundation

extension CairnClient {
    /// Signs in with email and password (`POST /api/auth/login`). Keep the answer's
    /// `refreshToken` (never the password), for example with ``ClientCredentials/session(refreshToken:accessToken:)``.
    public static func login(server: URL, email: String, password: String) async throws -> AuthResponse {
        try await HTTPClient(baseURL: server).send("POST", "api/auth/login", body: CairnCore.Credentials(email: email, password: password), token: nil)
    }

    /// Who the credentials belong to (`GET /api/me`).
    public static func me(server: URL, token: String) async throws -> MeResponse {
        try await HTTPClient(baseURL: server).send("GET", "api/me", token: token)
    }

    /// Who this client's credentials belong to.
    public func me() async throws -> MeResponse {
        try await self.api.send("GET", "api/me")
    }

    /// Creates an API key (its secret is in the answer, and only there).
    public func createAPIKey(name: String, profile: String? = nil) async throws -> CreatedAPIKey {
        try await self.api.send("POST", "api/keys", body: CreateAPIKeyRequest(name: name, profile: profile))
    }

    /// The account's API keys (never their secrets).
    public func apiKeys() async throws -> [APIKeyInfo] {
        let list: APIKeyList = try await self.api.send("GET", "api/keys")
        return list.keys
    }

    /// Revokes an API key.
    public func revokeAPIKey(id: String) async throws {
        _ = try await self.api.raw("DELETE", "api/keys/\(id)")
    }

    /// The server's view of this profile (`GET /api/sync/status`).
    public func serverStatus() async throws -> JSONValue {
        try await self.api.send("GET", "api/sync/status", query: [URLQueryItem(name: "profile", value: self.configuration.profile)])
    }
}
