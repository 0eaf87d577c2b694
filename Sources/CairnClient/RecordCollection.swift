import CairnCore
import Foundation
import GRDB

/// A collection of JSON records in the local replica, for example `client.collection("notes")`.
///
/// Writes apply locally at once and are queued for the server; reads never touch the network.
public struct RecordCollection: Sendable {
    let client: CairnClient
    /// The collection's name.
    public let name: String

    /// Replaces the record's fields (creating it when missing). Returns the record as stored locally.
    @discardableResult
    public func put(_ id: String, _ data: [String: JSONValue]) async throws -> LocalRecord {
        try Self.validate(id: id, collection: self.name)
        let opId = self.client.newOpId()
        let name = self.name
        let events = try await self.client.write { db, clock, _ in
            [SyncOperation(
                opId: opId, type: .upsert, collection: name, id: id, data: .object(data),
                expectedVersion: try Replica.expectedVersion(db, name, id), hlc: clock.next())]
        }
        return try Self.record(from: events, id: id)
    }

    /// Changes some fields; a `null` value removes the field. The record must exist.
    @discardableResult
    public func patch(_ id: String, _ changes: [String: JSONValue]) async throws -> LocalRecord {
        let opId = self.client.newOpId()
        let name = self.name
        let events = try await self.client.write { db, clock, _ in
            guard let current = try Replica.record(db, name, id), !current.deleted else { throw CairnClientError.notFound(id) }
            return [SyncOperation(
                opId: opId, type: .update, collection: name, id: id, patch: .object(changes),
                expectedVersion: try Replica.expectedVersion(db, name, id), hlc: clock.next())]
        }
        return try Self.record(from: events, id: id)
    }

    /// Deletes the record (a tombstone that syncs like any change).
    public func delete(_ id: String) async throws {
        let opId = self.client.newOpId()
        let name = self.name
        _ = try await self.client.write { db, clock, _ in
            guard let current = try Replica.record(db, name, id), !current.deleted else { throw CairnClientError.notFound(id) }
            return [SyncOperation(
                opId: opId, type: .delete, collection: name, id: id,
                expectedVersion: try Replica.expectedVersion(db, name, id), hlc: clock.next())]
        }
    }

    /// The record, or `nil` when it does not exist or is deleted.
    public func get(_ id: String) async throws -> LocalRecord? {
        guard let record = try await self.client.replica.record(self.name, id), !record.deleted else { return nil }
        return record
    }

    /// Every live record, ordered by id.
    public func all(includeDeleted: Bool = false) async throws -> [LocalRecord] {
        try await self.client.replica.records(self.name, includeDeleted: includeDeleted)
    }

    /// Changes of this collection from now on, local and pulled.
    public func changes() -> AsyncFilterSequence<AsyncStream<RecordEvent>> {
        let name = self.name
        return self.client.changes().filter { $0.collection == name }
    }

    static func validate(id: String, collection: String) throws {
        guard RecordNames.isValidId(id) else { throw CairnClientError.invalid("an id is 1–128 characters of A–Z a–z 0–9 _ - . :") }
        guard RecordNames.isValidCollection(collection) else {
            throw CairnClientError.invalid("a collection name is 1–64 characters of a–z A–Z 0–9 _ -, starting with a lowercase letter")
        }
    }

    static func record(from events: [RecordEvent], id: String) throws -> LocalRecord {
        guard let record = events.last(where: { $0.id == id })?.record else { throw CairnClientError.notFound(id) }
        return record
    }
}
