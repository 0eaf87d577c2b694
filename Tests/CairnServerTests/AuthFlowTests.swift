import CairnCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import CairnServer

@Suite("Accounts and sessions")
struct AuthFlowTests {
    @Test func registersLogsInAndReadsMe() async throws {
        try await withTestServer { client, _ in
            // Given a registered account
            let registered = try await client.register("Ann@Example.com")
            #expect(registered.expiresIn == 900)
            #expect(registered.tokenType == "Bearer")
            // When it logs in with a differently cased email
            let login = try await client.post("/api/auth/login", try jsonBody(Credentials(email: "ann@EXAMPLE.com", password: "correct horse battery staple")))
            #expect(login.status == .ok)
            let session = try decode(AuthResponse.self, login)
            #expect(session.user.id == registered.user.id)
            // Then /api/me shows the user and its default profile
            let me = try await client.get("/api/me", token: session.token)
            #expect(me.status == .ok)
            let body = try decode(MeResponse.self, me)
            #expect(body.user.email == "Ann@Example.com")
            #expect(body.profiles.map(\.name) == ["default"])
            #expect(body.authMethod == "token")
            #expect(me.headers[.cacheControl] == "no-store")
        }
    }

    @Test func rejectsDuplicateEmailCaseInsensitively() async throws {
        try await withTestServer { client, _ in
            _ = try await client.register("bob@example.com")
            let again = try await client.post("/api/auth/register", try jsonBody(Credentials(email: "BOB@example.COM", password: "another password")))
            #expect(again.status == .conflict)
            #expect(try decode(ErrorEnvelope.self, again).error.code == "ALREADY_EXISTS")
        }
    }

    @Test(arguments: [
        ("not-an-email", "long enough password", "email"),
        ("a@b", "long enough password", "email"),
        ("ann@example.com", "short", "password"),
        ("ann@example.com", String(repeating: "x", count: 1025), "password"),
    ])
    func rejectsInvalidRegistration(email: String, password: String, field: String) async throws {
        try await withTestServer { client, components in
            let response = try await client.post("/api/auth/register", try jsonBody(Credentials(email: email, password: password)))
            #expect(response.status == .badRequest)
            let envelope = try decode(ErrorEnvelope.self, response)
            #expect(envelope.error.code == "VALIDATION_ERROR")
            #expect(envelope.error.details?["field"] == .string(field))
            #expect(try await components.store.user(emailNormalized: EmailAddress.normalized(email)) == nil)
        }
    }

    @Test func rejectsMalformedAndMissingBodies() async throws {
        try await withTestServer { client, _ in
            for body in ["", "{", "[]", #"{"email": 5, "password": "x"}"#, #"{"email":"a@b.co"}"#] {
                let response = try await client.post("/api/auth/register", jsonBody(body))
                #expect(response.status == .badRequest, "body: \(body)")
                #expect(try decode(ErrorEnvelope.self, response).error.code == "VALIDATION_ERROR")
            }
        }
    }

    @Test func acceptsLongMultibytePasswordExactly() async throws {
        try await withTestServer { client, _ in
            let password = String(repeating: "🔑", count: 64)
            _ = try await client.register("emoji@example.com", password: password)
            let good = try await client.post("/api/auth/login", try jsonBody(Credentials(email: "emoji@example.com", password: password)))
            #expect(good.status == .ok)
            let bad = try await client.post("/api/auth/login", try jsonBody(Credentials(email: "emoji@example.com", password: String(password.dropLast()))))
            #expect(bad.status == .unauthorized)
        }
    }

    @Test func passwordsSharingTheirFirst72BytesDoNotBothVerify() async throws {
        // Given two passwords identical in their first 72 bytes
        let prefix = String(repeating: "a", count: 72)
        let first = prefix + "SECRET-SUFFIX-1"
        let second = prefix + "TOTALLY-DIFFERENT"
        let hasher = PasswordHasher(pepper: Data(repeating: 7, count: 32), cost: 4)
        // When the first is hashed
        let hash = await hasher.hash(first)
        // Then only the first verifies
        #expect(await hasher.verify(first, hash: hash))
        #expect(await hasher.verify(second, hash: hash) == false)
        #expect(await hasher.verify(prefix, hash: hash) == false)
        // and an unknown account never verifies
        #expect(await hasher.verify(first, hash: nil) == false)
    }

    @Test func wrongPasswordAndUnknownUserGetTheSameAnswer() async throws {
        try await withTestServer { client, _ in
            _ = try await client.register("carol@example.com")
            let wrong = try await client.post("/api/auth/login", try jsonBody(Credentials(email: "carol@example.com", password: "wrong password!")))
            let unknown = try await client.post("/api/auth/login", try jsonBody(Credentials(email: "nobody@example.com", password: "wrong password!")))
            #expect(wrong.status == .unauthorized)
            #expect(unknown.status == .unauthorized)
            #expect(String(buffer: wrong.body) == uniformUnauthorizedBody)
            #expect(String(buffer: unknown.body) == uniformUnauthorizedBody)
        }
    }

    @Test func refreshRotatesAndOldTokenReuseRevokesTheFamily() async throws {
        let manual = ManualClock()
        try await withTestServer(clock: manual.clock) { client, _ in
            // Given a session
            let session = try await client.register("dave@example.com")
            // When the refresh token is used
            let first = try await client.post("/api/auth/refresh", try jsonBody(RefreshRequest(refreshToken: session.refreshToken)))
            #expect(first.status == .ok)
            let rotated = try decode(AuthResponse.self, first)
            #expect(rotated.refreshToken != session.refreshToken)
            // and, after the grace window, the old one is presented again
            manual.advance(by: 60)
            let reuse = try await client.post("/api/auth/refresh", try jsonBody(RefreshRequest(refreshToken: session.refreshToken)))
            // Then it is refused and the whole family dies: the successor no longer works either
            #expect(reuse.status == .unauthorized)
            #expect(String(buffer: reuse.body) == uniformUnauthorizedBody)
            let successor = try await client.post("/api/auth/refresh", try jsonBody(RefreshRequest(refreshToken: rotated.refreshToken)))
            #expect(successor.status == .unauthorized)
            // while a separate sign-in is unaffected
            let login = try await client.post("/api/auth/login", try jsonBody(Credentials(email: "dave@example.com", password: "correct horse battery staple")))
            let other = try decode(AuthResponse.self, login)
            let otherRefresh = try await client.post("/api/auth/refresh", try jsonBody(RefreshRequest(refreshToken: other.refreshToken)))
            #expect(otherRefresh.status == .ok)
        }
    }

    @Test func immediateRetryOfARefreshGetsTheSameSuccessor() async throws {
        try await withTestServer { client, _ in
            let session = try await client.register("erin@example.com")
            let first = try decode(AuthResponse.self, try await client.post("/api/auth/refresh", try jsonBody(RefreshRequest(refreshToken: session.refreshToken))))
            // A client whose response was lost retries at once with the old token
            let retry = try await client.post("/api/auth/refresh", try jsonBody(RefreshRequest(refreshToken: session.refreshToken)))
            #expect(retry.status == .ok)
            #expect(try decode(AuthResponse.self, retry).refreshToken == first.refreshToken)
            // and the successor still works (no revocation)
            let next = try await client.post("/api/auth/refresh", try jsonBody(RefreshRequest(refreshToken: first.refreshToken)))
            #expect(next.status == .ok)
            // but once the successor has been used, the old token is a reuse: family revoked
            let late = try await client.post("/api/auth/refresh", try jsonBody(RefreshRequest(refreshToken: session.refreshToken)))
            #expect(late.status == .unauthorized)
            let newest = try decode(AuthResponse.self, next)
            let afterRevocation = try await client.post("/api/auth/refresh", try jsonBody(RefreshRequest(refreshToken: newest.refreshToken)))
            #expect(afterRevocation.status == .unauthorized)
        }
    }

    @Test func concurrentRefreshesOfOneTokenYieldOneSuccessor() async throws {
        try await withTestServer(configure: { $0.authBurst = 100 }) { client, _ in
            let session = try await client.register("fay@example.com")
            let tokens = try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        let response = try await client.post("/api/auth/refresh", try jsonBody(RefreshRequest(refreshToken: session.refreshToken)))
                        return response.status == .ok ? try decode(AuthResponse.self, response).refreshToken : nil
                    }
                }
                var all: [String?] = []
                for try await token in group { all.append(token) }
                return all
            }
            #expect(tokens.allSatisfy { $0 != nil })
            #expect(Set(tokens.compactMap { $0 }).count == 1)
        }
    }

    @Test func logoutEndsTheRefreshFamily() async throws {
        try await withTestServer { client, _ in
            let session = try await client.register("gus@example.com")
            let logout = try await client.post("/api/auth/logout", try jsonBody(RefreshRequest(refreshToken: session.refreshToken)))
            #expect(logout.status == .noContent)
            let refresh = try await client.post("/api/auth/refresh", try jsonBody(RefreshRequest(refreshToken: session.refreshToken)))
            #expect(refresh.status == .unauthorized)
        }
    }

    @Test func logoutEverywhereRefusesEarlierAccessTokens() async throws {
        let manual = ManualClock()
        try await withTestServer(clock: manual.clock) { client, _ in
            let session = try await client.register("hal@example.com")
            #expect(try await client.get("/api/me", token: session.token).status == .ok)
            let body = jsonBody(#"{"refreshToken": "\#(session.refreshToken)", "everywhere": true}"#)
            #expect(try await client.post("/api/auth/logout", body).status == .noContent)
            #expect(try await client.get("/api/me", token: session.token).status == .unauthorized)
            // A sign-in in the same second works (found by the S5 black-box suite: its token
            // used to be dated before the cut-off and refused for its whole life)
            let again = try decode(
                AuthResponse.self,
                try await client.post("/api/auth/login", try jsonBody(Credentials(email: "hal@example.com", password: "correct horse battery staple")))
            )
            #expect(try await client.get("/api/me", token: again.token).status == .ok)
            // and later too
            manual.advance(by: 2)
            let login = try decode(
                AuthResponse.self,
                try await client.post("/api/auth/login", try jsonBody(Credentials(email: "hal@example.com", password: "correct horse battery staple")))
            )
            #expect(try await client.get("/api/me", token: login.token).status == .ok)
        }
    }

    @Test func disabledUserIsRefusedImmediately() async throws {
        try await withTestServer { client, components in
            let session = try await client.register("ivy@example.com")
            // The user is read (and kept in the store's memory) by a request before it is disabled
            #expect(try await client.get("/api/me", token: session.token).status == .ok)
            try await components.store.setDisabled(userId: session.user.id, disabled: true)
            #expect(try await client.get("/api/me", token: session.token).status == .unauthorized)
            let login = try await client.post("/api/auth/login", try jsonBody(Credentials(email: "ivy@example.com", password: "correct horse battery staple")))
            #expect(login.status == .unauthorized)
        }
    }

    @Test func closedRegistrationRefusesNewAccounts() async throws {
        try await withTestServer(configure: { $0.registration = .closed }) { client, _ in
            let response = try await client.post("/api/auth/register", try jsonBody(Credentials(email: "jo@example.com", password: "long enough pw")))
            #expect(response.status == .forbidden)
            #expect(try decode(ErrorEnvelope.self, response).error.code == "REGISTRATION_CLOSED")
        }
    }

    @Test func signInsAndKeyChangesAreAudited() async throws {
        try await withTestServer { client, components in
            let session = try await client.register("kim@example.com")
            _ = try await client.post("/api/auth/login", try jsonBody(Credentials(email: "kim@example.com", password: "wrong password!!")))
            _ = try await client.post("/api/keys", jsonBody(#"{"name":"cli"}"#), token: session.token)
            let events = try await components.store.auditEvents(userId: session.user.id, limit: 10).map(\.event)
            #expect(events.contains("account.register"))
            #expect(events.contains("login.failure"))
            #expect(events.contains("key.create"))
        }
    }
}
