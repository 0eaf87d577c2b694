import HTTPTypes
import Hummingbird

/// CORS from the allowlist only: an allowed `Origin` is echoed with `Vary: Origin`; any other
/// origin (including `null`) gets no `Access-Control-Allow-Origin` at all. Preflight requests
/// from allowed origins are answered here with 204.
struct CORSAllowlistMiddleware<Context: RequestContext>: RouterMiddleware {
    let allowlist: OriginAllowlist

    static var allowedMethods: String { "GET, POST, PUT, PATCH, DELETE, OPTIONS" }
    static var allowedHeaders: String { "Authorization, Content-Type, If-Match, If-None-Match, X-Request-Id, X-Client-Id" }
    static var exposedHeaders: String { "ETag, Retry-After, X-Request-Id" }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin] else {
            return try await next(request, context)
        }
        let allowed = self.allowlist.allows(origin)
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            var headers = HTTPFields()
            headers[.vary] = "Origin"
            if allowed {
                headers[.accessControlAllowOrigin] = origin
                headers[.accessControlAllowMethods] = Self.allowedMethods
                headers[.accessControlAllowHeaders] = Self.allowedHeaders
                headers[.accessControlMaxAge] = "600"
            }
            return Response(status: allowed ? .noContent : .forbidden, headers: headers)
        }
        var response = try await next(request, context)
        response.headers[.vary] = "Origin"
        if allowed {
            response.headers[.accessControlAllowOrigin] = origin
            response.headers[.accessControlExposeHeaders] = Self.exposedHeaders
        }
        return response
    }
}
