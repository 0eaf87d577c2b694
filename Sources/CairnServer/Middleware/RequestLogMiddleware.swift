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
        logger.info(
            "request",
            metadata: [
                "http.method": .string(request.method.rawValue),
                "http.route": .string(route ?? "(no route)"),
                "http.status": .string(status.map(String.init) ?? "error"),
                "duration.ms": .string(Self.milliseconds(elapsed)),
            ]
        )
    }

    /// `elapsed` in milliseconds with two decimals, rounded (`"12.35"`). Written with integers:
    /// `String(format:)` was a third of this line's cost, and the line is written per request.
    static func milliseconds(_ elapsed: Duration) -> String {
        let (seconds, attoseconds) = elapsed.components
        // Hundredths of a millisecond: 10^13 attoseconds each.
        let hundredths = max(0, seconds) * 100_000 + (max(0, attoseconds) + 5_000_000_000_000) / 10_000_000_000_000
        let fraction = hundredths % 100
        return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}
