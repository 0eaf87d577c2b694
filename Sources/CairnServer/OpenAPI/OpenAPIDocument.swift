import CairnCore

/// The OpenAPI 3.1 description of every HTTP route, served at `/openapi.json`.
///
/// Written by hand next to the routes; a test walks the router's registered routes and fails
/// when one is missing here.
enum OpenAPIDocument {
    static func document(limits: Limits) -> JSONValue {
        [
            "openapi": "3.1.0",
            "info": [
                "title": "Cairn sync API",
                "version": .string(SystemController.version),
                "description": "Self-hosted real-time, offline-first sync for bookmarks and typed records.",
            ],
            "servers": [["url": "/"]],
            "components": [
                "securitySchemes": [
                    "bearer": ["type": "http", "scheme": "bearer", "description": "JWT access token or API key (ck_…)"]
                ],
                "schemas": self.schemas(limits: limits),
            ],
            "paths": .object(self.paths()),
        ]
    }

    // MARK: Paths

    static func paths() -> [String: JSONValue] {
        [
            "/api/auth/register": [
                "post": self.operation(
                    "register", "Create an account (with a `default` profile) and sign in", tag: "auth", secured: false,
                    body: "Credentials", responses: ["201": self.ref("AuthResponse"), "400": nil, "403": nil, "409": nil, "413": nil, "429": nil]
                )
            ],
            "/api/auth/login": [
                "post": self.operation(
                    "login", "Sign in with email and password", tag: "auth", secured: false, body: "Credentials",
                    responses: ["200": self.ref("AuthResponse"), "400": nil, "401": nil, "429": nil]
                )
            ],
            "/api/auth/refresh": [
                "post": self.operation(
                    "refresh", "Exchange a refresh token for a new pair (rotation; reuse revokes the family)", tag: "auth",
                    secured: false, body: "RefreshRequest", responses: ["200": self.ref("AuthResponse"), "400": nil, "401": nil, "429": nil]
                )
            ],
            "/api/auth/logout": [
                "post": self.operation(
                    "logout", "Revoke the refresh family of a token; `everywhere` also refuses every access token issued so far",
                    tag: "auth", secured: false, body: "LogoutRequest", responses: ["204": nil, "400": nil, "401": nil, "429": nil]
                )
            ],
            "/api/me": [
                "get": self.operation("me", "The signed-in user and their profiles", tag: "auth", responses: ["200": self.ref("MeResponse")])
            ],
            "/api/keys": [
                "get": self.operation("listKeys", "List API keys (never the secret)", tag: "keys", responses: ["200": self.ref("APIKeyList")]),
                "post": self.operation(
                    "createKey", "Create an API key; the secret is shown once", tag: "keys", body: "CreateAPIKeyRequest",
                    responses: ["201": self.ref("CreatedAPIKey"), "400": nil, "404": nil]
                ),
            ],
            "/api/keys/{id}": [
                "delete": self.operation(
                    "revokeKey", "Revoke an API key", tag: "keys", parameters: [self.pathParameter("id")],
                    responses: ["204": nil, "404": nil]
                )
            ],
            "/api/info": [
                "get": self.operation("info", "Version, limits, features, registration", tag: "system", secured: false, responses: ["200": self.ref("Info")])
            ],
            "/healthz": [
                "get": self.operation("healthz", "Liveness probe", tag: "system", secured: false, responses: ["200": self.ref("Status")])
            ],
            "/readyz": [
                "get": self.operation(
                    "readyz", "Readiness probe (the database answers)", tag: "system", secured: false,
                    responses: ["200": self.ref("Status"), "503": nil]
                )
            ],
            "/metrics": [
                "get": self.operation(
                    "metrics", "Prometheus metrics", tag: "system", secured: false,
                    responses: ["200": ["description": "Prometheus text exposition", "content": ["text/plain": ["schema": ["type": "string"]]]]]
                )
            ],
            "/openapi.json": [
                "get": self.operation(
                    "openapi", "This document", tag: "system", secured: false,
                    responses: ["200": ["description": "OpenAPI 3.1 document", "content": ["application/json": ["schema": ["type": "object"]]]]]
                )
            ],
        ]
    }

    // MARK: Builders

    static func ref(_ name: String) -> JSONValue { ["$ref": .string("#/components/schemas/\(name)")] }

    static func pathParameter(_ name: String) -> JSONValue {
        ["name": .string(name), "in": "path", "required": true, "schema": ["type": "string", "maxLength": 128]]
    }

    /// One operation. `responses` maps a status to a schema (`nil` = the error envelope).
    static func operation(
        _ id: String, _ summary: String, tag: String, secured: Bool = true, parameters: [JSONValue] = [], body: String? = nil,
        responses: [String: JSONValue?]
    ) -> JSONValue {
        var object: [String: JSONValue] = [
            "operationId": .string(id), "summary": .string(summary), "tags": [.string(tag)],
        ]
        if !parameters.isEmpty { object["parameters"] = .array(parameters) }
        if let body {
            object["requestBody"] = ["required": true, "content": ["application/json": ["schema": self.ref(body)]]]
        }
        var all = responses
        if secured {
            object["security"] = [["bearer": []]]
            all["401"] = .some(nil)
            all["429"] = .some(nil)
        }
        var rendered: [String: JSONValue] = [:]
        for (status, schema) in all {
            if status == "204" {
                rendered[status] = ["description": "No content"]
            } else if let schema {
                if schema["description"] != nil {
                    rendered[status] = schema
                } else {
                    rendered[status] = ["description": "Success", "content": ["application/json": ["schema": schema]]]
                }
            } else {
                rendered[status] = ["description": "Error", "content": ["application/json": ["schema": self.ref("Error")]]]
            }
        }
        object["responses"] = .object(rendered)
        return .object(object)
    }

    // MARK: Schemas

    static func object(_ properties: [String: JSONValue], required: [String]) -> JSONValue {
        ["type": "object", "properties": .object(properties), "required": .array(required.map { .string($0) })]
    }

    static func schemas(limits: Limits) -> JSONValue {
        let string: JSONValue = ["type": "string"]
        let integer: JSONValue = ["type": "integer"]
        let millis: JSONValue = ["type": "integer", "description": "milliseconds since 1970"]
        return [
            "Error": self.object(
                [
                    "error": self.object(
                        ["code": ["type": "string", "enum": .array(CairnError.Code.allCases.map { .string($0.rawValue) })], "message": string, "details": [:]],
                        required: ["code", "message"]
                    )
                ],
                required: ["error"]
            ),
            "Credentials": self.object(
                [
                    "email": ["type": "string", "maxLength": 254],
                    "password": ["type": "string", "minLength": 8, "maxLength": 1024],
                ],
                required: ["email", "password"]
            ),
            "RefreshRequest": self.object(["refreshToken": string], required: ["refreshToken"]),
            "LogoutRequest": self.object(["refreshToken": string, "everywhere": ["type": "boolean"]], required: ["refreshToken"]),
            "User": self.object(["id": string, "email": string, "createdAt": millis], required: ["id", "email"]),
            "AuthResponse": self.object(
                ["token": string, "refreshToken": string, "expiresIn": integer, "tokenType": string, "user": self.ref("User")],
                required: ["token", "refreshToken", "expiresIn", "tokenType", "user"]
            ),
            "Profile": self.object(
                ["id": string, "name": string, "syncVersion": integer, "createdAt": millis],
                required: ["id", "name", "syncVersion", "createdAt"]
            ),
            "MeResponse": self.object(
                [
                    "user": self.ref("User"), "profiles": ["type": "array", "items": self.ref("Profile")],
                    "authMethod": ["type": "string", "enum": ["token", "apiKey"]], "scopedProfile": ["type": ["string", "null"]],
                ],
                required: ["user", "profiles", "authMethod"]
            ),
            "APIKey": self.object(
                [
                    "id": string, "name": string, "prefix": string, "profileId": ["type": ["string", "null"]], "createdAt": millis,
                    "lastUsedAt": ["type": ["integer", "null"]],
                ],
                required: ["id", "name", "prefix", "createdAt"]
            ),
            "APIKeyList": self.object(["keys": ["type": "array", "items": self.ref("APIKey")]], required: ["keys"]),
            "CreateAPIKeyRequest": self.object(
                ["name": ["type": "string", "minLength": 1, "maxLength": 100], "profile": string],
                required: ["name"]
            ),
            "CreatedAPIKey": self.object(["key": self.ref("APIKey"), "secret": string], required: ["key", "secret"]),
            "Status": self.object(["status": string], required: ["status"]),
            "Info": self.object(
                [
                    "name": string, "version": string, "storage": string, "registration": string, "registrationOpen": ["type": "boolean"],
                    "limits": ["type": "object"], "features": ["type": "array", "items": string], "auth": ["type": "object"],
                ],
                required: ["name", "version", "storage", "registration", "limits", "features"]
            ),
        ]
    }
}
