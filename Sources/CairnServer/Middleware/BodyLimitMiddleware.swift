import CairnCore
import HTTPTypes
import Hummingbird

/// Refuses a body over the limit before reading it (by `Content-Length`) and caps streamed
/// bodies at the same size while they are read (`collect(upTo:)` stops at the limit), so an
/// oversized body is never buffered.
struct BodyLimitMiddleware: RouterMiddleware {
    typealias Context = CairnRequestContext
    let limit: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > self.limit {
            throw CairnError(.payloadTooLarge, "Request body exceeds \(self.limit) bytes")
        }
        var context = context
        context.maxUploadSize = self.limit
        return try await next(request, context)
    }
}
