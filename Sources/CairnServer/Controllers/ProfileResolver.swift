import CairnCore
import Hummingbird

/// Finds the profile a request acts on: `?profile=<id|name>` (or another parameter name on seed
/// surfaces), else the user's `default`. Another user's profile, or one outside an API key's
/// scope, answers exactly like a missing one.
///
/// ``resolve(_:context:parameter:)`` gives the profile's id and name, from memory after the first
/// request (the store forgets them on a rename or deletion); ``current(_:context:parameter:)``
/// reads the whole row, for the few answers that show a profile's sequence, settings or times.
struct ProfileResolver: Sendable {
    let store: any SyncStore

    func resolve(_ request: Request, context: CairnRequestContext, parameter: String = "profile") async throws -> ProfileRef {
        let identity = try context.requireIdentity()
        return try await self.resolve(identity: identity, wanted: request.uri.queryParameters.get(parameter))
    }

    func resolve(identity: AuthIdentity, wanted: String?) async throws -> ProfileRef {
        try await self.find(identity: identity, wanted: wanted, id: \.id) { try await self.store.profileRef(userId: $0, idOrName: $1) }
    }

    /// The whole profile row, read now.
    func current(_ request: Request, context: CairnRequestContext, parameter: String = "profile") async throws -> StoredProfile {
        let identity = try context.requireIdentity()
        return try await self.current(identity: identity, wanted: request.uri.queryParameters.get(parameter))
    }

    func current(identity: AuthIdentity, wanted: String?) async throws -> StoredProfile {
        try await self.find(identity: identity, wanted: wanted, id: \.id) { try await self.store.profile(userId: $0, idOrName: $1) }
    }

    /// The wanted profile (else the key's scope, else `default`) through `lookup(userId, idOrName)`;
    /// a missing one, another user's or one outside an API key's scope is the same 404.
    private func find<Profile>(
        identity: AuthIdentity, wanted: String?, id: KeyPath<Profile, String>, lookup: (String, String) async throws -> Profile?
    ) async throws -> Profile {
        let name = (wanted?.isEmpty == false ? wanted : nil) ?? identity.scopedProfileId ?? "default"
        guard name.utf8.count <= 128, let profile = try await lookup(identity.user.id, name) else { throw CairnError.notFound("Profile") }
        if let scope = identity.scopedProfileId, scope != profile[keyPath: id] { throw CairnError.notFound("Profile") }
        return profile
    }
}

extension OperationResult {
    /// Turns a refused op into the error a REST caller gets.
    func throwIfRefused() throws {
        let status = self.status == .duplicate ? (self.originalStatus ?? .applied) : self.status
        switch status {
        case .rejected:
            let code = self.error.flatMap { CairnError.Code(rawValue: $0.code) } ?? .validation
            throw CairnError(code, self.error?.message ?? "Rejected", field: self.error?.field)
        case .conflict:
            let code = self.error.flatMap { CairnError.Code(rawValue: $0.code) } ?? .conflict
            if code == .conflict, self.record?["isDeleted"] == .bool(true) || self.record?["deleted"] == .bool(true) {
                throw CairnError.notFound("Bookmark")
            }
            throw CairnError(code, self.error?.message ?? "Conflict", details: ["current": self.record ?? .null, "currentVersion": self.version.map { .number(Double($0)) } ?? .null])
        case .applied, .merged, .duplicate:
            return
        }
    }
}

extension Request {
    /// The version an `If-Match` header names (`"12"`, `W/"12"` or `12`); `nil` when absent or `*`.
    func ifMatchVersion() throws -> Int64? {
        guard let raw = self.headers[.ifMatch]?.trimmingWhitespace(), raw != "*" else { return nil }
        var value = Substring(raw)
        if value.hasPrefix("W/") { value = value.dropFirst(2) }
        value = value.drop { $0 == "\"" }
        while value.last == "\"" { value = value.dropLast() }
        guard let version = Int64(value), version >= 0 else {
            throw CairnError(.validation, "If-Match must be a version such as \"12\"", field: "If-Match")
        }
        return version
    }

    /// An integer query parameter within bounds, or the default.
    func intParameter(_ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let raw = self.uri.queryParameters.get(name) else { return value }
        guard let number = Int(raw), range.contains(number) else {
            throw CairnError(.validation, "\(name) must be an integer in \(range.lowerBound)...\(range.upperBound)", field: name)
        }
        return number
    }

    /// A boolean query parameter (`true`/`1`).
    func boolParameter(_ name: String) -> Bool {
        guard let raw = self.uri.queryParameters.get(name)?.lowercased() else { return false }
        return raw == "true" || raw == "1" || raw == "yes"
    }
}
