import CairnCore
import Foundation
import Hummingbird

/// `GET/POST /api/profiles`, `GET/PATCH/DELETE /api/profiles/{id}`.
struct ProfilesController {
    let store: any SyncStore
    let engine: SyncEngine
    let profiles: ProfileResolver
    let clock: ServerClock

    func addRoutes(to group: RouterGroup<CairnRequestContext>) {
        group.get("profiles", use: self.list)
        group.post("profiles", use: self.create)
        group.get("profiles/{id}", use: self.get)
        group.patch("profiles/{id}", use: self.update)
        group.delete("profiles/{id}", use: self.delete)
    }

    /// A profile as this API shows it.
    struct ProfileView: Encodable {
        var id: String
        var name: String
        var syncVersion: Int64
        var createdAt: Int64
        var updatedAt: Int64
        var settings: [String: JSONValue]

        init(_ profile: StoredProfile) {
            self.id = profile.id
            self.name = profile.name
            self.syncVersion = profile.seq
            self.createdAt = profile.createdAt
            self.updatedAt = profile.updatedAt
            self.settings = profile.settings
        }
    }

    struct ListAnswer: Encodable {
        var profiles: [ProfileView]
    }

    @Sendable func list(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        var all = try await self.store.profiles(userId: identity.user.id)
        if let scope = identity.scopedProfileId { all = all.filter { $0.id == scope } }
        return try JSONResponse.make(ListAnswer(profiles: all.map(ProfileView.init)))
    }

    struct WriteBody: Decodable {
        var name: String?
        var settings: [String: JSONValue]?
    }

    /// Validates a profile name: 1 to 64 characters, no control characters.
    static func validName(_ raw: String?) throws -> String {
        let name = (raw ?? "").trimmingWhitespace()
        guard !name.isEmpty, name.count <= 64, !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }), !name.contains("#") else {
            throw CairnError(.validation, "name must be 1 to 64 characters (no control characters or #)", field: "name")
        }
        return name
    }

    /// Validates sync settings: `conflictStrategy`, `collections.<name>.conflictStrategy`, `deleteWins`.
    static func validSettings(_ settings: [String: JSONValue]) throws -> [String: JSONValue] {
        for (key, value) in settings {
            switch key {
            case "conflictStrategy":
                guard let name = value.stringValue, ConflictStrategy(rawValue: name) != nil else {
                    throw CairnError(.validation, "conflictStrategy must be one of \(ConflictStrategy.allCases.map(\.rawValue).joined(separator: ", "))", field: "settings.conflictStrategy")
                }
            case "deleteWins":
                guard value.boolValue != nil else { throw CairnError(.validation, "deleteWins must be a boolean", field: "settings.deleteWins") }
            case "collections":
                guard let collections = value.objectValue, collections.count <= 256 else {
                    throw CairnError(.validation, "collections must be an object", field: "settings.collections")
                }
                for (name, entry) in collections {
                    guard RecordRules.isValidCollection(name), let object = entry.objectValue, Set(object.keys).isSubset(of: ["conflictStrategy"]),
                        let strategy = object["conflictStrategy"]?.stringValue, ConflictStrategy(rawValue: strategy) != nil
                    else {
                        throw CairnError(.validation, "collections.\(name) must be {\"conflictStrategy\": …}", field: "settings.collections")
                    }
                }
            default:
                throw CairnError(.validation, "Unknown setting '\(key.prefix(64))'", field: "settings")
            }
        }
        return settings
    }

    @Sendable func create(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        guard identity.scopedProfileId == nil else { throw CairnError(.forbidden, "A key limited to one profile cannot create profiles") }
        let body = try await request.decodeJSON(as: WriteBody.self, context: context, maxDepth: 8)
        let name = try Self.validName(body.name)
        let now = self.clock.nowMilliseconds
        let profile = StoredProfile(
            id: Identifiers.uuid(), userId: identity.user.id, name: name, createdAt: now, updatedAt: now,
            settings: try Self.validSettings(body.settings ?? [:])
        )
        try await self.store.createProfile(profile)
        try await self.engine.prepareBookmarks(profileId: profile.id)
        let created = try await self.profiles.current(identity: identity, wanted: profile.id)
        return try JSONResponse.make(ProfileView(created), status: .created, headers: [.location: "/api/profiles/\(created.id)"])
    }

    @Sendable func get(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let profile = try await self.profiles.current(identity: try context.requireIdentity(), wanted: try context.parameters.decoded("id"))
        return try JSONResponse.make(ProfileView(profile))
    }

    @Sendable func update(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let profile = try await self.profiles.resolve(identity: identity, wanted: try context.parameters.decoded("id"))
        let body = try await request.decodeJSON(as: WriteBody.self, context: context, maxDepth: 8)
        let name = try body.name.map { try Self.validName($0) }
        if name != nil, profile.name == "default" { throw CairnError(.forbidden, "The default profile cannot be renamed", field: "name") }
        let settings = try body.settings.map(Self.validSettings)
        guard let updated = try await self.store.updateProfile(userId: identity.user.id, id: profile.id, name: name, settings: settings, at: self.clock.nowMilliseconds)
        else { throw CairnError.notFound("Profile") }
        return try JSONResponse.make(ProfileView(updated))
    }

    @Sendable func delete(_ request: Request, context: CairnRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let profile = try await self.profiles.resolve(identity: identity, wanted: try context.parameters.decoded("id"))
        guard identity.scopedProfileId == nil else { throw CairnError(.forbidden, "A key limited to one profile cannot delete it") }
        guard profile.name != "default" else { throw CairnError(.forbidden, "The default profile cannot be deleted") }
        try await self.engine.deleteProfile(profileId: profile.id, clientId: request.headers[.clientID])
        return JSONResponse.noContent()
    }
}
