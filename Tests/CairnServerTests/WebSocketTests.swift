import CairnCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOWebSocket
import Synchronization
import Testing

@testable import CairnServer

@Suite("WebSocket sync channel (live server)", .timeLimit(.minutes(3)))
struct WebSocketTests {
    static func createOp(_ id: String, title: String = "T") -> JSONValue {
        ["type": "bookmark_create", "opId": .string("op-\(id)"), "data": ["id": .string(id), "title": .string(title), "url": .string("https://\(id).example"), "parentId": "toolbar"]]
    }

    @Test func aWriteReachesTheOtherSocketsOfTheProfileAndNoOneElse() async throws {
        try await withLiveServer { client, port, _ in
            let alice = try await Device.register(client, "ws-alice@example.com")
            let dave = try await Device.register(client, "ws-dave@example.com")
            let a = WSTestClient.bearer(port, alice.token)
            let b = WSTestClient.bearer(port, alice.token, query: "?clientId=tab-2")
            let c = WSTestClient(port: port)
            let d = WSTestClient.bearer(port, dave.token)
            defer { [a, b, c, d].forEach { $0.close() } }
            #expect(await a.next("auth_success") != nil)
            #expect(await b.next("auth_success") != nil)
            #expect(await d.next("auth_success") != nil)
            // C authenticates in-band
            #expect(await c.next("auth_required") != nil)
            c.send(["type": "auth", "token": .string(alice.token), "clientId": "phone"])
            #expect(await c.next("auth_success")?["userId"] != nil)

            a.send(Self.createOp("shared-1", title: "From A"))
            let ack = await a.next("bookmark_ack")
            #expect(ack?["opId"] == "op-shared-1")
            #expect(ack?["id"] == "shared-1")
            for socket in [b, c] {
                let update = await socket.next("sync_incremental")
                #expect(update?["events"]?[0]?["bookmarkId"] == "shared-1")
                #expect(update?["events"]?[0]?["type"] == "create")
                #expect(update?["events"]?[0]?["data"]?["title"] == "From A")
                #expect(update?["syncVersion"] == ack?["syncVersion"])
            }
            // The writer gets its ack, not an echo; another user gets nothing
            #expect(await a.next("sync_incremental", timeout: .milliseconds(400)) == nil)
            #expect(await d.next("sync_incremental", timeout: .milliseconds(400)) == nil)
        }
    }

    @Test func aRESTWriteReachesTheSockets() async throws {
        try await withLiveServer { client, port, _ in
            let device = try await Device.register(client, "ws-rest@example.com")
            let socket = WSTestClient.bearer(port, device.token)
            defer { socket.close() }
            #expect(await socket.next("auth_success") != nil)
            let created = try await client.post("/api/bookmarks", jsonBody(#"{"id":"via-rest","title":"REST","url":"https://rest.example"}"#), token: device.token)
            #expect(created.status == .created)
            let update = await socket.next("sync_incremental")
            #expect(update?["events"]?[0]?["bookmarkId"] == "via-rest")
        }
    }

    @Test func reconnectingWithAnOldVersionCatchesUpExactlyTheMissedChanges() async throws {
        try await withLiveServer { client, port, _ in
            let device = try await Device.register(client, "ws-catchup@example.com")
            _ = try await device.push([.createBookmark("seen", id: "seen", title: "Seen", url: "https://seen.example")])
            let lastSeen = try await device.bookmarks().syncVersion
            // While this device is offline, another device makes 3 changes
            _ = try await device.named("other").push([
                .createBookmark("m1", id: "missed-1", title: "M1", url: "https://m1.example"),
                .createBookmark("m2", id: "missed-2", title: "M2", url: "https://m2.example"),
                .updateBookmark("m3", id: "seen", ["title": "Seen, renamed"], expected: nil),
            ])
            let socket = WSTestClient.bearer(port, device.token)
            defer { socket.close() }
            #expect(await socket.next("auth_success") != nil)
            socket.send(["type": "sync_request", "lastSyncVersion": .number(Double(lastSeen))])
            let catchUp = await socket.next("sync_incremental")
            guard case .array(let events)? = catchUp?["events"] else { Issue.record("no events"); return }
            #expect(events.compactMap { $0["bookmarkId"]?.stringValue } == ["missed-1", "missed-2", "seen"])
            #expect(events.last?["data"]?["title"] == "Seen, renamed")
            // Each event names the device whose push made it
            #expect(events.map { $0["clientId"] } == ["other", "other", "other"])
            #expect(await socket.next("sync_complete") != nil)
            // Then live: a new change arrives once
            _ = try await device.named("other").push([.createBookmark("m4", id: "live-1", title: "L", url: "https://l.example")])
            let ids = await socket.incrementalIds(first: .seconds(5))
            #expect(ids == ["live-1"])
        }
    }

    @Test func syncRequestFromZeroSendsTheFullTree() async throws {
        try await withLiveServer { client, port, _ in
            let device = try await Device.register(client, "ws-full@example.com")
            _ = try await device.push((0..<600).map { .createBookmark("f\($0)", id: "full-\($0)", title: "F\($0)", url: "https://f\($0).example") })
            _ = try await device.push((600..<1200).map { .createBookmark("f\($0)", id: "full-\($0)", title: "F\($0)", url: "https://f\($0).example") })
            _ = try await device.push([SyncOperation(opId: "n1", type: .create, collection: "notes", id: "note-1", data: ["text": "hello"])])
            let socket = WSTestClient.bearer(port, device.token)
            defer { socket.close() }
            #expect(await socket.next("auth_success") != nil)
            socket.send(["type": "sync_request", "lastSyncVersion": 0])
            var bookmarks: [JSONValue] = []
            var syncVersion: JSONValue?
            while let page = await socket.next("sync_full", timeout: .seconds(20)) {
                if case .array(let items)? = page["bookmarks"] { bookmarks += items }
                syncVersion = page["syncVersion"]
                if page["hasMore"] == .bool(false) { break }
            }
            #expect(bookmarks.count == 1204)
            #expect(syncVersion != nil)
            // Records of the other collections follow as sync_incremental
            let others = await socket.next("sync_incremental", timeout: .seconds(20))
            #expect(others?["events"]?[0]?["bookmarkId"] == "note-1")
            #expect(others?["events"]?[0]?["collection"] == "notes")
            #expect(await socket.next("sync_complete", timeout: .seconds(20))?["syncVersion"]?.intValue == (try await device.bookmarks().syncVersion))
        }
    }

    @Test func writesRacingTheCatchUpAreNeitherSkippedNorDuplicated() async throws {
        try await withLiveServer(configure: { $0.apiBurst = 100_000 }) { client, port, _ in
            let device = try await Device.register(client, "ws-race@example.com")
            _ = try await device.push((0..<300).map { .createBookmark("p\($0)", id: "pre-\($0)", title: "P", url: "https://p\($0).example") })
            let socket = WSTestClient.bearer(port, device.token)
            defer { socket.close() }
            #expect(await socket.next("auth_success") != nil)
            socket.send(["type": "sync_request", "lastSyncVersion": 4])
            // Writes land while the catch-up pages are being sent
            for batch in 0..<10 {
                _ = try await device.named("writer").push((0..<10).map { .createBookmark("r\(batch)-\($0)", id: "race-\(batch)-\($0)", title: "R", url: "https://r\(batch)-\($0).example") })
            }
            // A write that commits before the server reads the sync_request is streamed live from
            // auth_success's version, and the catch-up from 4 sends it again (docs/websocket.md,
            // "Storing the cursor"): such messages come before the catch-up's first page
            var early: [String] = []
            var ids: [String] = []
            while ids.count < 400, let message = await socket.next("sync_incremental", timeout: .seconds(20)) {
                guard case .array(let events)? = message["events"] else { continue }
                let eventIds = events.compactMap { $0["bookmarkId"]?.stringValue }
                if ids.isEmpty, events.first?["syncVersion"]?.intValue != 5 {
                    early += eventIds
                    continue
                }
                ids += eventIds
            }
            // From the catch-up's first page on, every change once
            #expect(ids.count == 400)
            #expect(Set(ids).count == 400)
            #expect(Set(early).isSubset(of: Set(ids)))
        }
    }

    @Test func aClientThatNeverReadsIsCutOffWithResyncWhileAReadingClientKeepsUp() async throws {
        try await withLiveServer(configure: { $0.apiBurst = 100_000; $0.webSocketOutboxMessages = 32 }) { client, port, components in
            let device = try await Device.register(client, "ws-slow@example.com")
            let reader = WSTestClient.bearer(port, device.token)
            defer { reader.close() }
            #expect(await reader.next("auth_success") != nil)
            let stalled = try #require(await StalledSocket.open(port: port, token: device.token))
            // Flood: 300 changes with 60 KB of notes each (more than the socket buffers hold), one push each
            let notes = String(repeating: "n", count: 60 * 1024)
            var delivered: [String] = []
            for index in 0..<300 {
                _ = try await device.named("writer").push([
                    SyncOperation(opId: "flood-\(index)", type: .create, id: "flood-\(index)", data: ["title": "F", "url": .string("https://f\(index).example"), "notes": .string(notes)], parentId: "other")
                ])
                if index % 25 == 0 { delivered += await reader.incrementalIds(timeout: .milliseconds(1)) }
            }
            delivered += await reader.incrementalIds(timeout: .milliseconds(500))
            // The reading client got every change, in order, exactly once
            #expect(delivered == (0..<300).map { "flood-\($0)" })
            // The stalled one overflowed: the server dropped its backlog and counted it
            let metrics = components.metrics.exposition()
            #expect(metrics.contains("cairn_websocket_outbox_dropped_messages"))
            #expect(!metrics.contains("cairn_websocket_outbox_dropped_messages 0\n"))
            #expect(metrics.contains(#"cairn_websocket_messages_out_total{type="resync"}"#))
            _ = stalled
        }
    }

    @Test func malformedUnknownAndOversizedMessages() async throws {
        try await withLiveServer { client, port, _ in
            let device = try await Device.register(client, "ws-bad@example.com")
            let socket = WSTestClient.bearer(port, device.token)
            defer { socket.close() }
            #expect(await socket.next("auth_success") != nil)
            socket.sendRaw("{not json")
            #expect(await socket.next("error")?["code"] == "VALIDATION_ERROR")
            socket.send(["type": "self_destruct"])
            #expect(await socket.next("error")?["code"] == "UNKNOWN_MESSAGE_TYPE")
            socket.send(["hello": "world"])
            #expect(await socket.next("error")?["code"] == "VALIDATION_ERROR")
            socket.sendRaw(String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000))
            #expect(await socket.next("error")?["code"] == "VALIDATION_ERROR")
            socket.send(["type": "bookmark_create", "opId": "bad", "data": ["title": "x", "url": "gopher-evil://x"]])
            let rejected = await socket.next("error")
            #expect(rejected?["opId"] == "bad")
            #expect(rejected?["field"] == "url")
            // Still usable
            socket.send(["type": "ping"])
            #expect(await socket.next("pong") != nil)
            // A message over 1 MiB closes the socket with 1009
            socket.sendRaw(#"{"type":"ping","pad":""# + String(repeating: "x", count: 1_100_000) + #""}"#)
            #expect(await socket.closeCode() == .messageTooLarge)
        }
    }

    @Test func anUnauthenticatedSocketIsClosedWhenNoAuthArrives() async throws {
        // 2 s: long enough for the refusal below to arrive first on a loaded 2-core machine.
        try await withLiveServer(configure: { $0.webSocketAuthTimeoutSeconds = 2 }) { client, port, _ in
            #expect(ServerConfiguration().webSocketAuthTimeoutSeconds == 10)
            let socket = WSTestClient(port: port)
            let required = await socket.next("auth_required")
            #expect(required?["timeout"] == .number(2))
            // Before auth, nothing else is served
            socket.send(["type": "sync_request", "lastSyncVersion": 0])
            #expect(await socket.next("error")?["code"] == "UNAUTHORIZED")
            #expect(await socket.next("auth_error", timeout: .seconds(6)) != nil)
            #expect(await socket.closeCode() == .policyViolation)
            // A bad token in-band is refused and closed as well
            let liar = WSTestClient(port: port)
            #expect(await liar.next("auth_required") != nil)
            liar.send(["type": "auth", "token": "not-a-token"])
            #expect(await liar.next("auth_error") != nil)
            #expect(await liar.closeCode() == .policyViolation)
        }
    }

    @Test func staleExpectedVersionUnderManualGetsConflictAndUnderMergeIsMerged() async throws {
        try await withLiveServer { client, port, _ in
            let device = try await Device.register(client, "ws-conflict@example.com")
            let v1 = try #require(try await device.push([.createBookmark("c", id: "b", title: "Base", url: "https://b.example")]).results.first?.version)
            _ = try await device.push([.updateBookmark("u", id: "b", ["title": "Server"], expected: v1)])
            let socket = WSTestClient.bearer(port, device.token)
            defer { socket.close() }
            #expect(await socket.next("auth_success") != nil)
            socket.send([
                "type": "push", "strategy": "manual",
                "operations": [["opId": "stale", "type": "update", "collection": "bookmarks", "id": "b", "patch": ["title": "Mine"], "expectedVersion": .number(Double(v1))]],
            ])
            let result = await socket.next("push_result")
            #expect(result?["results"]?[0]?["status"] == "conflict")
            // The seed 000 message: conflict with both versions
            _ = try await client.execute(
                uri: "/api/bookmarks/b", method: .patch, headers: bearer(device.token), body: jsonBody(#"{"title":"Server 2"}"#)
            )
            socket.send(["type": "bookmark_update", "id": "b", "opId": "stale-2", "expectedVersion": .number(Double(v1)), "data": ["title": "Mine"]])
            _ = socket.drain()
            try await Task.sleep(for: .milliseconds(1))
            let merged = await socket.next("bookmark_ack", timeout: .seconds(2))
            // Under the default (merge) strategy a stale write without a stamp is stamped on arrival,
            // so it is the later edit of the title: merged, and it wins
            #expect(merged?["status"] == "merged")
            #expect(try await device.bookmark("b")?.title == "Mine")
        }
    }

    @Test func revokingTheKeyClosesItsSocket() async throws {
        try await withLiveServer(configure: { $0.webSocketSweepSeconds = 0.2 }) { client, port, _ in
            let session = try await client.register("ws-revoke@example.com")
            let key = try decode(CreatedAPIKey.self, try await client.post("/api/keys", jsonBody(#"{"name":"ext"}"#), token: session.token))
            let socket = WSTestClient.bearer(port, key.secret)
            #expect(await socket.next("auth_success") != nil)
            let revoke = try await client.execute(uri: "/api/keys/\(key.key.id)", method: .delete, headers: bearer(session.token))
            #expect(revoke.status == .noContent)
            #expect(await socket.closeCode(timeout: .seconds(5)) == WebSocketErrorCode(codeNumber: 4401))
        }
    }

    @Test func anExpiredTokenClosesItsSocketAndReauthKeepsItOpen() async throws {
        let manual = ManualClock()
        try await withLiveServer(configure: { $0.webSocketSweepSeconds = 0.1 }, clock: manual.clock) { client, port, _ in
            let session = try await client.register("ws-expire@example.com")
            let keeper = WSTestClient.bearer(port, session.token)
            let lapser = WSTestClient.bearer(port, session.token)
            #expect(await keeper.next("auth_success") != nil)
            #expect(await lapser.next("auth_success") != nil)
            manual.advance(by: 10 * 60)
            // The keeper re-authenticates with a fresh token before expiry
            let fresh = try decode(AuthResponse.self, try await client.post("/api/auth/refresh", try jsonBody(RefreshRequest(refreshToken: session.refreshToken))))
            keeper.send(["type": "auth", "token": .string(fresh.token)])
            #expect(await keeper.next("auth_success") != nil)
            manual.advance(by: 6 * 60)
            #expect(await lapser.closeCode(timeout: .seconds(5)) == WebSocketErrorCode(codeNumber: 4401))
            keeper.send(["type": "ping"])
            #expect(await keeper.next("pong") != nil)
            keeper.close()
        }
    }

    @Test func upgradesAreAuthenticatedBeforeThe101() async throws {
        try await withLiveServer(configure: { $0.corsOrigins = ["https://app.example.com"] }) { client, port, _ in
            let device = try await Device.register(client, "ws-upgrade@example.com")
            // Refused upgrades never open a socket (the framework answers a refused upgrade 400)
            #expect(await rawUpgradeStatus(port: port, headers: ["Authorization": "Bearer \(device.token)"]) == 101)
            #expect(await rawUpgradeStatus(port: port, headers: ["Authorization": "Bearer nope"]) == 400)
            #expect(await rawUpgradeStatus(port: port, headers: ["Authorization": "Bearer \(device.token)", "Origin": "https://evil.example"]) == 400)
            #expect(await rawUpgradeStatus(port: port, headers: ["Authorization": "Bearer \(device.token)", "Origin": "null"]) == 400)
            #expect(await rawUpgradeStatus(port: port, headers: ["Authorization": "Bearer \(device.token)", "Origin": "https://app.example.com"]) == 101)
            // A token in the query string is ignored: the socket must still authenticate
            let queryToken = WSTestClient(port: port, path: "/api/sync/ws?token=\(device.token)&access_token=\(device.token)")
            #expect(await queryToken.next()?["type"] == "auth_required")
            queryToken.close()
            // …and the plain-HTTP answers say why
            let foreign = try await client.execute(uri: "/api/sync/ws", method: .get, headers: [.origin: "https://evil.example"])
            #expect(foreign.status == .forbidden)
            let bad = try await client.get("/api/sync/ws", token: "nope")
            #expect(bad.status == .unauthorized)
            // Not a WebSocket request at all
            #expect(try await client.get("/api/sync/ws").status == .upgradeRequired)
            // An allowed origin with a one-time ticket works, once
            let ticket = try decode(JSONValue.self, try await client.post("/api/auth/ws-ticket", jsonBody("{}"), token: device.token))["ticket"]?.stringValue ?? ""
            #expect(ticket.hasPrefix("wst_"))
            let browser = WSTestClient(port: port, path: "/api/sync/ws?ticket=\(ticket)")
            let first = await browser.next()
            #expect(first?["type"] == "auth_success", "\(String(describing: first))")
            browser.close()
            let replay = WSTestClient(port: port, path: "/api/sync/ws?ticket=\(ticket)")
            let replayed = await replay.next(timeout: .seconds(2))
            #expect(replayed == nil, "\(String(describing: replayed))")
            #expect(replay.isClosed)
            // Another user's profile id is refused like a missing one
            let other = try await Device.register(client, "ws-upgrade-2@example.com")
            let otherProfile = try decode(MeResponse.self, try await client.get("/api/me", token: other.token)).profiles[0].id
            let snoop = WSTestClient.bearer(port, device.token, query: "?profile=\(otherProfile)")
            #expect(await snoop.next(timeout: .seconds(2)) == nil)
        }
    }

    @Test func perUserConnectionCap() async throws {
        try await withLiveServer(configure: { $0.maxWebSocketsPerUser = 2 }) { client, port, _ in
            let device = try await Device.register(client, "ws-cap@example.com")
            let first = WSTestClient.bearer(port, device.token)
            let second = WSTestClient.bearer(port, device.token)
            defer { first.close(); second.close() }
            #expect(await first.next("auth_success") != nil)
            #expect(await second.next("auth_success") != nil)
            let third = WSTestClient.bearer(port, device.token)
            #expect(await third.next("auth_error") != nil)
            #expect(await third.closeCode() == WebSocketErrorCode(codeNumber: 1013))
        }
    }

    /// A client that sends thousands of pings before reading anything (its receive buffer small,
    /// its outbox 16 messages) gets exactly one answer per ping, `pong` or `error` `RATE_LIMITED`,
    /// and its socket stays open: replies are not dropped when the outbox fills (the server stops
    /// reading from that client instead), and the writer never stops while the socket is open.
    @Test func aFloodSentBeforeReadingGetsOneAnswerPerMessageAndTheSocketStaysOpen() async throws {
        try await withLiveServer(configure: { $0.webSocketOutboxMessages = 16 }) { client, port, _ in
            let device = try await Device.register(client, "ws-flood@example.com")
            let token = device.token
            let outcome = await onOwnThread { Self.floodBeforeReading(port: port, token: token, count: 3000) }
            #expect(outcome.pongs + outcome.limited == 3000, "\(outcome)")
            #expect(outcome.others.isEmpty, "\(outcome)")
            #expect(outcome.closeCode == nil, "\(outcome)")
            // At least the first 64 are served (64 may wait to be handled); part of the flood is
            // refused.
            #expect(outcome.pongs >= 64 && outcome.limited > 0, "\(outcome)")
            #expect(outcome.answeredAfterwards, "\(outcome)")
        }
    }

    struct FloodOutcome: Sendable {
        var pongs = 0
        var limited = 0
        /// Types of other messages (a `resync` would mean dropped answers).
        var others: [String] = []
        /// The code of a close frame from the server (`-1`: a close frame without a code, or the
        /// upgrade or `auth_success` failed).
        var closeCode: Int?
        /// Whether a ping sent after the flood, once the rate limit refilled, got its `pong`.
        var answeredAfterwards = false
    }

    /// Sends `count` pings from one thread while this one waits a second before reading: the
    /// server's answers back up in its outbox meanwhile. Then reads every answer.
    static func floodBeforeReading(port: Int, token: String, count: Int) -> FloodOutcome {
        var outcome = FloodOutcome()
        guard let socket = RawWebSocketClient(port: port, token: token, receiveBuffer: 4096),
            case .text(let hello)? = socket.readFrame(timeout: 10), hello.contains("auth_success")
        else {
            outcome.closeCode = -1
            return outcome
        }
        let sent = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            for _ in 0..<count {
                guard socket.sendText(#"{"type":"ping"}"#) else { break }
            }
            sent.signal()
        }
        Thread.sleep(forTimeInterval: 1)
        reading: while outcome.pongs + outcome.limited < count {
            switch socket.readFrame(timeout: 10) {
            case .text(let text):
                let message = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
                switch (message?["type"]?.stringValue, message?["code"]?.stringValue) {
                case ("pong", _): outcome.pongs += 1
                case ("error", "RATE_LIMITED"): outcome.limited += 1
                case (let type, _): outcome.others.append(type ?? text)
                }
            case .close(let code):
                outcome.closeCode = code ?? -1
                break reading
            case .control:
                continue
            case nil:
                // Nothing for 10 s, or the connection ended: the count above tells.
                break reading
            }
        }
        _ = sent.wait(timeout: .now() + 30)
        guard outcome.closeCode == nil else { return outcome }
        // 1.2 s refill at 50 a second: the next ping is served.
        Thread.sleep(forTimeInterval: 1.2)
        socket.sendText(#"{"type":"ping"}"#)
        while case .some(let frame) = socket.readFrame(timeout: 10) {
            if case .text(let text) = frame, text.contains("pong") {
                outcome.answeredAfterwards = true
                break
            }
        }
        return outcome
    }
}

/// The bounded outbox on its own.
@Suite("WebSocket outbox")
struct OutboxTests {
    /// The writer waits for messages while the session and the reader queue them from other
    /// threads. A message queued just as the writer starts waiting must reach it: it was read as
    /// the end of the queue (the writer stopped, and the socket was closed with 1011 mid-flood),
    /// or the writer was never woken (the socket went deaf).
    @Test func aMessageQueuedAsTheWriterStartsWaitingReachesIt() async {
        for round in 0..<100 {
            let outbox = Outbox(maxMessages: 1 << 20, maxBytes: 1 << 30)
            let count = 2000
            let received = Mutex(0)
            let ended = Mutex(false)
            Task.detached {
                while received.withLock({ $0 }) < count, await outbox.next() != nil { received.withLock { $0 += 1 } }
                ended.withLock { $0 = true }
            }
            await Task.detached {
                for index in 0..<count {
                    _ = outbox.enqueue("m\(index)", kind: .stream)
                    if index % 3 == 0 { await Task.yield() }
                }
            }.value
            let deadline = ContinuousClock.now + .seconds(5)
            while !ended.withLock({ $0 }) && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(1)) }
            let delivered = received.withLock { $0 }
            #expect(delivered == count, "round \(round): the writer \(ended.withLock { $0 } ? "stopped" : "hung") after \(delivered) of \(count) messages")
            if delivered != count { break }
        }
    }

    /// An overflow replaces the queued stream messages with `resync`; the replies queued before
    /// and after stay, in order, and a reply is queued even over the bound.
    @Test func anOverflowDropsStreamMessagesButKeepsReplies() async {
        let outbox = Outbox(maxMessages: 4, maxBytes: 1 << 20)
        #expect(outbox.enqueue("pong-1", kind: .reply) == .enqueued)
        #expect(outbox.enqueue("change-1", kind: .stream) == .enqueued)
        #expect(outbox.enqueue("change-2", kind: .stream) == .enqueued)
        #expect(outbox.enqueue("ack-2", kind: .reply) == .enqueued)
        #expect(outbox.enqueue("change-3", kind: .stream) == .full)
        #expect(outbox.enqueue("error-3", kind: .reply) == .enqueued)
        #expect(outbox.replaceStream(with: "resync") == 2)
        var sent: [String] = []
        for _ in 0..<4 {
            if case .text(let text)? = await outbox.next() { sent.append(text) }
        }
        #expect(sent == ["pong-1", "ack-2", "error-3", "resync"])
        #expect(outbox.count == 0)
        outbox.close()
        #expect(await outbox.next() == nil)
    }

    /// The reader's flow control: `waitForRoom` returns once the writer has made room, and at
    /// once when the waiting task is cancelled or the outbox closes.
    @Test func waitingForRoomEndsWithRoomCancelOrClose() async {
        let outbox = Outbox(maxMessages: 2, maxBytes: 1 << 20)
        for index in 0..<3 { _ = outbox.enqueue("reply-\(index)", kind: .reply) }
        let done = Mutex(false)
        let waiter = Task {
            await outbox.waitForRoom()
            done.withLock { $0 = true }
        }
        try? await Task.sleep(for: .milliseconds(50))
        #expect(!done.withLock { $0 })
        _ = await outbox.next()
        try? await Task.sleep(for: .milliseconds(50))
        #expect(!done.withLock { $0 }, "2 queued of 2: still no room")
        _ = await outbox.next()
        await waiter.value
        #expect(done.withLock { $0 })
        for index in 0..<2 { _ = outbox.enqueue("more-\(index)", kind: .reply) }
        let cancelled = Task { await outbox.waitForRoom() }
        cancelled.cancel()
        await cancelled.value
        let closing = Task { await outbox.waitForRoom() }
        try? await Task.sleep(for: .milliseconds(20))
        outbox.close()
        await closing.value
    }
}
