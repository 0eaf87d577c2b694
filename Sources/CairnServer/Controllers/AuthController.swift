import CairnCore
import Foundation
import Hummingbird

/// `/api/auth/*` and `/api/me`.
struct AuthController {
    let auth: AuthService
    let store: any SyncStore
    let engine: SyncEngine
    let configuration: ServerConfiguration
    /// Per-IP bucket over every auth route.
    let ipLimiter: RateLimiter
    /// Failed sign-ins per (email, IP): an attacker elsewhere cannot use up the victim's bucket.
    let loginFailureLimiter: RateLimiter
    let metrics: ServerMetrics

    /// Registers the public auth routes.
    func addPublicRoutes(to group: RouterGroup<CairnRequestContext>) {
        group.post("register", use: self.register)
        group.post("login", use: self.login)
        group.post("refresh", use: self.refresh)
        group.post("logout", use: self.logout)
    }

    /// Registers the authenticated routes.
    func addProtectedRoutes(to group: RouterGroup<CairnRequestContext>) {
        group.get("me", use: self.me)
    }

    func limitByIP(_ context: CairnRequestContext) throws {
        if let wait = self.ipLimiter.acquire("ip:\(RateLimiter.addressKey(context.clientIP))") {
            self.metrics.rateLimited.increment()
            throw CairnError(.rateLimited, "Too many requests", retryAfter: wait)
        }
    }

    @Sendable func register(_ request: Request, context: CairnRequestContext) async throws -> Response {
        try self.limitByIP(context)
        guard self.configuration.registration == .open else {
            throw CairnError(.registrationClosed, "Registration is closed on this server")
        }
        let credentials = try await request.decodeJSON(as: Credentials.self, context: context, maxDepth: 4)
        let answer = try await self.auth.register(credentials, ip: context.clientIP)
        if let profile = try await self.store.profile(userId: answer.user.id, idOrName: "default") {
            try await self.engine.prepareBookmarks(profileId: profile.id)
        }
        return try JSONResponse.make(answer, status: .created)
    }

    @Sendable func login(_ request: Request, context: CairnRequestContext) async throws -> Response {
        try self.limitByIP(context)
        let credentials = try await request.decodeJSON(as: Credentials.self, context: context, maxDepth: 4)
        let key = "login:\(EmailAddress.normalized(credentials.email))|\(RateLimiter.addressKey(context.clientIP))"
        guard self.loginFailureLimiter.wouldAllow(key) else {
            self.metrics.rateLimited.increment()
            throw CairnError(.rateLimited, "Too many failed sign-ins; try again later", retryAfter: self.loginFailureLimiter.retryAfter(key))
        }
        do {
            return try JSONResponse.make(try await self.auth.login(credentials, ip: context.clientIP))
        } catch let error as CairnError where error.code == .unauthorized {
            _ = self.loginFailureLimiter.acquire(key)
            self.metrics.authFailures.increment()
            throw error
        }
    }

    @Sendable func refresh(_ request: Request, context: CairnRequestContext) async throws -> Response {
        try self.limitByIP(context)
        let body = try await request.decodeJSON(as: RefreshRequest.self, context: context, maxDepth: 4)
        do {
            return try JSONResponse.make(try await self.auth.refresh(body, ip: context.clientIP))
        } catch let error as CairnError where error.code == .unauthorized {
            self.metrics.authFailures.increment()
            throw error
        }
    }

    struct LogoutBody: Decodable {
        var refreshToken: String
        var everywhere: Bool?
    }

    @Sendable func logout(_ request: Request, context: CairnRequestContext) async throws -> Response {
        try self.limitByIP(context)
        let body = try await request.decodeJSON(as: LogoutBody.self, context: context, maxDepth: 4)
        try await self.auth.logout(RefreshRequest(refreshToken: body.refreshToken), everywhere: body.everywhere ?? false, ip: context.clientIP)
        return JSONResponse.noContent()
    }

    @Sendable func me(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        var profiles = try await self.store.profiles(userId: identity.user.id)
        if let scoped = identity.scopedProfileId {
            profiles = profiles.filter { $0.id == scoped }
        }
        let method: String
        switch identity.method {
        case .accessToken: method = "token"
        case .apiKey: method = "apiKey"
        }
        return try JSONResponse.make(
            MeResponse(user: identity.user.info, profiles: profiles.map(\.info), authMethod: method, scopedProfile: identity.scopedProfileId)
        )
    }
}
