import CairnCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging

/// `GET /api/sync/ws` (the sync WebSocket) and `POST /api/auth/ws-ticket`.
///
/// An upgrade is authenticated before the `101` when it carries `Authorization: Bearer …` or a
/// `?ticket=` from `/api/auth/ws-ticket`; without either, the socket opens and must send
/// `auth` within 10 seconds. An `Origin` header, when present, must be allowlisted.
struct WebSocketController {
    let hub: SyncHub
    let engine: SyncEngine
    let auth: AuthService
    let tickets: WebSocketTickets
    let profiles: ProfileResolver
    let allowlist: OriginAllowlist
    let configuration: ServerConfiguration
    let logger: Logger

    static let path: RouterPath = "api/sync/ws"

    /// The upgrade route, on the WebSocket router.
    func addUpgradeRoute(to router: Router<CairnRequestContext>) {
        router.add(middleware: RequestLogMiddleware())
        router.add(middleware: ErrorMiddleware())
        router.add(middleware: SecurityHeadersMiddleware())
        let hub = self.hub
        let engine = self.engine
        let profiles = self.profiles
        let configuration = self.configuration
        let logger = self.logger
        router.group().add(middleware: UpgradeAuthenticator(controller: self)).ws(Self.path) { _, _ in
            .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            let connection = SyncConnection(hub: hub, engine: engine, profiles: profiles, configuration: configuration, logger: logger)
            let request = context.request
            let preauthenticated = context.requestContext.identity.flatMap { identity in
                context.requestContext.webSocketProfile.map { profile in
                    (identity, profile, request.uri.queryParameters.get("clientId") ?? request.headers[.clientID])
                }
            }
            try await connection.run(inbound: inbound, outbound: outbound, preauthenticated: preauthenticated)
        }
    }

    /// The plain-HTTP side: a ticket route, and an answer for requests to the socket path that
    /// were not upgraded (wrong origin, bad credential, or not a WebSocket request at all).
    func addHTTPRoutes(public router: Router<CairnRequestContext>, protected api: RouterGroup<CairnRequestContext>) {
        api.post("auth/ws-ticket") { _, context in
            let identity = try context.requireIdentity()
            struct Ticket: Encodable {
                var ticket: String
                var expiresIn: Int
            }
            return try JSONResponse.make(Ticket(ticket: self.tickets.issue(for: identity), expiresIn: 30), status: .created)
        }
        router.get(Self.path) { request, context -> Response in
            try self.checkOrigin(request)
            if AuthenticatorMiddleware.bearerToken(request.headers) != nil || request.uri.queryParameters.get("ticket") != nil {
                _ = try await self.identity(for: request)
            }
            throw CairnError(.upgradeRequired, "This endpoint speaks WebSocket: send an Upgrade: websocket request")
        }
    }

    /// An `Origin`, when present, must be allowlisted or name this server's own host (native
    /// clients such as the Swift SDK send the server's host as their origin, some without the
    /// port). Credentials never come from cookies, so the origin check is defence in depth.
    func checkOrigin(_ request: Request) throws {
        guard let origin = request.headers[.origin] else { return }
        if self.allowlist.allows(origin) { return }
        if let authority = request.head.authority, let range = origin.range(of: "://") {
            let scheme = origin[..<range.lowerBound].lowercased()
            if ["http", "https", "ws", "wss"].contains(scheme), Self.hostname(String(origin[range.upperBound...])) == Self.hostname(authority) {
                return
            }
        }
        throw CairnError(.forbidden, "Origin not allowed")
    }

    /// The host of `host[:port]` (IPv6 literals kept in brackets), lower-cased.
    static func hostname(_ authority: String) -> String {
        let lower = authority.lowercased()
        if lower.hasPrefix("["), let end = lower.firstIndex(of: "]") { return String(lower[...end]) }
        return String(lower.split(separator: ":", maxSplits: 1).first ?? "")
    }

    /// The identity behind a bearer header or ticket; `nil` when the request carries neither.
    func identity(for request: Request) async throws -> AuthIdentity? {
        if let bearer = AuthenticatorMiddleware.bearerToken(request.headers) {
            return try await self.auth.authenticate(bearer: bearer)
        }
        if let ticket = request.uri.queryParameters.get("ticket") {
            guard let identity = self.tickets.redeem(ticket), try await self.auth.stillValid(identity) else { throw CairnError.unauthorized }
            return identity
        }
        return nil
    }

    /// Authenticates an upgrade before the `101`; refuses a foreign origin or a bad credential.
    struct UpgradeAuthenticator: RouterMiddleware {
        typealias Context = CairnRequestContext
        let controller: WebSocketController

        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            try self.controller.checkOrigin(request)
            var context = context
            if let identity = try await self.controller.identity(for: request) {
                context.identity = identity
                context.webSocketProfile = try await self.controller.profiles.resolve(identity: identity, wanted: request.uri.queryParameters.get("profile"))
            }
            return try await next(request, context)
        }
    }
}
