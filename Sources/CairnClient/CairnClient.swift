import CairnCore
import Foundation
import GRDB
import HummingbirdWSClient
import Logging
import Synchronization

/// An offline-first Cairn client: a local SQLite replica that syncs with a Cairn server.
///
/// Every write applies to the replica at once and is queued in a durable outbox in the same
/// local transaction; the client pushes the outbox (debounced), pulls on start, when the
/// WebSocket says something changed and on the polling interval, and rebases pending local
/// edits over what it pulls. Nothing queued is ever dropped: a failed push is retried with
/// exponential backoff and jitter, and a push that reached the server but whose answer was lost
/// is answered `duplicate` when retried.
///
/// ```swift
/// let client = try CairnClient(configuration: .init(
///     serverURL: URL(string: "http://127.0.0.1:8080")!,
///     credentials: .apiKey(key),
///     replicaPath: URL(fileURLWithPath: "cairn.sqlite")))
/// try await client.start()
/// let swift = try await client.bookmarks.add(url: "https://swift.org", title: "Swift", parentId: "toolbar")
/// try await client.collection("notes").put("n1", ["text": "hello"])
/// ```
public final class CairnClient: Sendable {
    /// The configuration the client was created with.
    public let configuration: ClientConfiguration
    let replica: Replica
    let api: AuthorizedHTTP
    let clock: LocalClock
    /// This device's `clientId`.
    public let clientId: String
    let logger: Logger

    private let statusValue = Broadcast<SyncStatus>(.idle)
    private let statsValue = Broadcast<SyncStats>(SyncStats())
    let events = EventFanout<RecordEvent>()
    private let wake = WakeSignal()
    private let syncGate = AsyncGate()
    private struct Running {
        var loop: Task<Void, Never>?
        var socket: Task<Void, Never>?
        var lock: FileLock?
        var destroyed = false
        var wantsPull = false
        var wantsPush = false
    }

    private let running = Mutex(Running())
    /// `user id|profile id` of the credentials, once asked (see `checkTarget`).
    private let target = Mutex<String?>(nil)

    /// Opens (or creates) the replica. Nothing is sent before ``start()`` or ``forceSync()``.
    public init(configuration: ClientConfiguration, logger: Logger = Logger(label: "cairn.client")) throws {
        self.configuration = configuration
        self.logger = logger
        self.replica = try Replica(path: configuration.replicaPath)
        let dates = ServerDateSink()
        let http = HTTPClient(baseURL: configuration.serverURL, onServerDate: { dates.deliver($0) })
        self.api = AuthorizedHTTP(http: http, tokens: TokenProvider(store: configuration.credentials.store, http: http))
        let clientId: String = try self.replica.pool.write { db in
            if let given = configuration.clientId {
                try Replica.setMeta(db, "clientId", given)
                return given
            }
            if let stored = try Replica.meta(db, "clientId") { return stored }
            let generated = "device-" + UUID().uuidString.lowercased().prefix(8)
            try Replica.setMeta(db, "clientId", generated)
            return generated
        }
        self.clientId = clientId
        let newestQueued: HLC? = try self.replica.pool.read { db in
            try String.fetchOne(db, sql: "SELECT op FROM outbox ORDER BY seq DESC LIMIT 1")
                .flatMap { try Replica.decode(SyncOperation.self, $0)?.hlc }
        }
        let offset = try self.replica.pool.read { db in try Replica.meta(db, "clockOffset").flatMap { Int64($0) } } ?? 0
        self.clock = LocalClock(node: clientId, after: newestQueued, offset: offset, wall: configuration.wallClock)
        dates.connect(self.clock)
        try self.replica.pool.write { db in try BookmarkStore.seedRoots(db) }
        let stats = try self.replica.pool.read { db in try Replica.meta(db, "stats") }
        if let stats, let decoded = try? JSONDecoder().decode(SyncStats.self, from: Data(stats.utf8)) {
            self.statsValue.update { $0 = decoded }
        }
    }

    // MARK: Typed surfaces

    /// The bookmark tree in the local replica.
    public var bookmarks: BookmarkStore { BookmarkStore(client: self) }

    /// A collection of JSON records, for example `client.collection("notes")`.
    public func collection(_ name: String) -> RecordCollection { RecordCollection(client: self, name: name) }

    // MARK: Status and stats

    /// The sync status now.
    public var currentStatus: SyncStatus { self.statusValue.value }

    /// The status as it changes: the current value first, then every change.
    public var status: AsyncStream<SyncStatus> { self.statusValue.stream() }

    /// The counters now.
    public var currentStats: SyncStats { self.statsValue.value }

    /// The counters as they change: the current value first, then every change.
    public var stats: AsyncStream<SyncStats> { self.statsValue.stream() }

    /// Every change of the replica (local writes and pulled changes) from now on.
    public func changes() -> AsyncStream<RecordEvent> { self.events.stream() }

    /// Local operations not yet acknowledged by the server.
    public func pendingCount() async throws -> Int { try await self.replica.pendingCount() }

    /// The server cursor this replica has pulled up to.
    public func cursor() async throws -> Int64 { Int64(try await self.replica.meta("cursor") ?? "0") ?? 0 }

    // MARK: Lifecycle

    /// Starts syncing in the background: a pull at once, pushes after local writes, the WebSocket
    /// hint channel (when `useWebSocket`) and the polling interval. Only one process at a time may
    /// sync a replica: if another holds it, this throws ``CairnClientError/replicaLocked``.
    public func start() async throws {
        let alreadyRunning = try self.running.withLock { running -> Bool in
            if running.destroyed { throw CairnClientError.destroyed }
            return running.loop != nil
        }
        if alreadyRunning { return }
        guard let lock = try FileLock.tryAcquire(path: self.configuration.replicaPath.path + ".lock") else {
            throw CairnClientError.replicaLocked
        }
        let loop = Task { [weak self] in
            guard let self else { return }
            await self.runLoop()
        }
        let socket: Task<Void, Never>? =
            self.configuration.useWebSocket && self.configuration.direction != .push
            ? Task { [weak self] in
                guard let self else { return }
                await self.runSocket()
            } : nil
        self.running.withLock {
            $0.lock = lock
            $0.loop = loop
            $0.socket = socket
            $0.wantsPull = true
        }
        self.wake.notify()
    }

    /// Pushes everything queued and pulls everything new, now. Works whether or not the client was
    /// started; when it was not, it takes the replica's process lock for the duration.
    @discardableResult
    public func forceSync() async throws -> SyncReport {
        let (started, destroyed) = self.running.withLock { ($0.loop != nil, $0.destroyed) }
        if destroyed { throw CairnClientError.destroyed }
        var lock: FileLock?
        if !started {
            guard let acquired = try FileLock.tryAcquire(path: self.configuration.replicaPath.path + ".lock") else {
                throw CairnClientError.replicaLocked
            }
            lock = acquired
        }
        defer { lock?.release() }
        return try await self.syncNow()
    }

    /// Stops background syncing; queued writes stay in the outbox for the next start.
    public func stop() async {
        let (loop, socket, lock) = self.running.withLock { running in
            defer {
                running.loop = nil
                running.socket = nil
                running.lock = nil
            }
            return (running.loop, running.socket, running.lock)
        }
        loop?.cancel()
        socket?.cancel()
        self.wake.notify()
        await loop?.value
        await socket?.value
        lock?.release()
        self.statusValue.update { $0 = .idle }
    }

    /// Stops the client and deletes its local replica (queued writes included). The client
    /// cannot be used afterwards.
    public func destroy() async throws {
        await self.stop()
        self.running.withLock { $0.destroyed = true }
        self.statusValue.finish()
        self.statsValue.finish()
        self.events.finish()
        try self.replica.pool.close()
        Replica.destroy(at: self.configuration.replicaPath)
    }

    // MARK: Local writes

    /// Applies `build`'s operations to the replica and queues them, in one local transaction,
    /// then schedules a push.
    func write(_ build: @escaping @Sendable (Database, LocalClock, String) throws -> [SyncOperation]) async throws -> [RecordEvent] {
        try await self.write { db, clock, node in (try build(db, clock, node), ()) }.0
    }

    /// ``write(_:)`` for a builder that also returns a value.
    func write<T: Sendable>(
        _ build: @escaping @Sendable (Database, LocalClock, String) throws -> ([SyncOperation], T)
    ) async throws -> ([RecordEvent], T) {
        if self.running.withLock({ $0.destroyed }) { throw CairnClientError.destroyed }
        let clock = self.clock
        let node = self.clientId
        let (events, value) = try self.replica.write { db in
            let (ops, value) = try build(db, clock, node)
            return (try Replica.enqueue(db, ops), value)
        }
        FaultInjection.reach("after-local-write")
        self.events.send(events)
        self.running.withLock { $0.wantsPush = true }
        self.wake.notify()
        return (events, value)
    }

    /// A new opId for an op of this device.
    func newOpId() -> String { "\(self.clientId)-\(self.configuration.makeIdentifier())" }

    /// A new record id.
    func newRecordId() -> String { self.configuration.makeIdentifier() }

    /// Keeps the learned clock correction (see ``LocalClock``) in the replica, so that a restart
    /// stamps offline edits with it before the first answer.
    func persistClockOffset() async throws {
        let offset = self.clock.offset
        let stored = try await self.replica.meta("clockOffset").flatMap { Int64($0) } ?? 0
        if stored != offset { try await self.replica.setMeta("clockOffset", String(offset)) }
    }

    /// Applies one pulled page: the changes and the cursor (one transaction), then moves the
    /// clock past the newest change seen (the HLC receive rule).
    func applyPulledPage(_ page: PullResponse) async throws -> [RecordEvent] {
        let events = try await self.replica.applyPull(page.changes, cursor: page.cursor)
        if let newest = page.changes.map(\.updatedAt).max() { self.clock.observe(wall: newest) }
        return events
    }

    // MARK: The sync loop

    private func runLoop() async {
        var attempt = 0
        var retryAt: ContinuousClock.Instant?
        var nextPull = ContinuousClock.now
        var lastSeenPending = -1
        while !Task.isCancelled {
            let now = ContinuousClock.now
            var due = false
            let (wantsPush, wantsPull) = self.running.withLock { running in
                defer {
                    running.wantsPush = false
                    running.wantsPull = false
                }
                return (running.wantsPush, running.wantsPull)
            }
            if wantsPush {
                // Coalesce a burst of writes into one push.
                try? await Task.sleep(for: self.configuration.pushDebounce)
                due = true
            }
            if wantsPull || now >= nextPull { due = true }
            if let retryAt, now >= retryAt { due = true }
            if !due, retryAt == nil, let pending = try? await self.replica.pendingCount() {
                // Writes another process queued on the same replica.
                if pending > 0 && pending != lastSeenPending { due = true }
                lastSeenPending = pending
            }
            if due && !Task.isCancelled {
                do {
                    _ = try await self.syncNow()
                    attempt = 0
                    retryAt = nil
                    lastSeenPending = (try? await self.replica.pendingCount()) ?? -1
                } catch CairnClientError.unauthorized {
                    retryAt = nil
                } catch {
                    attempt += 1
                    if self.configuration.autoRetry && attempt <= self.configuration.maxRetryAttempts {
                        retryAt = ContinuousClock.now + Backoff.delay(attempt: attempt, base: self.configuration.retryDelay, cap: self.configuration.maxRetryDelay)
                    } else {
                        retryAt = nil
                        attempt = 0
                        self.statusValue.update { $0 = .error }
                    }
                }
                nextPull = ContinuousClock.now + self.configuration.pullInterval
            }
            var timeout = min(self.configuration.outboxCheckInterval, max(.zero, nextPull - ContinuousClock.now))
            if let retryAt { timeout = min(timeout, max(.zero, retryAt - ContinuousClock.now)) }
            _ = await self.wake.wait(timeout: max(timeout, .milliseconds(5)))
        }
    }

    /// Asks the loop for a pull (a WebSocket hint).
    private func hintPull() {
        self.running.withLock { $0.wantsPull = true }
        self.wake.notify()
    }

    /// One full sync under the sync gate: target check, push, pull.
    private func syncNow() async throws -> SyncReport {
        let release = await self.syncGate.enter()
        defer { release() }
        self.statusValue.update { $0 = .syncing }
        do {
            var report = SyncReport()
            report.targetChanged = try await self.checkTarget()
            if self.configuration.direction != .pull { try await self.pushAll(into: &report) }
            if self.configuration.direction != .push { try await self.pullAll(into: &report) }
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            self.statsValue.update { stats in
                stats.pushCount += report.pushed
                stats.pullCount += report.pulled
                stats.conflictCount += report.conflicts
                stats.rejectedCount += report.rejected.count
                stats.lastSyncAt = now
            }
            try? await self.replica.setMeta("stats", Replica.encode(self.statsValue.value))
            try? await self.persistClockOffset()
            self.statusValue.update { $0 = .idle }
            return report
        } catch let error as CairnClientError {
            if case .offline = error {
                self.statusValue.update { $0 = .offline }
            } else {
                self.statusValue.update { $0 = .error }
            }
            throw error
        } catch {
            self.statusValue.update { $0 = .error }
            throw error
        }
    }

    /// Seed 004: a replica that synced with another server, account or profile forgets its
    /// markers and queues its whole state for the new one (once). A replica that never synced
    /// keeps them. The target is who the server says the credentials belong to (the user's and the
    /// profile's ids, asked once per client), not how the URL is spelled: `localhost` and
    /// `127.0.0.1` are the same target, another account on the same server is not.
    private func checkTarget() async throws -> Bool {
        let target: String
        if let known = self.target.withLock({ $0 }) {
            target = known
        } else {
            let me = try await self.me()
            let wanted = self.configuration.profile
            guard let profile = me.profiles.first(where: { $0.id == wanted || $0.name == wanted }) else {
                throw CairnClientError.server(status: 404, code: "NOT_FOUND", message: "this account has no profile \(wanted)")
            }
            target = "\(me.user.id)|\(profile.id)"
            self.target.withLock { $0 = target }
        }
        let stored = try await self.replica.meta("target")
        if stored == target { return false }
        if stored != nil {
            let queued = try await self.replica.resetForNewTarget(node: self.clientId, clock: self.clock)
            self.logger.notice("Sync target changed: every record is pushed again", metadata: ["records": "\(queued)"])
        }
        try await self.replica.setMeta("target", target)
        return stored != nil
    }

    private var profileQuery: [URLQueryItem] { [URLQueryItem(name: "profile", value: self.configuration.profile)] }

    private struct PushBody: Encodable {
        var clientId: String
        var operations: [SyncOperation]
        var strategy: String
    }

    private struct PushAnswer: Decodable {
        var committed: Bool?
        var results: [OperationResult]
    }

    private func pushAll(into report: inout SyncReport) async throws {
        var batchSize = self.configuration.pushBatchSize
        while !Task.isCancelled {
            let batch = try await self.replica.pending(limit: batchSize, collections: self.configuration.collections)
            if batch.isEmpty { return }
            let ops = batch.map(\.op)
            FaultInjection.reach("before-push")
            let answer: PushAnswer
            do {
                answer = try await self.api.send(
                    "POST", "api/sync/push", query: self.profileQuery,
                    body: PushBody(clientId: self.clientId, operations: ops, strategy: self.configuration.conflictStrategy.serverStrategy))
            } catch CairnClientError.server(let status, let code, let message)
                where (status == 413 && code == CairnError.Code.payloadTooLarge.rawValue)
                || (status == 400 && code == CairnError.Code.validation.rawValue)
            {
                // Cairn refused the request as a whole (too large, or an op it cannot read): split
                // the batch until the op at fault is alone, then drop that one op as rejected so
                // that it never wedges the queue. A 400 or 413 without Cairn's envelope (a proxy)
                // is an ordinary failure: retried, nothing dropped.
                if ops.count > 1 {
                    batchSize = max(1, ops.count / 2)
                    continue
                }
                let refused = OperationResult(
                    opId: ops[0].opId, status: .rejected, collection: ops[0].collection, id: ops[0].id,
                    error: OperationError(code: code, message: message))
                let outcome = try await self.replica.applyPushResults(ops, [refused])
                self.events.send(outcome.events)
                report.rejected += outcome.rejected
                self.logger.warning("The server refused a queued operation", metadata: ["opId": "\(ops[0].opId)", "code": "\(code)"])
                batchSize = self.configuration.pushBatchSize
                continue
            }
            FaultInjection.reach("after-ack")
            // For a custom resolver: this device's view of each conflicting record, before the
            // server's answer replaces it.
            var localViews: [String: [String: JSONValue]] = [:]
            if case .custom = self.configuration.conflictStrategy {
                for result in answer.results where result.status == .conflict {
                    if let id = result.id, let record = try await self.replica.record(result.collection, id), !record.deleted {
                        localViews["\(result.collection)/\(id)"] = record.data
                    }
                }
            }
            let outcome = try await self.replica.applyPushResults(ops, answer.results)
            self.events.send(outcome.events)
            report.pushed += outcome.acknowledged - outcome.rejected.count
            report.conflicts += outcome.conflicts.count
            report.rejected += outcome.rejected
            for rejected in outcome.rejected {
                self.logger.warning(
                    "The server refused a queued operation",
                    metadata: ["opId": "\(rejected.opId)", "code": "\(rejected.error?.code ?? "")", "message": "\(rejected.error?.message ?? "")"])
            }
            if case .custom(let resolver) = self.configuration.conflictStrategy {
                try await self.resolve(outcome.conflicts, localViews: localViews, with: resolver)
            }
            if outcome.acknowledged == 0 { return }  // nothing moved (an atomic rollback): do not spin
        }
    }

    /// Runs the custom resolver on each conflict and queues its answer as a causal write.
    private func resolve(
        _ conflicts: [(op: SyncOperation, result: OperationResult)], localViews: [String: [String: JSONValue]],
        with resolver: @Sendable (SyncConflict) async -> [String: JSONValue]?
    ) async throws {
        for (op, result) in conflicts {
            guard let id = op.id, result.status == .conflict, result.error?.code == CairnError.Code.conflict.rawValue else { continue }
            let (remote, version) = result.record.map { OperationFold.serverState(collection: op.collection, record: $0) } ?? (.absent, result.version)
            // Delete wins: an edit of a record deleted elsewhere can only conflict again.
            guard remote.isLive else { continue }
            let conflict = SyncConflict(
                collection: op.collection, documentId: id, localDocument: localViews["\(op.collection)/\(id)"],
                remoteDocument: remote.isLive ? remote.data : nil, remoteVersion: version ?? result.version ?? 0)
            guard let resolved = await resolver(conflict) else { continue }
            let expected = conflict.remoteVersion
            let opId = self.newOpId()
            _ = try await self.write { _, clock, _ in
                if op.collection == OperationFold.bookmarks {
                    var patch: [String: JSONValue] = [:]
                    for key in BookmarkStore.writableFields where resolved[key] != nil { patch[key] = resolved[key] }
                    return [SyncOperation(opId: opId, type: .update, collection: op.collection, id: id, patch: .object(patch), expectedVersion: expected, hlc: clock.next())]
                }
                return [SyncOperation(opId: opId, type: .upsert, collection: op.collection, id: id, data: .object(resolved), expectedVersion: expected, hlc: clock.next())]
            }
        }
    }

    private func pullAll(into report: inout SyncReport) async throws {
        var cursor = try await self.cursor()
        var restarted = false
        // During a resync from 0: every record the server still has. What the replica knows from
        // the server and is not among them was deleted and its tombstone purged.
        var seen: Set<ReplicaKey>?
        while !Task.isCancelled {
            var query = self.profileQuery + [
                URLQueryItem(name: "since", value: String(cursor)), URLQueryItem(name: "limit", value: String(self.configuration.pullPageSize)),
            ]
            if let collections = self.configuration.collections {
                query.append(URLQueryItem(name: "collections", value: collections.joined(separator: ",")))
            }
            let page: PullResponse
            do {
                page = try await self.api.send("GET", "api/sync/pull", query: query)
            } catch CairnClientError.server(410, _, _) where !restarted {
                // Behind the purge horizon (or ahead of a reset server): pull everything again.
                restarted = true
                seen = []
                cursor = 0
                continue
            }
            var events = try await self.applyPulledPage(page)
            if seen != nil { for change in page.changes { seen?.insert(ReplicaKey(collection: change.collection, id: change.id)) } }
            let done = !page.hasMore || page.cursor <= cursor
            if done, let seen {
                // The copy now equals what the server sent (sync.md, "To resync"): drop the rest.
                events += try await self.replica.dropServerRecords(except: seen, collections: self.configuration.collections)
            }
            self.events.send(events)
            report.pulled += events.count
            if done { return }
            cursor = page.cursor
        }
    }

    // MARK: The WebSocket hint channel

    private func runSocket() async {
        var attempt = 0
        while !Task.isCancelled {
            let opened = Mutex(false)
            do {
                let token = try await self.api.tokens.current()
                try await self.listen(token: token) { opened.withLock { $0 = true } }
            } catch {
                self.logger.debug("WebSocket closed", metadata: ["error": "\(error)"])
            }
            if Task.isCancelled { return }
            if opened.withLock({ $0 }) {
                attempt = 0
            } else {
                // A refused upgrade says nothing about why: an authorized request refreshes an
                // expired session (and tells offline from refused).
                _ = try? await self.api.raw("GET", "api/me")
            }
            attempt += 1
            try? await Task.sleep(for: Backoff.delay(attempt: attempt, base: .milliseconds(500), cap: .seconds(30)))
        }
    }

    /// One WebSocket session: every change notice triggers a pull by cursor. Returns when the
    /// server closes the socket; on cancellation it closes the socket itself (the client library
    /// does not end a connection on task cancellation by itself).
    private func listen(token: String, onOpen: @escaping @Sendable () -> Void) async throws {
        var components = URLComponents(url: self.configuration.serverURL.appendingPathComponent("api/sync/ws"), resolvingAgainstBaseURL: false)!
        components.scheme = components.scheme == "https" ? "wss" : "ws"
        components.queryItems = [URLQueryItem(name: "profile", value: self.configuration.profile), URLQueryItem(name: "clientId", value: self.clientId)]
        let hint: @Sendable () -> Void = { [weak self] in self?.hintPull() }
        _ = try await WebSocketClient.connect(
            url: components.string!,
            configuration: .init(maxFrameSize: 1 << 20, additionalHeaders: [.authorization: "Bearer \(token)"]),
            logger: self.logger
        ) { inbound, outbound, _ in
            await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for try await message in inbound.messages(maxSize: 1 << 21) {
                        guard case .text(let text) = message else { continue }
                        if text.contains("\"auth_success\"") { onOpen() }
                        if text.contains("\"sync_incremental\"") || text.contains("\"sync_full\"") || text.contains("\"resync\"")
                            || text.contains("\"auth_success\"")
                        {
                            hint()
                        }
                    }
                }
                group.addTask {
                    // Ends when the session is cancelled (stop()).
                    while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
                }
                _ = try? await group.next()
                try? await outbound.close(.normalClosure, reason: nil)
                group.cancelAll()
            }
        }
    }
}

/// Exponential backoff with full jitter.
enum Backoff {
    static func delay(attempt: Int, base: Duration, cap: Duration) -> Duration {
        let exponent = min(attempt - 1, 20)
        let ceiling = min(base * (1 << exponent), cap)
        let seconds = Double(ceiling.components.seconds) + Double(ceiling.components.attoseconds) / 1e18
        return .milliseconds(Int(seconds * 1000 * Double.random(in: 0.5...1.0)))
    }
}
