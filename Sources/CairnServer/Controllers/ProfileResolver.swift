import CairnCore
import Hummingbird

/// Finds the profile a request acts on: `?profile=<id|name>` (or another parameter name on seed
/// surfaces), else the user's `default`. Another user's profile, or one outside an API key's
/// scope, answers exactly like a missing one.
struct ProfileResolver: Sendable {
    let store: any SyncStore

    func resolve(_ request: Request, context: CairnRequestContext, parameter: String = "profile") async throws -> StoredProfile {
        let identity = try context.requireIdentity()
        let wanted = request.uri.queryParameters.get(parameter)
        return try await self.resolve(identity: identity, wanted: wanted)
    }

    func resolve(identity: AuthIdentity, wanted: String?) async throws -> StoredProfile {
        let name = (wanted?.isEmpty == false ? wanted : nil) ?? identity.scopedProfileId ?? "default"
        guard name.utf8.count <= 128, let profile = try await self.store.profile(userId: identity.user.id, idOrName: name) else {
            throw CairnError.notFound("Profile")
        }
        if let scope = identity.scopedProfileId, scope != profile.id { throw CairnError.notFound("Profile") }
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
