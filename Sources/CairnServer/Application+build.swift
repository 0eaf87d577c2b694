import CairnCore
import Foundation
import Hummingbird
import HummingbirdWebSocket
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle

/// Everything a running server is made of, assembled once by ``makeServer(configuration:logger:)``.
/// Tests use it to reach the store and services behind the application.
public struct CairnServerComponents: Sendable {
    public let configuration: ServerConfiguration
    public let store: any SyncStore
    public let metrics: ServerMetrics
    public let engine: SyncEngine
    /// The WebSocket hub (also the engine's change notifier).
    public let hub: SyncHub
    /// Applies seed 001's queued operations.
    public let queue: QueueProcessor
    let tickets: WebSocketTickets
    let auth: AuthService
    let logger: Logger
}

/// Opens the data directory and database (running migrations and the durability check) and
/// wires the services. Nothing listens yet.
public func makeServer(configuration: ServerConfiguration, logger: Logger? = nil) async throws -> CairnServerComponents {
    var logger = logger ?? Logger(label: "cairn")
    logger.logLevel = configuration.logLevel
    try FileManager.default.createDirectory(at: configuration.dataDirectory, withIntermediateDirectories: true)
    let secrets = try ServerSecrets.loadOrCreate(in: configuration.dataDirectory)
    let store = try SQLiteSyncStore(path: configuration.databasePath, logger: logger)
    try await store.prepare()
    let tokens = await TokenService(secrets: secrets, clock: configuration.clock, accessTokenLifetime: configuration.accessTokenLifetime)
    let hasher = PasswordHasher(pepper: secrets.passwordPepper, cost: configuration.bcryptCost)
    let auth = AuthService(
        store: store, tokens: tokens, hasher: hasher, clock: configuration.clock, logger: logger,
        refreshTokenLifetime: configuration.refreshTokenLifetime, refreshGrace: configuration.refreshGraceSeconds
    )
    let metrics = ServerMetrics()
    let hub = SyncHub(
        auth: auth, metrics: metrics, logger: logger, maxConnectionsPerUser: configuration.maxWebSocketsPerUser,
        sweepInterval: .milliseconds(Int(configuration.webSocketSweepSeconds * 1000))
    )
    let engine = SyncEngine(store: store, clock: configuration.clock, limits: configuration.limits, notifier: hub, logger: logger, metrics: metrics)
    return CairnServerComponents(
        configuration: configuration, store: store, metrics: metrics, engine: engine, hub: hub,
        queue: QueueProcessor(engine: engine, store: store, clock: configuration.clock, logger: logger),
        tickets: WebSocketTickets(clock: configuration.clock), auth: auth, logger: logger
    )
}

/// Builds the router with every route and middleware.
public func buildRouter(_ components: CairnServerComponents) -> Router<CairnRequestContext> {
    let configuration = components.configuration
    let router = Router(context: CairnRequestContext.self)
    // Outermost first: every response, errors included, passes through the ones above it.
    router.add(middleware: RequestLogMiddleware())
    router.add(middleware: SecurityHeadersMiddleware())
    router.add(middleware: CORSAllowlistMiddleware(allowlist: OriginAllowlist(configuration.corsOrigins)))
    router.add(middleware: MetricsMiddleware(metrics: components.metrics))
    router.add(middleware: ErrorMiddleware())
    let routeTable = RouteTable()
    router.add(middleware: MethodNotAllowedMiddleware(table: routeTable))
    router.add(middleware: ClientAddressMiddleware(trustedProxies: Set(configuration.trustedProxies)))
    router.add(middleware: BodyLimitMiddleware(limit: configuration.limits.maxBodyBytes))
    router.add(middleware: InputHygieneMiddleware())

    let clock = configuration.clock
    let authController = AuthController(
        auth: components.auth, store: components.store, engine: components.engine, configuration: configuration,
        ipLimiter: RateLimiter(perMinute: configuration.authRatePerMinute, burst: configuration.authBurst, clock: clock),
        loginFailureLimiter: RateLimiter(perMinute: configuration.loginFailuresPerMinute, burst: configuration.loginFailureBurst, clock: clock),
        metrics: components.metrics
    )
    SystemController(store: components.store, configuration: configuration, metrics: components.metrics).addRoutes(to: router)
    authController.addPublicRoutes(to: router.group("api/auth"))

    // One authenticator (and one per-user rate limit) for every authenticated route.
    let authenticator = AuthenticatorMiddleware(
        auth: components.auth,
        limiter: RateLimiter(perMinute: configuration.apiRatePerMinute, burst: configuration.apiBurst, clock: clock),
        metrics: components.metrics
    )
    let api = router.group("api").add(middleware: authenticator)
    authController.addProtectedRoutes(to: api)
    APIKeyController(auth: components.auth).addRoutes(to: api)
    let profiles = ProfileResolver(store: components.store)
    components.webSocketController(profiles: profiles).addHTTPRoutes(public: router, protected: api)
    BookmarksController(engine: components.engine, profiles: profiles, limits: configuration.limits).addRoutes(to: api)
    SyncController(engine: components.engine, store: components.store, profiles: profiles, limits: configuration.limits, clock: clock, devices: DeviceLog(store: components.store))
        .addRoutes(to: api)
    ProfilesController(store: components.store, engine: components.engine, profiles: profiles, clock: clock).addRoutes(to: api)
    RecordsController(engine: components.engine, profiles: profiles, limits: configuration.limits).addRoutes(to: api)
    let profileRoutes = ProfilesController(store: components.store, engine: components.engine, profiles: profiles, clock: clock)
    Seed001Controller(
        engine: components.engine, store: components.store, profiles: profiles, queue: components.queue, limits: configuration.limits, clock: clock
    ).addRoutes(to: api)
    Seed002Controller(
        engine: components.engine, store: components.store, profiles: profiles, profileRoutes: profileRoutes, limits: configuration.limits, clock: clock
    ).addRoutes(to: api)
    // Seed 004 lives at the root (`/items`, `/profiles`), with the same authentication.
    let root = router.group().add(middleware: authenticator)
    Seed004Controller(
        engine: components.engine, store: components.store, profiles: profiles, profileRoutes: profileRoutes, limits: configuration.limits, clock: clock
    ).addRoutes(to: root)
    routeTable.fill(from: router)
    return router
}

/// HTTP/1.1 with the WebSocket upgrade, guarded so that silent connections, slow heads and
/// oversized heads are answered and closed (``HeadGuardedChannel``).
func serverBuilder(_ components: CairnServerComponents) -> HTTPServerBuilder {
    let configuration = components.configuration
    let webSocketResponder = buildWebSocketRouter(components).buildResponder()
    let channelConfiguration = HTTP1WebSocketUpgradeChannel.Configuration(
        http1: .init(additionalChannelHandlers: [RequestHeadWatcher()], idleTimeout: .seconds(configuration.idleTimeoutSeconds)),
        ws: .init(
            maxFrameSize: configuration.limits.maxWebSocketMessageBytes,
            autoPing: .enabled(timePeriod: .seconds(configuration.webSocketPingSeconds)),
            closeTimeout: .seconds(5),
            validateUTF8: true
        )
    )
    let limits = RequestHeadLimits(headTimeout: .seconds(configuration.idleTimeoutSeconds))
    return HTTPServerBuilder { responder in
        HeadGuardedChannel(
            inner: HTTP1WebSocketUpgradeChannel(responder: responder, webSocketResponder: webSocketResponder, configuration: channelConfiguration),
            limits: limits
        )
    }
}

/// The router that decides WebSocket upgrades.
func buildWebSocketRouter(_ components: CairnServerComponents) -> Router<CairnRequestContext> {
    let router = Router(context: CairnRequestContext.self)
    components.webSocketController(profiles: ProfileResolver(store: components.store)).addUpgradeRoute(to: router)
    return router
}

extension CairnServerComponents {
    func webSocketController(profiles: ProfileResolver) -> WebSocketController {
        WebSocketController(
            hub: self.hub, engine: self.engine, auth: self.auth, tickets: self.tickets, profiles: profiles,
            allowlist: OriginAllowlist(self.configuration.corsOrigins), configuration: self.configuration, logger: self.logger
        )
    }
}

/// Runs the server until SIGINT or SIGTERM: the application, then, first to stop, the service
/// that closes every WebSocket with 1001 before the HTTP server goes away.
public func runServer(configuration: ServerConfiguration, logger: Logger) async throws {
    let components = try await makeServer(configuration: configuration, logger: logger)
    let app = buildApplication(components)
    let group = ServiceGroup(
        configuration: .init(
            services: [
                .init(service: app),
                .init(service: WebSocketShutdownService(hub: components.hub)),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
    )
    try await group.run()
}

/// Builds the whole Cairn application: `cairn serve` and the tests both call this.
///
/// ```swift
/// let app = try await buildApplication(configuration: ServerConfiguration())
/// try await app.runService()
/// ```
public func buildApplication(configuration: ServerConfiguration, logger: Logger? = nil) async throws -> some ApplicationProtocol {
    let components = try await makeServer(configuration: configuration, logger: logger)
    return buildApplication(components)
}

/// Builds the application around already-made components.
public func buildApplication(_ components: CairnServerComponents) -> some ApplicationProtocol {
    let configuration = components.configuration
    let logger = components.logger
    let router = buildRouter(components)
    var services: [any Service] = [components.hub, components.queue]
    if let days = configuration.tombstoneRetentionDays, days > 0 {
        services.append(TombstonePurger(engine: components.engine, retention: TimeInterval(days) * 86_400, logger: logger))
    }
    return Application(
        router: router,
        server: serverBuilder(components),
        configuration: ApplicationConfiguration(
            address: .hostname(configuration.host, port: configuration.port),
            serverName: nil,
            availableConnectionsDelegate: .maximum(configuration.maxConnections, logger: logger)
        ),
        services: services,
        onServerRunning: { channel in
            let port = channel.localAddress?.port ?? configuration.port
            logger.notice(
                "Cairn listening on http://\(configuration.host):\(port)",
                metadata: ["storage": .string(components.store.backendName), "data_dir": .string(configuration.dataDirectory.path)]
            )
        },
        logger: logger
    )
}
