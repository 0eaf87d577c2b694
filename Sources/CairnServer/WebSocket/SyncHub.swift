import CairnCore
import Foundation
import Logging
import NIOWebSocket
import Prometheus
import ServiceLifecycle
import Synchronization

/// The WebSocket hub: knows every open sync connection by profile, turns commit hints into
/// per-connection wake-ups (never blocking on a socket), and closes connections whose
/// credentials expire or are revoked.
public final class SyncHub: ChangeNotifier, Service {
    struct Entry {
        var connection: SyncConnection
        var userId: String
        var identity: AuthIdentity
    }

    private let byProfile = Mutex<[String: [ObjectIdentifier: Entry]]>([:])
    private let all = Mutex<[ObjectIdentifier: SyncConnection]>([:])
    /// Attached connections per user (taken only inside `byProfile`'s lock).
    private let perUser = Mutex<[String: Int]>([:])
    let auth: AuthService
    let logger: Logger
    let metrics: WebSocketMetrics
    /// Most connections one user may hold.
    let maxConnectionsPerUser: Int
    /// How often credentials of open sockets are re-checked.
    let sweepInterval: Duration
    /// The memory of closed sockets, given back to the system after many closed.
    let freedMemory = FreedMemory()

    init(auth: AuthService, metrics: ServerMetrics, logger: Logger, maxConnectionsPerUser: Int, sweepInterval: Duration = .seconds(2)) {
        self.auth = auth
        self.logger = logger
        self.metrics = WebSocketMetrics(registry: metrics.registry)
        self.maxConnectionsPerUser = maxConnectionsPerUser
        self.sweepInterval = sweepInterval
    }

    // MARK: Registry

    /// Tracks a new socket (authenticated or not yet).
    func opened(_ connection: SyncConnection) {
        let count = self.all.withLock { all in
            all[ObjectIdentifier(connection)] = connection
            return all.count
        }
        self.metrics.open.set(Double(count))
    }

    /// Attaches an authenticated connection to its profile; `false` when the user is at the cap.
    func attach(_ connection: SyncConnection, identity: AuthIdentity, profileId: String) -> Bool {
        self.byProfile.withLock { byProfile in
            let key = ObjectIdentifier(connection)
            for (profile, entries) in byProfile {
                if let entry = entries[key] {
                    byProfile[profile]?[key] = nil
                    self.perUser.withLock { $0[entry.userId, default: 1] -= 1 }
                }
            }
            let userCount = self.perUser.withLock { $0[identity.user.id] ?? 0 }
            guard userCount < self.maxConnectionsPerUser else { return false }
            self.perUser.withLock { $0[identity.user.id, default: 0] += 1 }
            byProfile[profileId, default: [:]][key] = Entry(connection: connection, userId: identity.user.id, identity: identity)
            return true
        }
    }

    /// Updates the identity after an in-band re-authentication.
    func reauthenticated(_ connection: SyncConnection, identity: AuthIdentity) {
        self.byProfile.withLock { byProfile in
            for profile in byProfile.keys where byProfile[profile]?[ObjectIdentifier(connection)] != nil {
                byProfile[profile]?[ObjectIdentifier(connection)]?.identity = identity
            }
        }
    }

    /// Forgets a closed connection.
    func closed(_ connection: SyncConnection) {
        let key = ObjectIdentifier(connection)
        self.byProfile.withLock { byProfile in
            for profile in Array(byProfile.keys) {
                guard let entry = byProfile[profile]?[key] else { continue }
                self.perUser.withLock { counts in
                    counts[entry.userId, default: 1] -= 1
                    if counts[entry.userId] == 0 { counts[entry.userId] = nil }
                }
                byProfile[profile]?[key] = nil
                if byProfile[profile]?.isEmpty == true { byProfile[profile] = nil }
            }
        }
        let count = self.all.withLock { all in
            all[key] = nil
            return all.count
        }
        self.metrics.open.set(Double(count))
        self.freedMemory.noteClosed()
    }

    /// Open sockets right now.
    public var connectionCount: Int { self.all.withLock { $0.count } }

    // MARK: ChangeNotifier

    public func profileChanged(profileId: String, sequence: Int64, originClientId: String?) {
        let now = ContinuousClock.now
        let connections = self.byProfile.withLock { $0[profileId].map { Array($0.values.map(\.connection)) } ?? [] }
        for connection in connections { connection.wake(at: now) }
    }

    // MARK: Service

    /// Re-checks credentials of open sockets every `sweepInterval` until shutdown.
    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            _ = try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.sweepInterval) }
            if Task.isShuttingDownGracefully || Task.isCancelled { break }
            await self.sweep()
            self.freedMemory.releaseIfDue()
        }
    }

    /// Closes sockets whose token expired, whose key was revoked or whose user was disabled.
    func sweep() async {
        let entries = self.byProfile.withLock { $0.values.flatMap { Array($0.values) } }
        var verdicts: [AuthIdentity: Bool] = [:]
        for entry in entries {
            let valid: Bool
            if let known = verdicts[entry.identity] {
                valid = known
            } else {
                valid = (try? await self.auth.stillValid(entry.identity)) ?? true
                verdicts[entry.identity] = valid
            }
            if !valid {
                self.logger.info("Closing a WebSocket whose credential is no longer valid", metadata: ["user.id": "\(entry.userId)"])
                entry.connection.requestClose(.init(codeNumber: 4401), reason: "credential expired or revoked")
            }
        }
    }

    /// Closes every socket with 1001 (going away) and waits up to `timeout` for them to go.
    public func closeAll(timeout: Duration = .seconds(3)) async {
        let connections = self.all.withLock { Array($0.values) }
        for connection in connections { connection.requestClose(.goingAway, reason: "server shutting down") }
        let deadline = ContinuousClock.now + timeout
        while self.connectionCount > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}

extension AuthIdentity: Hashable {
    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.user.id)
        switch self.method {
        case .accessToken(let issuedAt, let expiresAt):
            hasher.combine(issuedAt)
            hasher.combine(expiresAt)
        case .apiKey(let id, _):
            hasher.combine(id)
        }
    }
}

/// Runs in the service group after the application so that it shuts down first: every socket
/// gets a 1001 close frame before the HTTP server stops.
public struct WebSocketShutdownService: Service {
    let hub: SyncHub

    public init(hub: SyncHub) {
        self.hub = hub
    }

    public func run() async throws {
        try? await gracefulShutdown()
        await self.hub.closeAll()
    }
}

/// The WebSocket metrics: open connections, messages in/out by type, outbox drops, fan-out latency.
final class WebSocketMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let open: Gauge
    let drops: Counter
    let fanout: DurationHistogram

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        self.open = registry.makeGauge(
            descriptor: .init(namespace: "cairn", metricName: "websocket_connections", unitName: "open", helpText: "Open WebSocket connections")
        )
        self.drops = registry.makeCounter(
            descriptor: .init(namespace: "cairn", metricName: "websocket_outbox_dropped", unitName: "messages", helpText: "Messages dropped on outbox overflow")
        )
        self.fanout = registry.makeDurationHistogram(
            descriptor: .init(namespace: "cairn", metricName: "websocket_fanout_latency", unitName: "seconds", helpText: "Commit to send of sync_incremental"),
            buckets: [.milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1)]
        )
    }

    /// Counters by direction and message type, made once each (not looked up in the registry
    /// for every message: with 1,000 sockets a commit sends 1,000 messages).
    private let counters = Mutex<[String: Counter]>([:])

    private func counter(_ direction: String, _ type: String) -> Counter {
        self.counters.withLock { counters in
            let key = "\(direction) \(type)"
            if let counter = counters[key] { return counter }
            let counter = self.registry.makeCounter(
                descriptor: .init(
                    namespace: "cairn", metricName: "websocket_messages_\(direction)", unitName: "total",
                    helpText: direction == "in" ? "Messages received by type" : "Messages sent by type"),
                labels: [("type", type)]
            )
            counters[key] = counter
            return counter
        }
    }

    func messageIn(_ type: String) {
        self.counter("in", type).increment()
    }

    func messageOut(_ type: String) {
        self.counter("out", type).increment()
    }
}
