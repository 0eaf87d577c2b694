import CairnCore
import Hummingbird

/// `GET/POST /api/keys`, `DELETE /api/keys/{id}`.
struct APIKeyController {
    let auth: AuthService

    func addRoutes(to group: RouterGroup<CairnRequestContext>) {
        group.get("keys", use: self.list)
        group.post("keys", use: self.create)
        group.delete("keys/{id}", use: self.revoke)
    }

    @Sendable func list(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        return try JSONResponse.make(APIKeyList(keys: try await self.auth.listAPIKeys(for: identity)))
    }

    @Sendable func create(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let body = try await request.decodeJSON(as: CreateAPIKeyRequest.self, context: context, maxDepth: 4)
        return try JSONResponse.make(try await self.auth.createAPIKey(for: identity, request: body, ip: context.clientIP), status: .created)
    }

    @Sendable func revoke(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let id = try context.parameters.decoded("id")
        try await self.auth.revokeAPIKey(for: identity, id: id, ip: context.clientIP)
        return JSONResponse.noContent()
    }
}
