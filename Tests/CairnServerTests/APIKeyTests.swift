import CairnCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@testable import CairnServer

@Suite("API keys")
struct APIKeyTests {
    @Test func createdKeyAuthenticatesAndIsListedWithoutItsSecret() async throws {
        try await withTestServer { client, components in
            let session = try await client.register("keys@example.com")
            // When a key is created
            let created = try await client.post("/api/keys", jsonBody(#"{"name":"laptop"}"#), token: session.token)
            #expect(created.status == .created)
            let key = try decode(CreatedAPIKey.self, created)
            #expect(key.secret.hasPrefix("ck_"))
            #expect(key.secret.hasPrefix(key.key.prefix))
            // Then it authenticates as Bearer
            let me = try await client.get("/api/me", token: key.secret)
            #expect(me.status == .ok)
            #expect(try decode(MeResponse.self, me).authMethod == "apiKey")
            // and the list never shows the secret
            let list = try await client.get("/api/keys", token: session.token)
            let text = String(buffer: list.body)
            #expect(!text.contains(key.secret))
            #expect(!text.contains(String(key.secret.dropFirst(12))))
            #expect(try decode(APIKeyList.self, list).keys.map(\.name) == ["laptop"])
            // and only a hash is stored
            let stored = try await components.store.apiKeys(userId: session.user.id)
            #expect(stored.count == 1)
            #expect(stored[0].secretHash != Data(key.secret.utf8))
        }
    }

    @Test func revokedKeyIsRefused() async throws {
        try await withTestServer { client, _ in
            let session = try await client.register("revoke@example.com")
            let key = try decode(CreatedAPIKey.self, try await client.post("/api/keys", jsonBody(#"{"name":"ci"}"#), token: session.token))
            #expect(try await client.get("/api/me", token: key.secret).status == .ok)
            let revoke = try await client.execute(uri: "/api/keys/\(key.key.id)", method: .delete, headers: bearer(session.token))
            #expect(revoke.status == .noContent)
            let after = try await client.get("/api/me", token: key.secret)
            #expect(after.status == .unauthorized)
            #expect(String(buffer: after.body) == uniformUnauthorizedBody)
            #expect(try decode(APIKeyList.self, try await client.get("/api/keys", token: session.token)).keys.isEmpty)
        }
    }

    @Test func anotherUsersKeyIdAnswersLikeAMissingOne() async throws {
        try await withTestServer { client, _ in
            let alice = try await client.register("alice@example.com")
            let bob = try await client.register("bob@example.com")
            let key = try decode(CreatedAPIKey.self, try await client.post("/api/keys", jsonBody(#"{"name":"a"}"#), token: alice.token))
            let foreign = try await client.execute(uri: "/api/keys/\(key.key.id)", method: .delete, headers: bearer(bob.token))
            let missing = try await client.execute(uri: "/api/keys/\(UUID().uuidString.lowercased())", method: .delete, headers: bearer(bob.token))
            #expect(foreign.status == .notFound)
            #expect(String(buffer: foreign.body) == String(buffer: missing.body))
            #expect(try await client.get("/api/me", token: key.secret).status == .ok)
        }
    }

    @Test func keyScopedToAProfileShowsOnlyThatProfile() async throws {
        try await withTestServer { client, _ in
            let session = try await client.register("scope@example.com")
            let created = try await client.post("/api/keys", jsonBody(#"{"name":"ext","profile":"default"}"#), token: session.token)
            #expect(created.status == .created)
            let key = try decode(CreatedAPIKey.self, created)
            #expect(key.key.profileId != nil)
            let me = try decode(MeResponse.self, try await client.get("/api/me", token: key.secret))
            #expect(me.scopedProfile == key.key.profileId)
            let unknown = try await client.post("/api/keys", jsonBody(#"{"name":"x","profile":"nope"}"#), token: session.token)
            #expect(unknown.status == .notFound)
        }
    }

    @Test func rejectsInvalidKeyNames() async throws {
        try await withTestServer { client, _ in
            let session = try await client.register("names@example.com")
            for body in [#"{"name":""}"#, #"{"name":"   "}"#, "{\"name\":\"\(String(repeating: "n", count: 101))\"}", #"{}"#] {
                let response = try await client.post("/api/keys", jsonBody(body), token: session.token)
                #expect(response.status == .badRequest, "\(body)")
            }
            #expect(try decode(APIKeyList.self, try await client.get("/api/keys", token: session.token)).keys.isEmpty)
        }
    }
}
