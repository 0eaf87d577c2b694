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
        self.accountPaths().merging(self.bookmarkPaths()) { first, _ in first }.merging(self.syncPaths()) { first, _ in first }
            .merging(self.recordPaths()) { first, _ in first }.merging(self.seedPaths()) { first, _ in first }
    }

    static let profileQuery: JSONValue = [
        "name": "profile", "in": "query", "required": false, "description": "Profile id or name (default: `default`)",
        "schema": ["type": "string", "maxLength": 128],
    ]

    static func query(_ name: String, _ type: String, _ description: String) -> JSONValue {
        ["name": .string(name), "in": "query", "required": false, "description": .string(description), "schema": ["type": .string(type)]]
    }

    static let ifMatch: JSONValue = [
        "name": "If-Match", "in": "header", "required": false,
        "description": "Strict optimistic locking: the version last seen (the ETag); stale → 412 CONFLICT_DETECTED",
        "schema": ["type": "string"],
    ]

    static func bookmarkPaths() -> [String: JSONValue] {
        let idPath = [self.pathParameter("id"), self.profileQuery]
        return [
            "/api/bookmarks": [
                "get": self.operation(
                    "listBookmarks", "The bookmark tree, flat (default) or nested", tag: "bookmarks",
                    parameters: [self.profileQuery, self.query("format", "string", "flat or tree"), self.query("includeDeleted", "boolean", "include tombstones")],
                    responses: ["200": self.ref("BookmarkList"), "400": nil, "404": nil]
                ),
                "post": self.operation(
                    "createBookmark", "Create a bookmark or folder; without an id, an existing bookmark with the same URL in the folder is returned (200, deduplicated)",
                    tag: "bookmarks", parameters: [self.profileQuery], body: "BookmarkWrite",
                    responses: ["201": self.ref("Bookmark"), "200": self.ref("Bookmark"), "400": nil, "403": nil, "404": nil, "409": nil, "413": nil]
                ),
            ],
            "/api/bookmarks/{id}": [
                "get": self.operation(
                    "getBookmark", "One bookmark (ETag = its version)", tag: "bookmarks",
                    parameters: idPath + [self.query("includeDeleted", "boolean", "return a tombstone too")], responses: ["200": self.ref("Bookmark"), "404": nil]
                ),
                "patch": self.operation(
                    "updateBookmark", "Change fields (and optionally move); If-Match for strict locking", tag: "bookmarks",
                    parameters: idPath + [self.ifMatch], body: "BookmarkWrite",
                    responses: ["200": self.ref("Bookmark"), "400": nil, "403": nil, "404": nil, "409": nil, "412": nil, "413": nil]
                ),
                "delete": self.operation(
                    "deleteBookmark", "Tombstone a bookmark, or a folder and its whole subtree", tag: "bookmarks", parameters: idPath + [self.ifMatch],
                    responses: ["200": self.ref("DeleteResponse"), "403": nil, "404": nil, "412": nil]
                ),
            ],
            "/api/bookmarks/{id}/move": [
                "post": self.operation(
                    "moveBookmark", "Move under parentId at index / afterId / beforeId / position; a cycle is 409 CYCLE", tag: "bookmarks",
                    parameters: idPath + [self.ifMatch], body: "BookmarkWrite",
                    responses: ["200": self.ref("Bookmark"), "400": nil, "403": nil, "404": nil, "409": nil, "412": nil]
                )
            ],
            "/api/bookmarks/sync": [
                "post": self.operation(
                    "syncBookmarks", "Seed 000 batch sync of offline changes", tag: "bookmarks", parameters: [self.profileQuery], body: "SeedSyncRequest",
                    responses: ["200": self.ref("SeedSyncResponse"), "400": nil, "404": nil, "410": nil, "413": nil]
                )
            ],
            "/api/bookmarks/search": [
                "get": self.operation(
                    "searchBookmarks", "Full-text search over title, URL, tags and notes (prefix terms, best first)", tag: "bookmarks",
                    parameters: [
                        self.profileQuery, ["name": "q", "in": "query", "required": true, "schema": ["type": "string", "minLength": 1, "maxLength": 1024]],
                        self.query("limit", "integer", "1–200, default 50"), self.query("offset", "integer", "default 0"),
                    ],
                    responses: ["200": self.ref("SearchResponse"), "400": nil, "404": nil]
                )
            ],
            "/api/bookmarks/duplicates": [
                "get": self.operation(
                    "bookmarkDuplicates", "Live bookmarks sharing a URL across folders (suggestions; nothing is merged)", tag: "bookmarks",
                    parameters: [self.profileQuery], responses: ["200": self.ref("DuplicatesResponse"), "404": nil]
                )
            ],
            "/api/bookmarks/export": [
                "get": self.operation(
                    "exportBookmarks", "Netscape bookmark HTML (every browser imports it) or JSON", tag: "bookmarks",
                    parameters: [self.profileQuery, self.query("format", "string", "html (default) or json")],
                    responses: [
                        "200": [
                            "description": "The bookmark file",
                            "content": ["text/html": ["schema": ["type": "string"]], "application/json": ["schema": self.ref("ExportJSON")]],
                        ],
                        "400": nil, "404": nil,
                    ]
                )
            ],
            "/api/bookmarks/import": [
                "post": [
                    "operationId": "importBookmarks",
                    "summary": "Import a Netscape bookmark HTML file (Firefox, Chrome…) or JSON tree; re-importing adds nothing",
                    "tags": ["bookmarks"], "security": [["bearer": []]],
                    "parameters": [self.profileQuery, self.query("parentId", "string", "import under this folder")],
                    "requestBody": [
                        "required": true,
                        "content": ["text/html": ["schema": ["type": "string"]], "application/json": ["schema": self.ref("ExportJSON")]],
                    ],
                    "responses": [
                        "200": ["description": "Success", "content": ["application/json": ["schema": self.ref("ImportSummary")]]],
                        "400": self.errorResponse, "401": self.errorResponse, "404": self.errorResponse, "413": self.errorResponse, "429": self.errorResponse,
                    ],
                ]
            ],
        ]
    }

    static func syncPaths() -> [String: JSONValue] {
        [
            "/api/sync/push": [
                "post": self.operation(
                    "push", "Push operations of any collections in one transaction", tag: "sync", parameters: [self.profileQuery], body: "PushRequest",
                    responses: ["200": self.ref("PushResponse"), "400": nil, "404": nil, "410": nil, "413": nil]
                )
            ],
            "/api/sync/pull": [
                "get": self.operation(
                    "pull", "Records changed since a cursor (tombstones included), oldest first", tag: "sync",
                    parameters: [
                        self.profileQuery, self.query("since", "integer", "cursor (default 0)"),
                        self.query("collections", "string", "comma-separated collection names"), self.query("limit", "integer", "1–5000, default 1000"),
                    ],
                    responses: ["200": self.ref("PullResponse"), "400": nil, "404": nil, "410": nil]
                )
            ],
            "/api/sync/ws": [
                "get": self.operation(
                    "syncWebSocket",
                    "The sync WebSocket (seed 000 messages; see docs/websocket.md). Authenticate with Authorization: Bearer, ?ticket= from /api/auth/ws-ticket, or an in-band auth message within 10 s. A plain GET answers 426.",
                    tag: "sync", secured: false,
                    parameters: [
                        self.profileQuery, self.query("ticket", "string", "one-time ticket from /api/auth/ws-ticket"),
                        self.query("clientId", "string", "this device's id, recorded on its changes"),
                    ],
                    responses: ["101": ["description": "Switching protocols"], "400": nil, "401": nil, "403": nil, "404": nil, "426": nil]
                )
            ],
            "/api/sync/conflicts": [
                "get": self.operation(
                    "conflicts", "Conflicts logged under the manual strategy", tag: "sync",
                    parameters: [self.profileQuery, self.query("includeResolved", "boolean", "also resolved ones"), self.query("limit", "integer", "1–1000")],
                    responses: ["200": self.ref("ConflictList"), "400": nil, "404": nil]
                )
            ],
        ]
    }

    static let anyObject: JSONValue = ["type": "object"]
    static func objectBody(_ description: String) -> JSONValue {
        ["required": true, "content": ["application/json": ["schema": ["type": "object", "description": .string(description)]]]]
    }

    /// An operation whose request body (if any) and answers are JSON objects described in prose.
    static func loose(
        _ id: String, _ summary: String, tag: String, parameters: [JSONValue] = [], body: String? = nil, success: String = "200",
        errors: [String] = ["400", "404"]
    ) -> JSONValue {
        var responses: [String: JSONValue?] = [success: .some(anyObject)]
        for code in errors { responses[code] = .some(nil) }
        guard case .object(var object) = self.operation(id, summary, tag: tag, parameters: parameters, responses: responses) else { return .null }
        if let body { object["requestBody"] = self.objectBody(body) }
        return .object(object)
    }

    static func recordPaths() -> [String: JSONValue] {
        let collection = self.pathParameter("collection")
        let id = self.pathParameter("id")
        return [
            "/api/profiles": [
                "get": self.loose("listProfiles", "The user's profiles", tag: "profiles", errors: []),
                "post": self.loose("createProfile", "Create a profile {name, settings?}", tag: "profiles", body: "{name, settings}", success: "201", errors: ["400", "403", "409"]),
            ],
            "/api/profiles/{id}": [
                "get": self.loose("getProfile", "One profile (id or name)", tag: "profiles", parameters: [id], errors: ["404"]),
                "patch": self.loose("updateProfile", "Rename or change sync settings", tag: "profiles", parameters: [id], body: "{name?, settings?}", errors: ["400", "403", "404", "409"]),
                "delete": self.operation("deleteProfile", "Tombstone everything in the profile and remove it", tag: "profiles", parameters: [id], responses: ["204": nil, "403": nil, "404": nil]),
            ],
            "/api/records/{collection}": [
                "get": self.loose(
                    "listRecords", "Records changed after `since` (default: all live)", tag: "records",
                    parameters: [collection, self.profileQuery, self.query("since", "integer", "cursor"), self.query("limit", "integer", "1–5000"), self.query("includeDeleted", "boolean", "tombstones too")]
                ),
                "post": self.loose("createRecord", "Create a record {id?, data, opId?}", tag: "records", parameters: [collection, self.profileQuery], body: "{id?, data, opId?, hlc?}", success: "201", errors: ["400", "404", "409", "413"]),
            ],
            "/api/records/{collection}/{id}": [
                "get": self.loose("getRecord", "One record (ETag = version)", tag: "records", parameters: [collection, id, self.profileQuery], errors: ["400", "404"]),
                "put": self.loose("putRecord", "Replace the record's data (upsert)", tag: "records", parameters: [collection, id, self.profileQuery, self.ifMatch], body: "{data, expectedVersion?}", errors: ["400", "404", "409", "412", "413"]),
                "patch": self.loose("patchRecord", "Change some fields", tag: "records", parameters: [collection, id, self.profileQuery, self.ifMatch], body: "{data, expectedVersion?}", errors: ["400", "404", "409", "412", "413"]),
                "delete": self.loose("deleteRecord", "Tombstone the record", tag: "records", parameters: [collection, id, self.profileQuery, self.ifMatch], errors: ["400", "404", "412"]),
            ],
            "/api/sync/status": [
                "get": self.loose("syncStatus", "Cursor, last change, pending queued operations, open conflicts, devices (also seed 001's status)", tag: "sync", parameters: [self.profileQuery], errors: ["404"])
            ],
        ]
    }

    static func seedPaths() -> [String: JSONValue] {
        let id = self.pathParameter("id")
        let workspace = self.query("workspaceId", "string", "workspace (= profile) id")
        var paths: [String: JSONValue] = [
            "/api/sync/operations": ["post": self.loose("seed001Operations", "Seed 001: apply {operations: [{id, type, entity, entityId, data, timestamp}]}", tag: "seed-001", parameters: [self.profileQuery], body: "{operations}", errors: ["400", "404", "413"])],
            "/api/sync/pending": ["get": self.loose("seed001Pending", "Seed 001: queued operations not yet applied", tag: "seed-001", parameters: [self.profileQuery], errors: ["404"])],
            "/api/sync/changes": ["get": self.loose("seed001Changes", "Seed 001: entities changed at or after `since` (ISO 8601)", tag: "seed-001", parameters: [self.profileQuery, self.query("since", "string", "ISO 8601 or ms")])],
            "/api/sync/full": ["post": self.loose("seed001Full", "Seed 001: replace the named entity lists in one transaction", tag: "seed-001", parameters: [self.profileQuery], body: "{books, collections, tags, readings, ratings, settings}", errors: ["400", "404", "413"])],
            "/api/sync/queue": ["post": self.loose("seed001Queue", "Seed 001: queue an operation, applied shortly after", tag: "seed-001", parameters: [self.profileQuery], body: "{type, entity, entityId, data}", success: "201", errors: ["400", "404", "409"])],
            "/api/sync/mark-synced": ["post": self.loose("seed001MarkSynced", "Seed 001: mark queued operations synced", tag: "seed-001", parameters: [self.profileQuery], body: "{operationIds}")],
            "/api/sync/clear": ["delete": self.loose("seed001Clear", "Seed 001: delete synced queued operations", tag: "seed-001", parameters: [self.profileQuery], errors: ["404"])],
            "/api/workspaces": [
                "get": self.loose("seed002Workspaces", "Seed 002: workspaces (= profiles)", tag: "seed-002", errors: []),
                "post": self.loose("seed002CreateWorkspace", "Seed 002: create a workspace", tag: "seed-002", body: "{name}", success: "201", errors: ["400", "403", "409"]),
            ],
            "/api/workspaces/{id}": [
                "get": self.loose("seed002Workspace", "Seed 002: one workspace", tag: "seed-002", parameters: [id], errors: ["404"]),
                "patch": self.loose("seed002UpdateWorkspace", "Seed 002: rename a workspace", tag: "seed-002", parameters: [id], body: "{name}", errors: ["400", "403", "404", "409"]),
                "delete": self.loose("seed002DeleteWorkspace", "Seed 002: delete a workspace", tag: "seed-002", parameters: [id], errors: ["403", "404"]),
            ],
            "/api/view-settings": [
                "get": self.loose("seed002ViewSettings", "Seed 002: view settings", tag: "seed-002", parameters: [workspace, self.query("viewKey", "string", "one view")], errors: ["404"]),
                "put": self.loose("seed002PutViewSettings", "Seed 002: upsert by viewKey", tag: "seed-002", parameters: [workspace], body: "{viewKey, workspaceId?, …settings}", errors: ["400", "404", "413"]),
            ],
            "/api/sync/delta": ["get": self.loose("seed002Delta", "Seed 002: every entity changed at or after `since`, and serverTime", tag: "seed-002", parameters: [workspace, self.query("since", "string", "ISO 8601 or ms")])],
            "/items": [
                "get": self.loose("seed004Items", "Seed 004: all items", tag: "seed-004", parameters: [self.profileQuery, self.query("includeDeleted", "boolean", "tombstones too")], errors: ["404"]),
                "post": self.loose("seed004SaveItem", "Seed 004: create or update an item (sync_id dedup, content dedup, deleted_at tombstones)", tag: "seed-004", parameters: [self.profileQuery], body: "{type, content, tags, sync_id?, deleted_at?, updated_at?}", success: "201", errors: ["400", "404", "413"]),
            ],
            "/items/since/{timestamp}": ["get": self.loose("seed004ItemsSince", "Seed 004: items changed at or after the timestamp, tombstones included", tag: "seed-004", parameters: [self.pathParameter("timestamp"), self.profileQuery])],
            "/items/{id}": [
                "get": self.loose("seed004Item", "Seed 004: one item", tag: "seed-004", parameters: [id, self.profileQuery, self.query("includeDeleted", "boolean", "return a tombstone too")], errors: ["404"]),
                "delete": self.loose("seed004DeleteItem", "Seed 004: delete (content removed, tombstone kept)", tag: "seed-004", parameters: [id, self.profileQuery], errors: ["404"]),
            ],
            "/items/{id}/tags": ["patch": self.loose("seed004ItemTags", "Seed 004: replace an item's tags", tag: "seed-004", parameters: [id, self.profileQuery], body: "{tags}")],
            "/profiles": [
                "get": self.loose("seed004Profiles", "Seed 004: the user's profiles", tag: "seed-004", errors: []),
                "post": self.loose("seed004CreateProfile", "Seed 004: create a profile", tag: "seed-004", body: "{name}", success: "201", errors: ["400", "403", "409"]),
            ],
            "/profiles/{id}": ["delete": self.loose("seed004DeleteProfile", "Seed 004: delete a profile", tag: "seed-004", parameters: [id], errors: ["403", "404"])],
        ]
        for (route, singular) in [("cards", "card"), ("collections", "collection"), ("todos", "todo"), ("events", "event")] {
            paths["/api/\(route)"] = [
                "get": self.loose("seed002List\(singular)", "Seed 002: \(route) of a workspace (`since` for a delta)", tag: "seed-002", parameters: [workspace, self.query("since", "string", "ISO 8601 or ms"), self.query("includeDeleted", "boolean", "soft-deleted too")]),
                "post": self.loose("seed002Create\(singular)", "Seed 002: create a \(singular) (client id accepted)", tag: "seed-002", parameters: [workspace], body: "{id?, workspaceId?, …fields}", success: "201", errors: ["400", "404", "413"]),
            ]
            paths["/api/\(route)/{id}"] = [
                "get": self.loose("seed002Get\(singular)", "Seed 002: one \(singular)", tag: "seed-002", parameters: [id, workspace], errors: ["404"]),
                "patch": self.loose("seed002Update\(singular)", "Seed 002: change a \(singular)", tag: "seed-002", parameters: [id, workspace], body: "{…fields}", errors: ["400", "404", "413"]),
                "delete": self.loose("seed002Delete\(singular)", "Seed 002: soft-delete a \(singular)", tag: "seed-002", parameters: [id, workspace], errors: ["404"]),
            ]
        }
        return paths
    }

    static let errorResponse: JSONValue = ["description": "Error", "content": ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]]]

    static func accountPaths() -> [String: JSONValue] {
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
            "/api/auth/ws-ticket": [
                "post": self.operation(
                    "wsTicket", "A one-time, 30-second ticket for opening the sync WebSocket from a browser", tag: "auth",
                    responses: ["201": self.ref("WebSocketTicket")]
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
            "WebSocketTicket": self.object(["ticket": string, "expiresIn": integer], required: ["ticket", "expiresIn"]),
            "Bookmark": self.object(
                [
                    "id": string, "parentId": ["type": ["string", "null"]], "title": string, "url": ["type": ["string", "null"]],
                    "favicon": ["type": ["string", "null"]], "isFolder": ["type": "boolean"], "position": string, "sortOrder": integer,
                    "tags": ["type": "array", "items": string], "notes": ["type": ["string", "null"]], "dateAdded": millis, "dateModified": millis,
                    "syncVersion": integer, "isDeleted": ["type": "boolean"], "deletedAt": ["type": ["integer", "null"]],
                    "deduplicated": ["type": "boolean"], "children": ["type": "array", "items": ["$ref": "#/components/schemas/Bookmark"]],
                ],
                required: ["id", "title", "isFolder", "position", "sortOrder", "tags", "dateAdded", "dateModified", "syncVersion", "isDeleted"]
            ),
            "BookmarkList": self.object(["bookmarks": ["type": "array", "items": self.ref("Bookmark")], "syncVersion": integer], required: ["bookmarks", "syncVersion"]),
            "BookmarkWrite": [
                "type": "object",
                "properties": [
                    "id": ["type": "string", "maxLength": 128], "opId": ["type": "string", "maxLength": 128], "expectedVersion": integer,
                    "hlc": string, "parentId": ["type": ["string", "null"]], "index": ["type": "integer", "minimum": 0], "afterId": string,
                    "beforeId": string, "position": string, "title": ["type": "string", "maxLength": .number(Double(limits.maxTitleLength))],
                    "url": ["type": ["string", "null"], "maxLength": .number(Double(limits.maxURLBytes))], "favicon": ["type": ["string", "null"]],
                    "isFolder": ["type": "boolean"], "tags": ["type": "array", "items": string], "notes": ["type": ["string", "null"]],
                    "dateAdded": millis, "dateModified": millis,
                ],
            ],
            "DeleteResponse": self.object(
                ["id": string, "isDeleted": ["type": "boolean"], "syncVersion": integer, "deletedDescendants": ["type": "array", "items": string]],
                required: ["id", "isDeleted", "syncVersion", "deletedDescendants"]
            ),
            "SeedSyncEvent": self.object(
                [
                    "id": string, "opId": string, "type": ["type": "string", "enum": ["create", "update", "delete", "move"]], "bookmarkId": string,
                    "data": ["type": "object"], "timestamp": millis, "clientId": string, "syncVersion": integer, "expectedVersion": integer, "hlc": string,
                ],
                required: ["type"]
            ),
            "SeedSyncRequest": self.object(
                [
                    "changes": ["type": "array", "items": self.ref("SeedSyncEvent")], "lastSyncVersion": integer, "clientId": string,
                    "atomic": ["type": "boolean"], "strategy": self.ref("ConflictStrategy"),
                ],
                required: ["changes"]
            ),
            "SeedSyncResponse": self.object(
                [
                    "applied": ["type": "array", "items": string], "conflicts": ["type": "array", "items": ["type": "object"]],
                    "rejected": ["type": "array", "items": ["type": "object"]], "serverChanges": ["type": "array", "items": ["type": "object"]],
                    "newSyncVersion": integer, "hasMore": ["type": "boolean"], "results": ["type": "array", "items": self.ref("OperationResult")],
                ],
                required: ["applied", "conflicts", "serverChanges", "newSyncVersion"]
            ),
            "ConflictStrategy": ["type": "string", "enum": .array(ConflictStrategy.allCases.map { .string($0.rawValue) })],
            "SyncOperation": self.object(
                [
                    "opId": ["type": "string", "minLength": 1, "maxLength": 128], "type": ["type": "string", "enum": ["create", "update", "upsert", "delete", "move"]],
                    "collection": string, "id": string, "data": ["type": "object"], "patch": ["type": "object"], "expectedVersion": integer,
                    "parentId": ["type": ["string", "null"]], "index": integer, "afterId": string, "beforeId": string, "position": string, "hlc": string,
                ],
                required: ["opId", "type", "collection"]
            ),
            "OperationResult": self.object(
                [
                    "opId": string, "status": ["type": "string", "enum": ["applied", "merged", "conflict", "rejected", "duplicate"]],
                    "originalStatus": string, "collection": string, "id": ["type": ["string", "null"]], "version": integer, "record": [:],
                    "error": ["type": "object"], "clockClamped": ["type": "boolean"], "affected": ["type": "array", "items": string],
                    "deduplicated": ["type": "boolean"],
                ],
                required: ["opId", "status", "collection"]
            ),
            "PushRequest": self.object(
                [
                    "clientId": string, "cursor": integer, "operations": ["type": "array", "items": self.ref("SyncOperation")],
                    "atomic": ["type": "boolean"], "strategy": self.ref("ConflictStrategy"),
                ],
                required: ["operations"]
            ),
            "RecordChange": self.object(
                [
                    "collection": string, "id": string, "version": integer, "deleted": ["type": "boolean"], "deletedAt": ["type": ["integer", "null"]],
                    "createdAt": millis, "updatedAt": millis, "data": [:],
                ],
                required: ["collection", "id", "version", "deleted", "createdAt", "updatedAt", "data"]
            ),
            "PushResponse": self.object(
                [
                    "results": ["type": "array", "items": self.ref("OperationResult")], "committed": ["type": "boolean"],
                    "changes": ["type": "array", "items": self.ref("RecordChange")], "cursor": integer, "hasMore": ["type": "boolean"],
                ],
                required: ["results", "committed", "changes", "cursor", "hasMore"]
            ),
            "PullResponse": self.object(
                ["changes": ["type": "array", "items": self.ref("RecordChange")], "cursor": integer, "hasMore": ["type": "boolean"]],
                required: ["changes", "cursor", "hasMore"]
            ),
            "ConflictList": self.object(["conflicts": ["type": "array", "items": ["type": "object"]]], required: ["conflicts"]),
            "SearchResponse": self.object(
                ["results": ["type": "array", "items": self.ref("Bookmark")], "total": integer, "limit": integer, "offset": integer],
                required: ["results", "total"]
            ),
            "DuplicatesResponse": self.object(["duplicates": ["type": "array", "items": ["type": "object"]]], required: ["duplicates"]),
            "ExportJSON": self.object(["bookmarks": ["type": "array", "items": ["type": "object"]], "syncVersion": integer, "exportedAt": millis], required: ["bookmarks"]),
            "ImportSummary": self.object(
                [
                    "bookmarksCreated": integer, "foldersCreated": integer, "duplicatesSkipped": integer, "foldersMerged": integer,
                    "invalidSkipped": integer, "errors": ["type": "array", "items": string], "syncVersion": integer,
                ],
                required: ["bookmarksCreated", "foldersCreated", "duplicatesSkipped", "syncVersion"]
            ),
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
