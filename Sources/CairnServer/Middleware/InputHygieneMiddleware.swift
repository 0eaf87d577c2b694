import CairnCore
import HTTPTypes
import Hummingbird

/// Normalizes what the URI carries before routing: a `%00` anywhere is refused (a NUL would cut
/// a string bound to SQL), and a `+` in the query string means a space, as browsers' form
/// encoding and `URLSearchParams` send it (the framework decodes only `%20`).
struct InputHygieneMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let path = request.head.path else { return try await next(request, context) }
        if path.range(of: "%00", options: .caseInsensitive) != nil {
            throw CairnError(.validation, JSONShape.nulMessage)
        }
        guard let question = path.firstIndex(of: "?"), path[question...].contains("+") else {
            return try await next(request, context)
        }
        var head = request.head
        head.path = String(path[..<question]) + path[question...].replacingOccurrences(of: "+", with: "%20")
        return try await next(Request(head: head, body: request.body), context)
    }
}

extension Parameters {
    /// A path parameter, percent-decoded (`a%3Ab` is `a:b`, `My%20Work` is `My Work`).
    func decoded(_ name: String) throws -> String {
        let raw = try self.require(name)
        return raw.removingPercentEncoding ?? raw
    }
}
