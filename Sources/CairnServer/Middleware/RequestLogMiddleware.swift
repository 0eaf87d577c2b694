import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Gives every request an id (`X-Request-Id`, also in every log line of the request) and logs
/// one line per request: method, the matched route's template (`/api/records/{collection}/{id}`,
/// never the concrete path), status, duration. Concrete paths, headers, bodies and query strings
/// are never logged: they may hold tokens, passwords or user data (record ids and collection
/// names are chosen by users).
struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let requestId = context.logger[metadataKey: "hb.request.id"]?.description ?? Identifiers.randomToken(bytes: 9)
        let start = ContinuousClock.now
        do {
            var response = try await next(request, context)
            response.headers[.xRequestID] = requestId
            Self.log(request, route: context.endpointPath, status: response.status.code, start: start, logger: context.logger)
            return response
        } catch {
            Self.log(request, route: context.endpointPath, status: nil, start: start, logger: context.logger)
            throw error
        }
    }

    static func log(_ request: Request, route: String?, status: Int?, start: ContinuousClock.Instant, logger: Logger) {
        let elapsed = ContinuousClock.now - start
        let milliseconds = Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000
        logger.info(
            "request",
            metadata: [
                "http.method": .string(request.method.rawValue),
                "http.route": .string(route ?? "(no route)"),
                "http.status": .string(status.map(String.init) ?? "error"),
                "duration.ms": .string(String(format: "%.2f", milliseconds)),
            ]
        )
    }
}
