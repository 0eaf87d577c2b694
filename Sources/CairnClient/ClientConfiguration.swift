import CairnCore
import Foundation

/// Which way a client syncs (seed 003's `direction`).
public enum SyncDirection: String, Sendable, Codable, CaseIterable {
    /// Only send local changes; never pull.
    case push
    /// Only pull server changes; local writes stay queued.
    case pull
    /// Both (the default).
    case both
}

/// What the server does with a write that raced another device's (see docs/sync.md).
public enum ConflictResolution: Sendable {
    /// Per-field merge by edit stamps (the server's default).
    case merge
    /// The most recent edit wins as a whole (`lww`).
    case lastWriteWins
    /// The server's version is kept; the losing local edit is dropped.
    case serverWins
    /// The local edit always wins.
    case clientWins
    /// Your code decides: the server logs the conflict (`manual`) and the client calls the
    /// resolver with both versions; what it returns is pushed as the record's new state.
    /// Return `nil` to keep the server's version.
    case custom(@Sendable (SyncConflict) async -> [String: JSONValue]?)

    /// The server's name for the strategy sent with each push.
    var serverStrategy: String {
        switch self {
        case .merge: "merge"
        case .lastWriteWins: "lww"
        case .serverWins: "server-wins"
        case .clientWins: "client-wins"
        case .custom: "manual"
        }
    }
}

/// A write the server refused because another device changed the record first.
public struct SyncConflict: Sendable {
    /// The collection, for example `bookmarks` or `notes`.
    public var collection: String
    /// The record id.
    public var documentId: String
    /// What this device has (its pending edits over the last known server state).
    public var localDocument: [String: JSONValue]?
    /// What the server has now (`nil` when it is deleted there).
    public var remoteDocument: [String: JSONValue]?
    /// The server's version of the record.
    public var remoteVersion: Int64
}

/// How a ``CairnClient`` reaches the server and keeps its replica.
///
/// ```swift
/// var configuration = CairnClient.Configuration(
///     serverURL: URL(string: "http://127.0.0.1:8080")!,
///     credentials: .apiKey("cairn_…"),
///     replicaPath: URL(fileURLWithPath: "notes.sqlite"))
/// configuration.collections = ["notes"]
/// ```
public struct ClientConfiguration: Sendable {
    /// The server's base URL, for example `http://127.0.0.1:8080`.
    public var serverURL: URL
    /// Where the credentials live (see ``ClientCredentials``).
    public var credentials: ClientCredentials
    /// The SQLite file of the local replica (created when missing).
    public var replicaPath: URL
    /// The profile to sync (`?profile=`), by id or name.
    public var profile: String = "default"
    /// This device's name on the server (`clientId`); default: a random id kept in the replica.
    public var clientId: String?
    /// The collections to sync; `nil` syncs every collection.
    public var collections: [String]?
    /// Push, pull or both.
    public var direction: SyncDirection = .both
    /// Listen on the WebSocket for change hints (pull at once) instead of waiting for the poll.
    public var useWebSocket: Bool = true
    /// How often to pull when nothing else triggers it (the fallback when the socket is down).
    public var pullInterval: Duration = .seconds(30)
    /// How long a local write waits for more writes before the push (coalesces bursts).
    public var pushDebounce: Duration = .milliseconds(150)
    /// Retry a failed sync by itself.
    public var autoRetry: Bool = true
    /// The first retry delay; each further attempt doubles it (with jitter), up to `maxRetryDelay`.
    public var retryDelay: Duration = .seconds(1)
    /// The longest retry delay.
    public var maxRetryDelay: Duration = .seconds(60)
    /// Automatic retries after one failure before the status turns to `error` and the client
    /// waits for the next trigger (a local write, a poll, a hint, `forceSync`). Queued writes are
    /// never dropped.
    public var maxRetryAttempts: Int = 5
    /// The conflict strategy sent with every push.
    public var conflictStrategy: ConflictResolution = .merge
    /// Operations per push request (the server accepts up to 1,000).
    public var pushBatchSize: Int = 100
    /// Changes per pull page (the server accepts up to 5,000).
    public var pullPageSize: Int = 1000
    /// How often a running client looks for writes made by another process on the same replica.
    public var outboxCheckInterval: Duration = .seconds(1)

    /// The device's wall clock in milliseconds since 1970 (tests and the simulation move or skew
    /// it; users never set it).
    var wallClock: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
    /// New record ids and opId suffixes (the simulation makes them deterministic).
    var makeIdentifier: @Sendable () -> String = { UUID().uuidString.lowercased() }

    /// Creates a configuration with the defaults of every option.
    public init(serverURL: URL, credentials: ClientCredentials, replicaPath: URL) {
        self.serverURL = serverURL
        self.credentials = credentials
        self.replicaPath = replicaPath
    }
}

/// The sync state a client reports (seed 003's `getStatus()`).
public enum SyncStatus: String, Sendable, Equatable, Codable {
    /// Nothing to do, or waiting for the next trigger.
    case idle
    /// A push or pull is running.
    case syncing
    /// The last sync failed for a reason other than the network (credentials, a server error),
    /// or the automatic retries ran out.
    case error
    /// The server could not be reached.
    case offline
}

/// Counters a client reports (seed 003's `getStats()`).
public struct SyncStats: Sendable, Equatable, Codable {
    /// Operations the server acknowledged.
    public var pushCount: Int = 0
    /// Changes pulled from the server.
    public var pullCount: Int = 0
    /// Pushed writes that lost to another device's (`conflict` results).
    public var conflictCount: Int = 0
    /// Pushed writes the server refused for good (`rejected` results).
    public var rejectedCount: Int = 0
    /// When the last sync completed, in milliseconds since 1970.
    public var lastSyncAt: Int64?

    public init() {}
}

/// What one ``CairnClient/forceSync()`` did.
public struct SyncReport: Sendable, Equatable {
    /// Operations acknowledged by the server in this sync.
    public var pushed: Int = 0
    /// Changes pulled in this sync.
    public var pulled: Int = 0
    /// Conflicts reported in this sync.
    public var conflicts: Int = 0
    /// Operations refused for good in this sync, with the server's reason.
    public var rejected: [OperationResult] = []
    /// Whether switching server or profile made the client re-push its whole replica.
    public var targetChanged: Bool = false

    public init() {}
}

/// Errors of the client SDK.
public enum CairnClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The server could not be reached (the client is offline).
    case offline(String)
    /// The credentials were refused and could not be refreshed: log in again.
    case unauthorized
    /// The server answered with an error.
    case server(status: Int, code: String, message: String)
    /// Another process is syncing this replica; local writes are queued for it.
    case replicaLocked
    /// A local operation was refused before it reached the outbox.
    case invalid(String)
    /// The record does not exist in the local replica.
    case notFound(String)
    /// The client was destroyed.
    case destroyed

    public var description: String {
        switch self {
        case .offline(let reason): "the server cannot be reached (\(reason))"
        case .unauthorized: "the server refused the credentials; log in again"
        case .server(let status, let code, let message): "server error \(status) \(code): \(message)"
        case .replicaLocked: "another process is syncing this replica"
        case .invalid(let message): message
        case .notFound(let id): "\(id) not found"
        case .destroyed: "the client was destroyed"
        }
    }
}
