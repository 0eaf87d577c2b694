import CairnCore
import Foundation
import Hummingbird

/// `GET /api/info`, `/healthz`, `/readyz`, `/metrics`, `/openapi.json`.
struct SystemController {
    let store: any SyncStore
    let configuration: ServerConfiguration
    let metrics: ServerMetrics

    /// The server's version string.
    static let version = "0.1.0"

    struct Info: Encodable {
        var name: String
        var version: String
        var storage: String
        var registration: String
        var registrationOpen: Bool
        var limits: Limits
        var features: [String]
        var auth: AuthInfo
    }

    struct AuthInfo: Encodable {
        var accessTokenLifetime: Int
        var refreshTokenRotation: Bool
        var apiKeys: Bool
    }

    func addRoutes(to router: Router<CairnRequestContext>) {
        router.get("api/info", use: self.info)
        router.get("healthz", use: self.healthz)
        router.get("readyz", use: self.readyz)
        router.get("metrics", use: self.prometheus)
        router.get("openapi.json", use: self.openapi)
    }

    @Sendable func info(_ request: Request, context: CairnRequestContext) async throws -> Response {
        try JSONResponse.make(
            Info(
                name: "cairn", version: Self.version, storage: self.store.backendName,
                registration: self.configuration.registration.rawValue, registrationOpen: self.configuration.registration == .open,
                limits: self.configuration.limits, features: ["accounts", "refresh-rotation", "api-keys", "profiles", "bookmarks", "bookmark-search", "bookmark-import-export", "sync-push-pull", "conflict-strategies", "websocket", "records", "profiles-api", "seed-001", "seed-002", "seed-004"],
                auth: AuthInfo(accessTokenLifetime: Int(self.configuration.accessTokenLifetime), refreshTokenRotation: true, apiKeys: true)
            )
        )
    }

    struct Status: Encodable {
        var status: String
    }

    @Sendable func healthz(_ request: Request, context: CairnRequestContext) async throws -> Response {
        try JSONResponse.make(Status(status: "ok"))
    }

    @Sendable func readyz(_ request: Request, context: CairnRequestContext) async throws -> Response {
        do {
            try await self.store.ping()
            return try JSONResponse.make(Status(status: "ready"))
        } catch {
            context.logger.warning("Readiness check failed: database did not answer")
            throw CairnError(.unavailable, "Database unavailable")
        }
    }

    @Sendable func prometheus(_ request: Request, context: CairnRequestContext) async throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: self.metrics.exposition())))
    }

    @Sendable func openapi(_ request: Request, context: CairnRequestContext) async throws -> Response {
        try JSONResponse.make(OpenAPIDocument.document(limits: self.configuration.limits))
    }
}
