import ArgumentParser
import CairnServer
import Foundation
import Hummingbird
import Logging

/// `cairn serve`: runs the server on the embedded SQLite store.
///
/// Every option can also come from an environment variable (`CAIRN_PORT=9000`); a flag on the
/// command line wins over the environment, which wins over the default.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the Cairn sync server.",
        discussion: """
            Environment variables: CAIRN_HOST, CAIRN_PORT, CAIRN_DATA_DIR, CAIRN_REGISTRATION,
            CAIRN_CORS_ORIGINS (comma-separated), CAIRN_LOG_LEVEL, CAIRN_TRUSTED_PROXIES (comma-separated),
            CAIRN_TOMBSTONE_RETENTION_DAYS, CAIRN_IDLE_TIMEOUT, CAIRN_MAX_WEBSOCKETS_PER_USER.
            Advanced: CAIRN_BCRYPT_COST (default 12; lower only in tests), CAIRN_AUTH_RATE_LIMIT (requests a
            minute per client address on /api/auth/*, default 60, burst a third of it).
            """
    )

    @Option(help: "Interface to bind. [env: CAIRN_HOST] (default: 127.0.0.1)")
    var host: String?

    @Option(help: "Port to listen on; 0 picks a free port. [env: CAIRN_PORT] (default: 8080)")
    var port: Int?

    @Option(name: .customLong("data-dir"), help: "Directory for the database and secrets, created if missing. [env: CAIRN_DATA_DIR] (default: ./cairn-data)")
    var dataDir: String?

    @Option(help: "Whether anyone may register: open or closed. [env: CAIRN_REGISTRATION] (default: open)")
    var registration: String?

    @Option(name: .customLong("cors-origin"), help: "An allowed browser origin (repeatable), e.g. https://app.example.com or chrome-extension://*. [env: CAIRN_CORS_ORIGINS]")
    var corsOrigins: [String] = []

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical. [env: CAIRN_LOG_LEVEL] (default: info)")
    var logLevel: String?

    @Option(name: .customLong("trusted-proxy"), help: "Address of a reverse proxy whose X-Forwarded-For is trusted (repeatable). [env: CAIRN_TRUSTED_PROXIES]")
    var trustedProxies: [String] = []

    @Option(name: .customLong("tombstone-retention-days"), help: "Purge tombstones older than this many days (default: keep forever). [env: CAIRN_TOMBSTONE_RETENTION_DAYS]")
    var tombstoneRetentionDays: Int?

    @Option(name: .customLong("max-websockets-per-user"), help: "Most WebSockets one user may hold open at once. [env: CAIRN_MAX_WEBSOCKETS_PER_USER] (default: 100)")
    var maxWebSocketsPerUser: Int?

    @Option(name: .customLong("idle-timeout"), help: "Seconds before an idle connection, or one whose request headers are still incomplete, is closed. [env: CAIRN_IDLE_TIMEOUT] (default: 60)")
    var idleTimeout: Int?

    func resolvedConfiguration(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ServerConfiguration {
        var configuration = ServerConfiguration()
        configuration.host = self.host ?? environment["CAIRN_HOST"] ?? configuration.host
        if let port = self.port {
            configuration.port = port
        } else if let raw = environment["CAIRN_PORT"] {
            guard let port = Int(raw) else { throw ValidationError("CAIRN_PORT must be a number, got '\(raw)'") }
            configuration.port = port
        }
        guard (0...65535).contains(configuration.port) else { throw ValidationError("port must be between 0 and 65535") }
        configuration.dataDirectory = URL(fileURLWithPath: self.dataDir ?? environment["CAIRN_DATA_DIR"] ?? "./cairn-data")
        let registration = self.registration ?? environment["CAIRN_REGISTRATION"] ?? "open"
        guard let mode = ServerConfiguration.Registration(rawValue: registration.lowercased()) else {
            throw ValidationError("registration must be 'open' or 'closed', got '\(registration)'")
        }
        configuration.registration = mode
        configuration.corsOrigins = self.corsOrigins.isEmpty ? Self.list(environment["CAIRN_CORS_ORIGINS"]) : self.corsOrigins
        configuration.trustedProxies = self.trustedProxies.isEmpty ? Self.list(environment["CAIRN_TRUSTED_PROXIES"]) : self.trustedProxies
        let level = self.logLevel ?? environment["CAIRN_LOG_LEVEL"] ?? "info"
        guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
            throw ValidationError("log level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        configuration.logLevel = parsed
        if self.tombstoneRetentionDays == nil, let raw = environment["CAIRN_TOMBSTONE_RETENTION_DAYS"], Int(raw) == nil {
            throw ValidationError("CAIRN_TOMBSTONE_RETENTION_DAYS must be a number of days, got '\(raw)'")
        }
        if let days = self.tombstoneRetentionDays ?? environment["CAIRN_TOMBSTONE_RETENTION_DAYS"].flatMap({ Int($0) }) {
            guard days >= 1 else { throw ValidationError("tombstone retention must be at least 1 day") }
            configuration.tombstoneRetentionDays = days
        }
        if let limit = self.maxWebSocketsPerUser {
            configuration.maxWebSocketsPerUser = limit
        } else if let raw = environment["CAIRN_MAX_WEBSOCKETS_PER_USER"] {
            guard let limit = Int(raw) else { throw ValidationError("CAIRN_MAX_WEBSOCKETS_PER_USER must be a number, got '\(raw)'") }
            configuration.maxWebSocketsPerUser = limit
        }
        guard configuration.maxWebSocketsPerUser >= 1 else { throw ValidationError("max-websockets-per-user must be at least 1") }
        if self.idleTimeout == nil, let raw = environment["CAIRN_IDLE_TIMEOUT"], Int(raw) == nil {
            throw ValidationError("CAIRN_IDLE_TIMEOUT must be a number of seconds, got '\(raw)'")
        }
        if let seconds = self.idleTimeout ?? environment["CAIRN_IDLE_TIMEOUT"].flatMap({ Int($0) }) {
            guard (1...3600).contains(seconds) else { throw ValidationError("idle timeout must be 1 to 3600 seconds") }
            configuration.idleTimeoutSeconds = Int64(seconds)
        }
        if let raw = environment["CAIRN_AUTH_RATE_LIMIT"] {
            guard let perMinute = Int(raw), perMinute >= 1 else { throw ValidationError("CAIRN_AUTH_RATE_LIMIT must be a positive number, got '\(raw)'") }
            configuration.authRatePerMinute = Double(perMinute)
            configuration.authBurst = max(1, Double(perMinute) / 3)
        }
        if let raw = environment["CAIRN_BCRYPT_COST"] {
            guard let cost = UInt8(raw), (4...31).contains(cost) else { throw ValidationError("CAIRN_BCRYPT_COST must be 4 to 31") }
            configuration.bcryptCost = cost
        }
        return configuration
    }

    static func list(_ value: String?) -> [String] {
        (value ?? "").split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func run() async throws {
        let configuration = try self.resolvedConfiguration()
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = configuration.logLevel
            return handler
        }
        let logger = Logger(label: "cairn")
        if configuration.bcryptCost < 10 {
            logger.warning("CAIRN_BCRYPT_COST=\(configuration.bcryptCost) is below 10: for tests only, never for real accounts")
        }
        try await runServer(configuration: configuration, logger: logger)
        logger.notice("Cairn stopped")
    }
}
