import CairnCore
import Foundation

/// The rules of generic collections (`notes`, `books`, `cards`…): records are JSON objects,
/// merged field by field.
struct RecordRules {
    let applier: BatchApplier

    static func isValidCollection(_ name: String) -> Bool { RecordNames.isValidCollection(name) }

    static func isValidId(_ id: String) -> Bool { RecordNames.isValidId(id) }

    /// The JSON a client sees for a generic record.
    static func json(_ record: StoredRecord) -> JSONValue {
        var object: [String: JSONValue] = [
            "collection": .string(record.collection), "id": .string(record.id), "version": .number(Double(record.version)),
            "deleted": .bool(record.deleted), "createdAt": .number(Double(record.createdAt)), "updatedAt": .number(Double(record.updatedAt)),
            "data": .object(record.data),
        ]
        object["deletedAt"] = record.deletedAt.map { .number(Double($0)) } ?? .null
        return .object(object)
    }

    /// Throws unless the data fits in a record, measured as compact JSON text without writing it
    /// (for data that is checked but not written as it is: a merge writes its own).
    func checkSize(_ data: [String: JSONValue]) throws {
        guard JSONValue.object(data).jsonByteCount <= self.applier.limits.maxRecordBytes else { throw self.tooLarge }
    }

    var tooLarge: CairnError {
        CairnError(.payloadTooLarge, "Record exceeds \(self.applier.limits.maxRecordBytes) bytes", field: "data")
    }

    /// The record data's compact JSON text, the one the store writes, refused if it is over the
    /// size limit. Passed on to ``BatchApplier/commit(_:isNew:last:encodedData:)``: the data of a
    /// write is then turned into text once (measuring it and writing it were a tenth of a pushed
    /// create's time on the writer).
    func encodedWithinLimit(_ data: [String: JSONValue]) throws -> String {
        let text = JSONValue.jsonText(data)
        guard text.utf8.count <= self.applier.limits.maxRecordBytes else { throw self.tooLarge }
        return text
    }

    func apply(_ op: SyncOperation) throws -> OperationResult {
        let applier = self.applier
        let strategy = applier.strategy(for: op.collection)
        let (stamp, clamped) = applier.stamp(for: op)
        var result: OperationResult
        switch op.type {
        case .create, .upsert:
            guard let data = op.data?.objectValue else { throw CairnError(.validation, "data must be a JSON object", field: "data") }
            let id = op.id ?? Identifiers.uuid()
            if let existing = try applier.record(op.collection, id), !existing.deleted {
                try self.checkSize(data)
                var fields: [String: JSONValue?] = data.mapValues { $0 }
                if op.type == .upsert {
                    for key in existing.data.keys where data[key] == nil { fields[key] = .some(nil) }
                }
                result = try self.write(op, existing: existing, fields: fields, stamp: stamp, strategy: strategy)
            } else {
                let encoded = try self.encodedWithinLimit(data)
                let existing = try applier.record(op.collection, id)
                var record = StoredRecord(
                    profileId: applier.profileId, collection: op.collection, id: id, version: 0, data: data,
                    fieldStamps: data.mapValues { _ in stamp }, hlc: stamp, createdAt: applier.now, updatedAt: applier.now, createdSeq: 0
                )
                if let existing {
                    // Re-creating a tombstoned id: the new data wins over the old delete.
                    record.createdAt = existing.createdAt
                    record.createdSeq = existing.createdSeq
                }
                // The op's last write: after it, only its result is built.
                try applier.commit(&record, isNew: existing == nil, last: true, encodedData: encoded)
                result = applier.result(op, .applied, record)
            }
        case .update:
            guard let id = op.id else { throw CairnError(.validation, "id is required", field: "id") }
            guard let patch = op.patch?.objectValue ?? op.data?.objectValue else {
                throw CairnError(.validation, "patch must be a JSON object", field: "patch")
            }
            guard let existing = try applier.record(op.collection, id) else { throw CairnError.notFound("Record") }
            if existing.deleted {
                if applier.deleteWins {
                    return try applier.conflictResult(op, existing, code: .conflict, message: "The record was deleted", recordJSON: Self.json)
                }
                var revived = existing
                revived.deleted = false
                revived.deletedAt = nil
                result = try self.write(op, existing: revived, fields: patch.mapValues { $0.isNull ? nil : $0 }, stamp: stamp, strategy: .clientWins)
                if result.status == .conflict || result.status == .rejected {
                    // Nothing was written: report the tombstone the server still holds.
                    result.version = existing.version
                    if result.record != nil { result.record = Self.json(existing) }
                }
            } else {
                result = try self.write(op, existing: existing, fields: patch.mapValues { $0.isNull ? nil : $0 }, stamp: stamp, strategy: strategy)
            }
        case .delete:
            guard let id = op.id else { throw CairnError(.validation, "id is required", field: "id") }
            guard var record = try applier.record(op.collection, id) else { throw CairnError.notFound("Record") }
            if record.deleted { return applier.result(op, .applied, record) }
            if let refused = try applier.decideDelete(op: op, existing: record, strategy: strategy, recordJSON: Self.json) { return refused }
            record.deleted = true
            record.deletedAt = applier.now
            record.fieldStamps["_deleted"] = stamp
            try applier.commit(&record, isNew: false)
            try applier.resolveConflicts(record.collection, record.id)
            result = applier.result(op, .applied, record)
        case .move:
            throw CairnError(.validation, "move applies to bookmarks only", field: "type")
        }
        if clamped { result.clockClamped = true }
        return result
    }

    func write(_ op: SyncOperation, existing: StoredRecord, fields: [String: JSONValue?], stamp: HLC, strategy: ConflictStrategy) throws -> OperationResult {
        switch try self.applier.decideWrite(op: op, existing: existing, fields: fields, stamp: stamp, strategy: strategy, recordJSON: Self.json) {
        case .refuse(let result):
            return result
        case .merge(var merge, let status):
            let encoded = try self.encodedWithinLimit(merge.record.data)
            let wasDeleted = try self.applier.record(existing.collection, existing.id)?.deleted ?? false
            if merge.changed || wasDeleted {
                // The op's last write: after it, only its result is built.
                try self.applier.commit(&merge.record, isNew: false, last: true, encodedData: encoded)
            }
            var result = self.applier.result(op, status, merge.record)
            if status == .merged { result.record = Self.json(merge.record) }
            return result
        }
    }
}
