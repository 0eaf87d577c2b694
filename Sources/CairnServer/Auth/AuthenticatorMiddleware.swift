import CairnCore
import HTTPTypes
import Hummingbird

/// Requires `Authorization: Bearer <access token | API key>` and applies the per-user API rate
/// limit. Credentials in the query string are never looked at.
struct AuthenticatorMiddleware: RouterMiddleware {
    typealias Context = CairnRequestContext
    let auth: AuthService
    let limiter: RateLimiter
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let bearer = Self.bearerToken(request.headers) else {
            self.metrics.authFailures.increment()
            throw CairnError.unauthorized
        }
        let identity: AuthIdentity
        do {
            identity = try await self.auth.authenticate(bearer: bearer)
        } catch let error as CairnError where error.code == .unauthorized {
            self.metrics.authFailures.increment()
            throw error
        }
        if let wait = self.limiter.acquire("user:\(identity.user.id)") {
            self.metrics.rateLimited.increment()
            throw CairnError(.rateLimited, "Too many requests", retryAfter: wait)
        }
        var context = context
        context.identity = identity
        context.logger[metadataKey: "user.id"] = .string(identity.user.id)
        return try await next(request, context)
    }

    /// The credential of an `Authorization: Bearer …` header.
    static func bearerToken(_ headers: HTTPFields) -> String? {
        guard let value = headers[.authorization] else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = String(parts[1]).trimmingWhitespace()
        return token.isEmpty ? nil : token
    }
}
