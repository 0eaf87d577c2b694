import CairnCore
import Foundation
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import Synchronization

/// One sync WebSocket: authentication, the seed 000 messages, and streaming the profile's changes
/// from the connection's own cursor.
///
/// Three tasks per socket: a reader (decodes client messages), a session (handles messages and
/// wake-ups one at a time, so a push and the catch-up never interleave), and a writer (drains the
/// bounded outbox). The session owns the cursor; hints only wake it, so no change is skipped or
/// sent twice whatever the order of commits, hints and pulls.
///
/// Every client message gets exactly one answer (its reply, or `error` `RATE_LIMITED`), queued
/// as a reply that overflow never drops; the reader takes the next message only once the outbox
/// has room, so a client that sends faster than it reads is read more slowly (TCP then slows
/// it) instead of growing the queue.
final class SyncConnection: Sendable {
    enum Event: Sendable {
        case message(ClientMessage)
        case malformed(code: String, message: String)
        case wake
        case authTimeout
    }

    struct Shared {
        var wakePending = false
        var oldestHint: ContinuousClock.Instant?
        var closing = false
    }

    let hub: SyncHub
    let engine: SyncEngine
    let profiles: ProfileResolver
    let limits: Limits
    let logger: Logger
    let outbox: Outbox
    /// Why reading failed (invalid UTF-8, an oversized message), to close with its code. Never a
    /// cancellation: `run` cancels the reader only once it is ending for another reason.
    let readFailure = Mutex<(any Error)?>(nil)
    let authTimeout: Double
    let inboundLimiter: RateLimiter
    let shared = Mutex(Shared())
    let events: AsyncStream<Event>
    let continuation: AsyncStream<Event>.Continuation

    init(hub: SyncHub, engine: SyncEngine, profiles: ProfileResolver, configuration: ServerConfiguration, logger: Logger) {
        let limits = configuration.limits
        self.outbox = Outbox(maxMessages: configuration.webSocketOutboxMessages, maxBytes: configuration.webSocketOutboxBytes)
        self.authTimeout = configuration.webSocketAuthTimeoutSeconds
        self.hub = hub
        self.engine = engine
        self.profiles = profiles
        self.limits = limits
        self.logger = logger
        self.inboundLimiter = RateLimiter(perMinute: 50 * 60, burst: 200)
        (self.events, self.continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingOldest(64))
    }

    // MARK: Signals from elsewhere

    /// A commit happened in this connection's profile.
    func wake(at instant: ContinuousClock.Instant) {
        let shouldYield = self.shared.withLock { shared in
            if shared.oldestHint == nil { shared.oldestHint = instant }
            if shared.wakePending { return false }
            shared.wakePending = true
            return true
        }
        if shouldYield { self.continuation.yield(.wake) }
    }

    /// Closes the socket with `code` after what is already queued.
    func requestClose(_ code: WebSocketErrorCode, reason: String) {
        let first = self.shared.withLock { shared in
            defer { shared.closing = true }
            return !shared.closing
        }
        guard first else { return }
        self.outbox.enqueueClose(code, reason: reason)
        self.continuation.finish()
    }

    // MARK: Running

    /// Runs the socket until either side closes it.
    func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, preauthenticated: (AuthIdentity, ProfileRef, String?)?) async throws {
        self.hub.opened(self)
        defer {
            self.hub.closed(self)
            self.outbox.close()
        }
        var session = Session(connection: self)
        if let (identity, profile, clientId) = preauthenticated {
            do {
                try await session.attach(identity: identity, profile: profile, clientId: clientId)
            } catch {
                session.reply(["type": "auth_error", "message": "Too many connections for this user"])
                self.requestClose(.init(codeNumber: 1013), reason: "too many connections")
            }
        } else {
            session.reply(["type": "auth_required", "timeout": .number(self.authTimeout)])
        }
        enum Part { case reader, writer, session, timer }
        try await withThrowingTaskGroup(of: Part.self) { group in
            group.addTask {
                // A reader that fails (invalid UTF-8, a fragmented message over the limit) must
                // not leave the other tasks waiting: readLoop keeps its error, the outbox closes
                // so the writer ends, and the error is rethrown at the end so that the framework
                // closes with its code (1007, 1009) instead of the socket staying open and deaf.
                try? await self.readLoop(inbound)
                return .reader
            }
            group.addTask {
                try await self.writeLoop(outbound)
                return .writer
            }
            group.addTask { [session] in
                var session = session
                await session.run()
                return .session
            }
            if preauthenticated == nil {
                group.addTask {
                    try await Task.sleep(for: .milliseconds(Int(self.authTimeout * 1000)))
                    self.continuation.yield(.authTimeout)
                    return .timer
                }
            }
            defer {
                // Whatever ended the socket, a reader waiting for outbox room or a session waiting
                // to queue a catch-up page must not wait for a writer that is gone.
                self.outbox.close()
                group.cancelAll()
            }
            var readerDone = false
            while let part = try await group.next() {
                switch part {
                case .timer:
                    continue
                case .writer:
                    // A close frame went out, or the socket is gone.
                    return
                case .reader:
                    // The client went away (or sent what cannot be read): nothing more will be
                    // read, nothing more needs writing.
                    readerDone = true
                    self.outbox.close()
                case .session:
                    // The session ended (a close was requested, or the reader finished). Let the
                    // writer flush what is queued, the close frame included, then stop.
                    if !self.shared.withLock({ $0.closing }) { self.outbox.close() }
                    if readerDone { return }
                }
            }
        }
        if let failure = self.readFailure.withLock({ $0 }) { throw failure }
    }

    private func readLoop(_ inbound: WebSocketInboundStream) async throws {
        defer { self.continuation.finish() }
        do {
            try await self.readMessages(inbound)
        } catch {
            // Cancelled by `run`, which is ending because the writer or the session ended: the
            // CancellationError says nothing about the client (rethrown, it became close 1011).
            if Task.isCancelled { return }
            // Kept before the session hears that reading ended (the defer above).
            self.readFailure.withLock { $0 = error }
            throw error
        }
    }

    private func readMessages(_ inbound: WebSocketInboundStream) async throws {
        for try await message in inbound.messages(maxSize: self.limits.maxWebSocketMessageBytes) {
            if self.inboundLimiter.acquire("in") != nil {
                self.refuse("Too many messages; slow down")
            } else {
                switch message {
                case .binary:
                    self.continuation.yield(.malformed(code: "VALIDATION_ERROR", message: "Binary messages are not supported; send JSON text"))
                case .text(let text):
                    let event = Self.decode(text, maxDepth: self.limits.maxJSONDepth)
                    if case .dropped = self.continuation.yield(event) {
                        self.refuse("Too many messages in flight")
                    }
                }
            }
            // Replies are never dropped, so they are bounded here: the next message is read only
            // once the outbox has room (at most the outbox bound plus the 64 waiting messages'
            // answers are ever queued).
            await self.outbox.waitForRoom()
        }
    }

    /// Answers a client message that is dropped unhandled: `error` `RATE_LIMITED`, as a reply.
    private func refuse(_ message: String) {
        let text = Session.encode(["type": "error", "code": "RATE_LIMITED", "message": .string(message)])
        _ = self.outbox.enqueue(text, kind: .reply)
    }

    static func decode(_ text: String, maxDepth: Int) -> Event {
        let bytes = Array(text.utf8)
        guard JSONShape.depth(of: bytes, limit: maxDepth) <= maxDepth else {
            return .malformed(code: "VALIDATION_ERROR", message: "JSON nested deeper than \(maxDepth) levels")
        }
        guard !JSONShape.containsEscapedNUL(bytes) else {
            return .malformed(code: "VALIDATION_ERROR", message: JSONShape.nulMessage)
        }
        do {
            let value = try bytes.withUnsafeBufferPointer { try JSONValue.parse(bytes: $0, maxDepth: maxDepth + 1) }
            return .message(try JSONValueDecoder().decode(ClientMessage.self, from: value))
        } catch let error as ClientMessage.Malformed {
            return .malformed(code: error.code, message: error.message)
        } catch let error as DecodingError {
            if case .keyNotFound(let key, let context) = error, key.stringValue == "type", context.codingPath.isEmpty {
                return .malformed(code: "VALIDATION_ERROR", message: "Every message needs a \"type\"")
            }
            return .malformed(code: "VALIDATION_ERROR", message: ErrorMiddleware<CairnRequestContext>.describe(error))
        } catch {
            return .malformed(code: "VALIDATION_ERROR", message: "Malformed JSON")
        }
    }

    private func writeLoop(_ outbound: WebSocketOutboundWriter) async throws {
        while let next = await self.outbox.next() {
            switch next {
            case .text(let text):
                try await outbound.write(.text(text))
            case .close(let code, let reason):
                try await outbound.close(code, reason: reason)
                return
            }
        }
    }
}

// MARK: - Session

/// The state of one socket's session, owned by its session task.
struct Session {
    let connection: SyncConnection
    var identity: AuthIdentity?
    var profile: ProfileRef?
    var clientId: String?
    /// The version up to which this socket has delivered changes.
    var cursor: Int64 = 0
    /// Whether changes stream (after authentication, until an overflow asks for a resync).
    var live = false
    /// The collections streamed (`nil`: all).
    var collections: [String]?
    /// Version ranges written by this socket's own pushes, which it does not echo back…
    var ownRanges: [ClosedRange<Int64>] = []
    /// …except records that others had changed after the cursor: their state is sent anyway.
    var mustSend: Set<RecordKey> = []

    init(connection: SyncConnection) {
        self.connection = connection
    }

    var engine: SyncEngine { self.connection.engine }
    var metrics: WebSocketMetrics { self.connection.hub.metrics }

    static func encode(_ value: JSONValue) -> String {
        value.jsonText
    }

    /// Queues the answer to a client message (or an error): never refused for room nor dropped
    /// by an overflow (the reader bounds how many are queued).
    mutating func reply(_ message: JSONValue) {
        _ = self.connection.outbox.enqueue(Self.encode(message), kind: .reply)
        self.metrics.messageOut(message["type"]?.stringValue ?? "unknown")
    }

    /// Queues a stream message (a live change, the end of a catch-up). Returns `false` on
    /// overflow, after dropping the queued stream messages and queueing `resync`.
    @discardableResult
    mutating func send(_ message: JSONValue) -> Bool {
        self.send(text: Self.encode(message), type: message["type"]?.stringValue ?? "unknown")
    }

    /// Queues an encoded stream message of `type`.
    @discardableResult
    mutating func send(text: String, type: String) -> Bool {
        switch self.connection.outbox.enqueue(text, kind: .stream) {
        case .enqueued, .closed:
            self.metrics.messageOut(type)
            return true
        case .full:
            self.overflow()
            return false
        }
    }

    /// Queues a catch-up page, waiting (up to 10 s) for room: the client asked for it.
    mutating func sendWaiting(_ message: JSONValue) async -> Bool {
        await self.sendWaiting(text: Self.encode(message), type: message["type"]?.stringValue ?? "unknown")
    }

    /// Queues an encoded catch-up page of `type`, waiting (up to 10 s) for room.
    mutating func sendWaiting(text: String, type: String) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            switch self.connection.outbox.enqueue(text, kind: .stream) {
            case .enqueued:
                self.metrics.messageOut(type)
                return true
            case .closed:
                return false
            case .full:
                if Task.isCancelled { return false }
                if ContinuousClock.now > deadline {
                    self.overflow()
                    return false
                }
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    /// A message of `type` whose `listKey` is a list of already encoded items, with `fields`.
    static func message(type: String, listKey: String, items: ArraySlice<String>, fields: [String: JSONValue]) -> String {
        var text = "{\"type\":\"\(type)\",\"\(listKey)\":["
        text.reserveCapacity(items.reduce(64) { $0 + $1.utf8.count + 1 })
        for (index, item) in items.enumerated() {
            if index > 0 { text += "," }
            text += item
        }
        text += "]"
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            text += ",\"\(key)\":" + value.jsonText
        }
        return text + "}"
    }

    /// Drops the queued stream messages (replies stay), tells the client to resync by cursor, and
    /// stops streaming until it does.
    mutating func overflow() {
        let dropped = self.connection.outbox.replaceStream(
            with: Self.encode(["type": "resync", "reason": "outbox overflow"])
        )
        self.metrics.drops.increment(by: Int64(dropped))
        self.metrics.messageOut("resync")
        self.live = false
        self.connection.logger.notice("WebSocket outbox overflow; asked the client to resync", metadata: ["dropped": "\(dropped)"])
    }

    // MARK: Loop

    mutating func run() async {
        for await event in self.connection.events {
            switch event {
            case .message(let message):
                self.metrics.messageIn(message.type)
                await self.handle(message)
            case .malformed(let code, let message):
                self.metrics.messageIn("invalid")
                self.reply(["type": "error", "code": .string(code), "message": .string(message)])
            case .wake:
                break
            case .authTimeout:
                if self.identity == nil {
                    self.reply(["type": "auth_error", "message": "No valid auth message in time"])
                    self.connection.requestClose(.policyViolation, reason: "authentication required")
                    return
                }
            }
            await self.catchUpIfWoken()
        }
    }

    mutating func catchUpIfWoken() async {
        let (woken, hint) = self.connection.shared.withLock { shared -> (Bool, ContinuousClock.Instant?) in
            let result = (shared.wakePending, shared.oldestHint)
            shared.wakePending = false
            shared.oldestHint = nil
            return result
        }
        guard woken, self.live, self.identity != nil else { return }
        await self.stream(waiting: false)
        if let hint { self.metrics.fanout.recordNanoseconds((ContinuousClock.now - hint).nanoseconds) }
    }

    // MARK: Messages

    mutating func handle(_ message: ClientMessage) async {
        if case .auth(let token, let clientId, let profile) = message {
            await self.authenticate(token: token, clientId: clientId, profile: profile)
            return
        }
        guard self.identity != nil, let profile = self.profile else {
            self.reply(["type": "error", "code": "UNAUTHORIZED", "message": "Send an auth message first"])
            return
        }
        switch message {
        case .auth:
            return
        case .ping:
            self.reply(["type": "pong"])
        case .syncRequest(let lastSyncVersion, let collections):
            await self.syncRequest(since: lastSyncVersion, collections: collections, profileId: profile.id)
        case .push(let operations, let atomic, let strategy):
            do {
                let outcome = try await self.engine.push(
                    PushRequest(profileId: profile.id, clientId: self.clientId, operations: operations, atomic: atomic, strategy: strategy)
                )
                self.recordOwn(outcome)
                self.reply([
                    "type": "push_result", "results": .array(outcome.results.map(\.jsonValue)), "committed": .bool(outcome.committed),
                    "syncVersion": .number(Double(outcome.sequence)),
                ])
            } catch let error as CairnError {
                self.reply(["type": "error", "code": .string(error.code.rawValue), "message": .string(error.message)])
            } catch {
                self.reply(["type": "error", "code": "SYNC_FAILED", "message": "The push could not be applied"])
            }
        case .bookmarkCreate(let id, let data, let opId, let hlc):
            await self.bookmarkOp(
                SyncOperation(opId: opId ?? "ws-\(Identifiers.uuid())", type: .create, id: id, data: data.objectValue.map { .object($0.filter { $0.key != "id" }) } ?? data, hlc: hlc),
                clientData: data, profileId: profile.id
            )
        case .bookmarkUpdate(let id, let data, let expectedVersion, let opId, let hlc):
            await self.bookmarkOp(
                SyncOperation(opId: opId ?? "ws-\(Identifiers.uuid())", type: .update, id: id, patch: data, expectedVersion: expectedVersion, hlc: hlc),
                clientData: data, profileId: profile.id
            )
        case .bookmarkDelete(let id, let expectedVersion, let opId):
            await self.bookmarkOp(
                SyncOperation(opId: opId ?? "ws-\(Identifiers.uuid())", type: .delete, id: id, expectedVersion: expectedVersion),
                clientData: ["isDeleted": true], profileId: profile.id
            )
        case .bookmarkMove(let id, let parent, let index, let expectedVersion, let opId, let hlc, let afterId, let beforeId):
            await self.bookmarkOp(
                SyncOperation(
                    opId: opId ?? "ws-\(Identifiers.uuid())", type: .move, id: id, expectedVersion: expectedVersion, parentId: parent, index: index,
                    afterId: afterId, beforeId: beforeId, hlc: hlc
                ),
                clientData: ["parentId": parent ?? .null, "index": index.map { .number(Double($0)) } ?? .null], profileId: profile.id
            )
        }
    }

    mutating func authenticate(token: String, clientId: String?, profile wanted: String?) async {
        do {
            let identity = try await self.connection.hub.auth.authenticate(bearer: token)
            if let current = self.identity {
                // Re-authentication extends a live socket; it may not switch users.
                guard current.user.id == identity.user.id else {
                    self.reply(["type": "auth_error", "message": "A socket cannot change user"])
                    return
                }
                self.identity = identity
                self.connection.hub.reauthenticated(self.connection, identity: identity)
                let sequence = (try? await self.engine.sequence(profileId: self.profile?.id ?? "")) ?? self.cursor
                self.reply([
                    "type": "auth_success", "userId": .string(identity.user.id), "profile": .string(self.profile?.id ?? ""),
                    "profileName": .string(self.profile?.name ?? ""), "syncVersion": .number(Double(sequence)),
                ])
                return
            }
            let profile = try await self.connection.profiles.resolve(identity: identity, wanted: wanted)
            try await self.attach(identity: identity, profile: profile, clientId: clientId)
        } catch let error as CairnError where error.code == .rateLimited {
            self.reply(["type": "auth_error", "message": "Too many connections for this user"])
            self.connection.requestClose(.init(codeNumber: 1013), reason: "too many connections")
        } catch {
            self.reply(["type": "auth_error", "message": "Authentication failed"])
            if self.identity == nil {
                self.connection.requestClose(.policyViolation, reason: "authentication failed")
            }
        }
    }

    /// Binds the socket to a user and profile and starts streaming from now.
    mutating func attach(identity: AuthIdentity, profile: ProfileRef, clientId: String?) async throws {
        guard self.connection.hub.attach(self.connection, identity: identity, profileId: profile.id) else {
            throw CairnError(.rateLimited, "Too many connections for this user")
        }
        self.identity = identity
        self.profile = profile
        self.clientId = clientId.map { String($0.prefix(128)) }
        self.cursor = try await self.engine.sequence(profileId: profile.id)
        self.live = true
        self.reply([
            "type": "auth_success", "userId": .string(identity.user.id), "profile": .string(profile.id), "profileName": .string(profile.name),
            "syncVersion": .number(Double(self.cursor)),
        ])
    }

    mutating func recordOwn(_ outcome: PushOutcome) {
        if outcome.sequence > outcome.previousSequence {
            self.ownRanges.append((outcome.previousSequence + 1)...outcome.sequence)
            self.mustSend.formUnion(outcome.recordsWithUnseenChanges(since: self.cursor))
            // Side effects (a folder's tombstoned subtree, revived ancestors) are not in the ack's
            // record: stream their states to the writer too.
            let primary = Set(outcome.results.compactMap { result in result.id.map { RecordKey(collection: result.collection, id: $0) } })
            self.mustSend.formUnion(outcome.touched.keys.filter { !primary.contains($0) })
        }
    }

    mutating func bookmarkOp(_ op: SyncOperation, clientData: JSONValue, profileId: String) async {
        do {
            let outcome = try await self.engine.push(PushRequest(profileId: profileId, clientId: self.clientId, operations: [op]))
            self.recordOwn(outcome)
            guard let result = outcome.results.first else { return }
            switch result.status {
            case .applied, .merged, .duplicate:
                var ack: [String: JSONValue] = [
                    "type": "bookmark_ack", "id": result.id.map { .string($0) } ?? .null, "opId": .string(result.opId),
                    "syncVersion": .number(Double(result.version ?? outcome.sequence)), "status": .string(result.status.rawValue),
                ]
                if let record = result.record { ack["bookmark"] = record }
                if result.deduplicated == true { ack["deduplicated"] = true }
                if let affected = result.affected { ack["affected"] = .array(affected.map { .string($0) }) }
                if result.clockClamped == true { ack["clockClamped"] = true }
                if let original = result.originalStatus { ack["originalStatus"] = .string(original.rawValue) }
                self.reply(.object(ack))
            case .conflict:
                self.reply([
                    "type": "conflict", "id": result.id.map { .string($0) } ?? .null, "opId": .string(result.opId),
                    "code": .string(result.error?.code ?? "CONFLICT_DETECTED"), "message": .string(result.error?.message ?? "Conflict"),
                    "serverVersion": result.record ?? .null, "clientVersion": clientData,
                ])
            case .rejected:
                self.reply([
                    "type": "error", "code": .string(result.error?.code ?? "VALIDATION_ERROR"), "message": .string(result.error?.message ?? "Rejected"),
                    "opId": .string(result.opId), "id": result.id.map { .string($0) } ?? .null, "field": result.error?.field.map { .string($0) } ?? .null,
                ])
            }
        } catch let error as CairnError {
            self.reply(["type": "error", "code": .string(error.code.rawValue), "message": .string(error.message), "opId": .string(op.opId)])
        } catch {
            self.reply(["type": "error", "code": "SYNC_FAILED", "message": "The change could not be applied", "opId": .string(op.opId)])
        }
    }

    // MARK: Streaming

    /// The most bytes of events put in one message (a single larger event still goes alone).
    static let messageBudget = 512 * 1024

    /// Splits encoded items into runs of at most `messageBudget` bytes each (a larger item alone).
    static func chunk(_ texts: [String]) -> [Range<Int>] {
        var groups: [Range<Int>] = []
        var start = 0
        var size = 0
        for (index, text) in texts.enumerated() {
            let bytes = text.utf8.count
            if index > start && size + bytes > Self.messageBudget {
                groups.append(start..<index)
                start = index
                size = 0
            }
            size += bytes
        }
        if start < texts.count { groups.append(start..<texts.count) }
        return groups
    }

    mutating func syncRequest(since: Int64, collections: [String]?, profileId: String) async {
        if let collections, !(collections.count <= 64 && collections.allSatisfy(RecordRules.isValidCollection)) {
            self.reply(["type": "error", "code": "VALIDATION_ERROR", "message": "collections must be collection names"])
            return
        }
        self.collections = collections?.isEmpty == true ? nil : collections
        do {
            let (sequence, purged) = try await self.engine.horizon(profileId: profileId)
            if since <= 0 || (since < purged) || since > sequence {
                guard await self.sendFull(profileId: profileId) else { return }
            } else {
                self.cursor = since
            }
            self.live = true
            await self.stream(waiting: true)
        } catch {
            self.reply(["type": "error", "code": "SYNC_FAILED", "message": "Could not read changes"])
        }
    }

    /// `sync_full`: every live bookmark (in pages of 500), then the other requested collections
    /// from 0 as `sync_incremental`; the cursor is the snapshot's version.
    mutating func sendFull(profileId: String) async -> Bool {
        do {
            let wantsBookmarks = self.collections?.contains(BookmarkRules.collection) ?? true
            var snapshot: Int64
            if wantsBookmarks {
                let (bookmarks, syncVersion) = try await self.engine.bookmarks(profileId: profileId, includeDeleted: false)
                snapshot = syncVersion
                let texts = bookmarks.map(\.jsonValue.jsonText)
                let pages = texts.isEmpty ? [0..<0] : Self.chunk(texts)
                for (index, page) in pages.enumerated() {
                    let text = Self.message(
                        type: "sync_full", listKey: "bookmarks", items: texts[page],
                        fields: ["syncVersion": .number(Double(syncVersion)), "hasMore": .bool(index < pages.count - 1), "page": .number(Double(index))]
                    )
                    guard await self.sendWaiting(text: text, type: "sync_full") else { return false }
                }
            } else {
                snapshot = 0
            }
            // Records of the other collections (all of them when none were named), from the
            // beginning, as sync_incremental; bookmarks already went in sync_full.
            let others: [String]? = self.collections.map { $0.filter { $0 != BookmarkRules.collection } }
            if others.map({ !$0.isEmpty }) ?? true {
                var cursor: Int64 = 0
                while true {
                    let page = try await self.engine.feed(profileId: profileId, since: cursor, collections: others, limit: 200)
                    let kept = page.events.indices.filter {
                        !wantsBookmarks || page.events[$0].collection != BookmarkRules.collection || page.events[$0].syncVersion > snapshot
                    }
                    let texts = kept.map { page.texts[$0] }
                    for group in Self.chunk(texts) {
                        let last = page.events[kept[group.upperBound - 1]]
                        let text = Self.message(
                            type: "sync_incremental", listKey: "events", items: texts[group],
                            fields: ["syncVersion": .number(Double(last.syncVersion)), "hasMore": true]
                        )
                        guard await self.sendWaiting(text: text, type: "sync_incremental") else { return false }
                    }
                    cursor = page.cursor
                    if !page.hasMore { break }
                }
                snapshot = wantsBookmarks ? max(snapshot, cursor) : cursor
            }
            self.cursor = snapshot
            return true
        } catch {
            self.reply(["type": "error", "code": "SYNC_FAILED", "message": "Could not read the tree"])
            return false
        }
    }

    /// Sends every change after the cursor (pages of 200), skipping this socket's own writes.
    mutating func stream(waiting: Bool) async {
        guard let profile = self.profile else { return }
        do {
            while self.live {
                let page = try await self.engine.feed(profileId: profile.id, since: self.cursor, collections: self.collections, limit: 200)
                let kept = page.events.indices.filter { index in
                    let event = page.events[index]
                    let key = RecordKey(collection: event.collection, id: event.bookmarkId)
                    if self.mustSend.remove(key) != nil { return true }
                    return !self.ownRanges.contains { $0.contains(page.versions[index]) }
                }
                let previous = self.cursor
                if kept.count == page.events.count, let whole = page.message {
                    // Every event of the page, in one message: the text the page built once for
                    // every socket of the profile.
                    let sent = waiting ? await self.sendWaiting(text: whole, type: "sync_incremental") : self.send(text: whole, type: "sync_incremental")
                    guard sent else { return }
                } else if !kept.isEmpty {
                    // Messages of at most ~512 KiB (one event at least), so clients with a 1 MiB
                    // message cap can read every one. Events come encoded from the shared page.
                    let texts = kept.map { page.texts[$0] }
                    let groups = Self.chunk(texts)
                    for (index, group) in groups.enumerated() {
                        let last = index == groups.count - 1
                        let text = Self.message(
                            type: "sync_incremental", listKey: "events", items: texts[group],
                            fields: [
                                "syncVersion": .number(Double(last ? page.cursor : page.events[kept[group.upperBound - 1]].syncVersion)),
                                "hasMore": .bool(!last || page.hasMore),
                            ]
                        )
                        let sent = waiting ? await self.sendWaiting(text: text, type: "sync_incremental") : self.send(text: text, type: "sync_incremental")
                        guard sent else { return }
                    }
                } else if waiting && !page.hasMore && page.cursor > previous {
                    // Caught up on own changes only: tell the client where it stands.
                    self.send(["type": "sync_incremental", "events": [], "syncVersion": .number(Double(page.cursor)), "hasMore": false])
                }
                self.cursor = page.cursor
                self.ownRanges.removeAll { $0.upperBound <= self.cursor }
                if !page.hasMore { break }
            }
            if waiting && self.live {
                self.send(["type": "sync_complete", "syncVersion": .number(Double(self.cursor))])
            }
        } catch let error as CairnError where error.code == .resyncRequired {
            self.live = false
            self.send(["type": "resync", "reason": "cursor behind the purge horizon", "syncVersion": 0])
        } catch {
            self.reply(["type": "error", "code": "SYNC_FAILED", "message": "Could not read changes"])
        }
    }
}
