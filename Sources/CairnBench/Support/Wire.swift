import Foundation

/// The request and answer shapes the bench sends and reads (docs/api.md), reduced to the fields
/// it needs.
enum Wire {
    /// `POST /api/auth/register`.
    struct SignedIn: Decodable {
        let token: String
    }

    /// A bookmark's writable fields.
    struct BookmarkData: Codable, Sendable {
        let title: String
        var url: String?
        var isFolder: Bool?
    }

    /// One `POST /api/sync/push` operation on a bookmark.
    struct Operation: Encodable, Sendable {
        let opId: String
        let type: String
        let collection = "bookmarks"
        let id: String
        var data: BookmarkData?
        var patch: BookmarkData?
        var parentId: String?

        static func create(_ id: String, title: String, url: String, opId: String, parentId: String = "other") -> Operation {
            Operation(opId: opId, type: "create", id: id, data: BookmarkData(title: title, url: url), parentId: parentId)
        }

        static func folder(_ id: String, title: String, opId: String) -> Operation {
            Operation(opId: opId, type: "create", id: id, data: BookmarkData(title: title, isFolder: true), parentId: "other")
        }

        static func rename(_ id: String, title: String, opId: String) -> Operation {
            Operation(opId: opId, type: "update", id: id, patch: BookmarkData(title: title))
        }

        static func delete(_ id: String, opId: String) -> Operation {
            Operation(opId: opId, type: "delete", id: id)
        }
    }

    /// The body of `POST /api/sync/push`.
    struct Push: Encodable, Sendable {
        let clientId: String
        let operations: [Operation]
    }

    /// The answer of `POST /api/sync/push`.
    struct PushResult: Decodable {
        struct OpResult: Decodable {
            let opId: String
            let status: String
        }

        let committed: Bool
        let cursor: Int64
        let results: [OpResult]

        /// Throws unless the batch committed and every op has `status`.
        func requireAll(_ status: String, count: Int) throws {
            let matching = self.results.filter { $0.status == status }.count
            guard self.committed, self.results.count == count, matching == count else {
                let first = self.results.first { $0.status != status }
                throw BenchError.unexpected("push: \(matching) of \(count) \(status), first other: \(first.map { "\($0.opId) \($0.status)" } ?? "none")")
            }
        }
    }

    /// The answer of `GET /api/sync/pull`.
    struct Pull: Decodable {
        struct Change: Decodable {
            let id: String
            let deleted: Bool
        }

        let changes: [Change]
        let cursor: Int64
        let hasMore: Bool
    }

    /// A record of `/api/records/{collection}/{id}`.
    struct Record: Decodable {
        let version: Int64
    }

    /// The answer of `POST /api/bookmarks/import`.
    struct ImportResult: Decodable {
        let bookmarksCreated: Int
        let foldersCreated: Int
    }
}
