import CairnCore
import Foundation
import Logging

/// Everything `cairn serve` can be told, as a plain value that tests build directly.
///
/// ```swift
/// var configuration = ServerConfiguration()
/// configuration.port = 0
/// configuration.dataDirectory = URL(fileURLWithPath: "/tmp/cairn-test")
/// let app = try await buildApplication(configuration: configuration)
/// ```
public struct ServerConfiguration: Sendable {
    /// Whether anyone may create an account.
    public enum Registration: String, Sendable, CaseIterable {
        case open
        case closed
    }

    /// Interface to bind (default loopback).
    public var host: String = "127.0.0.1"
    /// Port to bind; 0 picks a free one.
    public var port: Int = 8080
    /// Where the database and secrets live (created if missing).
    public var dataDirectory: URL = URL(fileURLWithPath: "./cairn-data")
    /// Open or closed registration.
    public var registration: Registration = .open
    /// Origins allowed by CORS and on WebSocket upgrades. Exact origins, or a scheme wildcard such
    /// as `chrome-extension://*`.
    public var corsOrigins: [String] = []
    /// Log level.
    public var logLevel: Logger.Level = .info
    /// Size and count limits.
    public var limits: Limits = Limits()
    /// bcrypt cost (12; tests lower it for speed).
    public var bcryptCost: UInt8 = 12
    /// Access-token lifetime in seconds.
    public var accessTokenLifetime: TimeInterval = 15 * 60
    /// Refresh-token lifetime in seconds.
    public var refreshTokenLifetime: TimeInterval = 30 * 24 * 3600
    /// Seconds after a rotation during which a retry with the old refresh token gets the same
    /// successor instead of revoking the family (a lost response, not theft).
    public var refreshGraceSeconds: TimeInterval = 10
    /// Requests per minute per IP on the auth routes, and its burst.
    public var authRatePerMinute: Double = 60
    public var authBurst: Double = 20
    /// Failed sign-ins per minute for one (email, IP) pair, and its burst.
    public var loginFailuresPerMinute: Double = 10
    public var loginFailureBurst: Double = 10
    /// Requests per minute per user on the API, and its burst.
    public var apiRatePerMinute: Double = 6000
    public var apiBurst: Double = 1000
    /// Close HTTP connections idle for this many seconds.
    public var idleTimeoutSeconds: Int64 = 60
    /// Most simultaneous connections accepted (below the process's open-file limit).
    public var maxConnections: Int = 16_000
    /// Most WebSockets one user may hold open.
    public var maxWebSocketsPerUser: Int = 100
    /// Seconds between WebSocket pings; a ping still unanswered when the next is due closes the socket.
    public var webSocketPingSeconds: Int64 = 30
    /// Seconds an unauthenticated socket may take to send `auth`.
    public var webSocketAuthTimeoutSeconds: Double = 10
    /// How often open sockets' credentials are re-checked (expired token, revoked key, disabled user).
    public var webSocketSweepSeconds: Double = 2
    /// Bounds of each socket's outbox; beyond them the backlog is dropped and the client told to resync.
    public var webSocketOutboxMessages: Int = 256
    public var webSocketOutboxBytes: Int = 1 << 20
    /// Peers whose `X-Forwarded-For` header is trusted (a reverse proxy); empty = none.
    public var trustedProxies: [String] = []
    /// Days a tombstone is kept before it may be purged; `nil` keeps tombstones forever (the
    /// default). Cursors older than a purged tombstone get `410 RESYNC_REQUIRED`.
    public var tombstoneRetentionDays: Int?
    /// The clock (tests inject a manual one).
    public var clock: ServerClock = .system

    public init() {}

    /// The SQLite file inside the data directory.
    public var databasePath: String { self.dataDirectory.appendingPathComponent("cairn.sqlite").path }
}
