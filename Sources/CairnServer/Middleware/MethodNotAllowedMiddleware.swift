import CairnCore
import HTTPTypes
import Hummingbird
import Synchronization

/// The routes the router serves, by path pattern, to tell "no such path" (404) from "not with
/// this method" (405).
final class RouteTable: Sendable {
    private let routes = Mutex<[(method: HTTPRequest.Method, pattern: [Substring])]>([])

    /// Records the router's routes (after they are all added).
    func fill<Context>(from router: Router<Context>) {
        let entries = router.routes.map { route in
            (method: route.method, pattern: route.path.description.split(separator: "/"))
        }
        self.routes.withLock { $0 = entries }
    }

    /// The methods served for `path` (a `{name}` capture matches any one segment).
    func methods(for path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/")
        return self.routes.withLock { routes in
            routes.filter { route in
                route.pattern.count == segments.count
                    && zip(route.pattern, segments).allSatisfy { pattern, segment in pattern.hasPrefix("{") || pattern.hasPrefix(":") || pattern == segment }
            }.map(\.method)
        }
    }
}

/// Answers `405 METHOD_NOT_ALLOWED` with an `Allow` header when the router found no route but the
/// path is served with other methods (`DELETE /api/info`, `PUT /api/sync/push`).
struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    let table: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let methods = self.table.methods(for: request.uri.path)
            guard !methods.isEmpty, !methods.contains(request.method) else { throw error }
            var response = ErrorMiddleware<Context>.response(
                for: CairnError(.methodNotAllowed, "\(request.method.rawValue) is not allowed on this path"))
            response.headers[.allow] = Set(methods.map(\.rawValue)).sorted().joined(separator: ", ")
            return response
        }
    }
}
