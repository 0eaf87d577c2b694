import HTTPTypes
import Hummingbird

/// Settles the client address: the TCP peer, or, only when the peer is a configured trusted
/// proxy, the last address that proxy appended to `X-Forwarded-For`.
struct ClientAddressMiddleware: RouterMiddleware {
    typealias Context = CairnRequestContext
    let trustedProxies: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !self.trustedProxies.isEmpty, let peer = context.peerAddress, self.trustedProxies.contains(peer),
            let forwarded = request.headers[.xForwardedFor],
            let last = forwarded.split(separator: ",").last.map({ String($0).trimmingWhitespace() }), !last.isEmpty
        else {
            return try await next(request, context)
        }
        var context = context
        context.clientIP = last
        return try await next(request, context)
    }
}

import CairnCore
