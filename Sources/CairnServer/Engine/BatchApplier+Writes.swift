import CairnCore
import Foundation

extension BatchApplier {
    /// How a write to an existing live record turns out, before tree rules.
    enum WriteDecision {
        /// Not applied: report this result (nothing changes).
        case refuse(OperationResult)
        /// Apply this merge; `status` is `applied` or `merged`.
        case merge(FieldMerge, OperationResult.Status)
    }

    /// The version and strategy rules shared by every collection: strict `If-Match`, the
    /// `manual` log, and the field merge.
    func decideWrite(
        op: SyncOperation, existing: StoredRecord, fields: [String: JSONValue?], stamp: HLC, strategy: ConflictStrategy,
        recordJSON: (StoredRecord) throws -> JSONValue
    ) throws -> WriteDecision {
        let blind = op.expectedVersion == nil
        let causal = op.expectedVersion == existing.version
        if !blind && !causal {
            if self.strictVersion {
                return .refuse(try self.conflictResult(op, existing, code: .conflict, message: "Version \(op.expectedVersion ?? 0) is stale; current is \(existing.version)", recordJSON: recordJSON))
            }
            if strategy == .manual || strategy == .serverWins {
                let server = try recordJSON(existing)
                if strategy == .manual {
                    try self.logConflict(op: op, record: existing, clientData: .object(fields.mapValues { $0 ?? .null }), serverJSON: server)
                }
                return .refuse(try self.conflictResult(op, existing, code: .conflict, message: "Version \(op.expectedVersion ?? 0) is stale; current is \(existing.version)", recordJSON: recordJSON))
            }
        }
        let merge = self.mergeFields(
            into: existing, fields: fields, stamp: stamp, strategy: strategy, causal: causal, blind: blind, expectedVersion: op.expectedVersion
        )
        if merge.appliedFields.isEmpty && !fields.isEmpty {
            if strategy == .merge {
                var result = self.result(op, .merged, existing)
                result.record = try recordJSON(existing)
                return .refuse(result)
            }
            if strategy == .manual {
                try self.logConflict(op: op, record: existing, clientData: .object(fields.mapValues { $0 ?? .null }), serverJSON: try recordJSON(existing))
            }
            return .refuse(try self.conflictResult(op, existing, code: .conflict, message: "A later write to this record wins", recordJSON: recordJSON))
        }
        if causal, strategy == .manual {
            try self.resolveConflicts(existing.collection, existing.id)
        }
        let status: OperationResult.Status = (!blind && !causal) || !merge.skippedFields.isEmpty ? .merged : .applied
        return .merge(merge, status)
    }

    func result(_ op: SyncOperation, _ status: OperationResult.Status, _ record: StoredRecord) -> OperationResult {
        OperationResult(opId: op.opId, status: status, collection: record.collection, id: record.id, version: record.version)
    }

    func conflictResult(
        _ op: SyncOperation, _ record: StoredRecord, code: CairnError.Code, message: String, recordJSON: (StoredRecord) throws -> JSONValue
    ) throws -> OperationResult {
        var result = self.result(op, .conflict, record)
        result.record = try recordJSON(record)
        result.error = OperationError(code: code.rawValue, message: message)
        return result
    }

    /// A delete of an existing record: delete wins over concurrent updates, except under
    /// `manual`, `server-wins` and strict `If-Match`, where a stale delete is a conflict.
    func decideDelete(op: SyncOperation, existing: StoredRecord, strategy: ConflictStrategy, recordJSON: (StoredRecord) throws -> JSONValue) throws -> OperationResult? {
        guard let expected = op.expectedVersion, expected != existing.version else { return nil }
        if self.strictVersion || strategy == .manual || strategy == .serverWins {
            if strategy == .manual && !self.strictVersion {
                try self.logConflict(op: op, record: existing, clientData: ["deleted": true], serverJSON: try recordJSON(existing))
            }
            return try self.conflictResult(op, existing, code: .conflict, message: "Version \(expected) is stale; current is \(existing.version)", recordJSON: recordJSON)
        }
        return nil
    }
}
