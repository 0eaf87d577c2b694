import HTTPTypes
import Hummingbird

/// `X-Content-Type-Options: nosniff` on every response, and `Cache-Control: no-store` on every
/// API response (they carry user data or credentials), including error responses.
struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[.xContentTypeOptions] = "nosniff"
        if request.uri.path.hasPrefix("/api/") || request.headers[.authorization] != nil {
            response.headers[.cacheControl] = "no-store"
        }
        response.headers[.referrerPolicy] = "no-referrer"
        return response
    }
}

extension HTTPField.Name {
    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
    static let xRequestID = HTTPField.Name("X-Request-Id")!
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
}
