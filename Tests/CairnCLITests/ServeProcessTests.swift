import Foundation
import CairnTestFixtures
import Testing

/// `cairn serve` as a real process: boots on the embedded default, survives SIGKILL without
/// losing acknowledged accounts, and shuts down gracefully on SIGTERM.
@Suite("cairn serve process", .serialized, .timeLimit(.minutes(3)))
struct ServeProcessTests {
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-live-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func sigkillAndRestartKeepsEveryAcknowledgedAccount() async throws {
        let root = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let data = root.appendingPathComponent("data")

        // Given a live server that acknowledged 20 registrations
        let first = try LiveServerProcess(dataDirectory: data)
        try await first.start()
        let base = try #require(first.baseURL)
        var acknowledged: [String] = []
        for index in 0..<20 {
            let email = "user\(index)@example.com"
            let (status, _) = try await HTTP.send("POST", base.appendingPathComponent("api/auth/register"), json: ["email": email, "password": "password-\(index)"])
            if status == 201 { acknowledged.append(email) }
        }
        #expect(acknowledged.count == 20)
        // When it is killed with SIGKILL right after the last acknowledgement and restarted
        await first.kill()
        let second = try LiveServerProcess(dataDirectory: data)
        try await second.start()
        let restarted = try #require(second.baseURL)
        #expect(second.process.isRunning, "the restarted server exited: \(second.log)")
        // Then every acknowledged account can sign in
        for email in acknowledged {
            let index = email.dropFirst(4).prefix { $0.isNumber }
            let (status, body) = try await HTTP.send("POST", restarted.appendingPathComponent("api/auth/login"), json: ["email": email, "password": "password-\(index)"])
            #expect(status == 200, "\(email): \(second.log.suffix(2000))")
            #expect(body["token"] is String)
        }
        _ = await second.terminate()
    }

    @Test func servesOnTheEmbeddedDefaultAndStopsGracefully() async throws {
        let root = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let data = root.appendingPathComponent("nested/data")
        let server = try LiveServerProcess(dataDirectory: data, environment: ["CAIRN_REGISTRATION": "closed"])
        try await server.start()
        let base = try #require(server.baseURL)
        #expect(server.log.contains("Cairn listening on http://127.0.0.1:"))
        let (status, info) = try await HTTP.send("GET", base.appendingPathComponent("api/info"))
        #expect(status == 200)
        #expect(info["registrationOpen"] as? Bool == false)
        #expect(FileManager.default.fileExists(atPath: data.appendingPathComponent("cairn.sqlite").path))
        let attributes = try FileManager.default.attributesOfItem(atPath: data.appendingPathComponent("secrets.json").path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        // SIGTERM shuts it down cleanly
        #expect(await server.terminate() == 0)
        #expect(server.log.contains("Cairn stopped"))
        // and a restart reuses the same secrets and database
        let again = try LiveServerProcess(dataDirectory: data)
        try await again.start()
        _ = await again.terminate()
    }
}

import HummingbirdWSClient
import Logging
import NIOWebSocket
import Synchronization

@Suite("cairn serve process: WebSocket shutdown", .serialized, .timeLimit(.minutes(2)))
struct ServeProcessWebSocketTests {
    final class Seen: Sendable {
        let authenticated = Mutex(false)
    }

    @Test func sigtermClosesOpenSocketsWith1001() async throws {
        let root = try ServeProcessTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let server = try LiveServerProcess(dataDirectory: root.appendingPathComponent("data"))
        try await server.start()
        let base = try #require(server.baseURL)
        let (status, body) = try await HTTP.send("POST", base.appendingPathComponent("api/auth/register"), json: ["email": "shutdown@example.com", "password": "password-123"])
        #expect(status == 201)
        let token = try #require(body["token"] as? String)
        let seen = Seen()
        let socket = Task {
            try await WebSocketClient.connect(
                url: "ws://127.0.0.1:\(base.port ?? 0)/api/sync/ws",
                configuration: .init(additionalHeaders: [.authorization: "Bearer \(token)"]),
                logger: Logger(label: "shutdown-test")
            ) { inbound, _, _ in
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    if case .text(let text) = message, text.contains("auth_success") { seen.authenticated.withLock { $0 = true } }
                }
            }
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while !seen.authenticated.withLock({ $0 }) && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(seen.authenticated.withLock { $0 })
        // SIGTERM: the socket is told the server is going away, then the process exits cleanly
        #expect(await server.terminate() == 0)
        let frame = try await socket.value
        #expect(frame?.closeCode == .goingAway)
    }
}
