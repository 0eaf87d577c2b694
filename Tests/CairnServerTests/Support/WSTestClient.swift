import CairnCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import HummingbirdWSClient
import Logging
import NIOWebSocket
import Synchronization
import Testing

@testable import CairnServer

/// Runs `body` against a live server (real sockets) on a fresh data directory.
func withLiveServer<T: Sendable>(
    configure: (inout ServerConfiguration) -> Void = { _ in },
    clock: ServerClock = .system,
    _ body: @Sendable (any TestClientProtocol, Int, CairnServerComponents) async throws -> T
) async throws -> T {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    let app = try await makeTestApplication(directory: directory, configure: configure, clock: clock)
    let components = app.components
    return try await app.application.test(.live) { client in
        guard let port = client.port else { throw CairnError(.internalError, "no port") }
        return try await body(client, port, components)
    }
}

/// A WebSocket client for tests: messages arrive in a buffer that `next` reads with a timeout.
final class WSTestClient: Sendable {
    final class State: Sendable {
        let received = Mutex<[JSONValue]>([])
        let finished = Mutex<Bool>(false)
    }

    private let state = State()
    private let outgoing: AsyncStream<String>.Continuation
    let task: Task<WebSocketCloseFrame?, any Error>

    init(port: Int, path: String = "/api/sync/ws", headers: HTTPFields = [:]) {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        self.outgoing = continuation
        let state = self.state
        self.task = Task {
            defer { state.finished.withLock { $0 = true } }
            return try await WebSocketClient.connect(
                url: "ws://127.0.0.1:\(port)\(path)",
                configuration: .init(maxFrameSize: 1 << 24, additionalHeaders: headers),
                logger: Logger(label: "ws-test")
            ) { inbound, outbound, _ in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await text in stream { try await outbound.write(.text(text)) }
                        // close() ends the stream: close the socket too (the client library does
                        // not end a connection when its task is cancelled).
                        try? await outbound.close(.normalClosure, reason: nil)
                    }
                    for try await message in inbound.messages(maxSize: 1 << 26) {
                        if case .text(let text) = message, let value = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) {
                            state.received.withLock { $0.append(value) }
                        }
                    }
                    group.cancelAll()
                }
            }
        }
    }

    /// A client authenticated in the upgrade with a bearer credential.
    static func bearer(_ port: Int, _ token: String, query: String = "") -> WSTestClient {
        WSTestClient(port: port, path: "/api/sync/ws\(query)", headers: [.authorization: "Bearer \(token)"])
    }

    func send(_ message: JSONValue) {
        self.outgoing.yield(Session.encode(message))
    }

    func sendRaw(_ text: String) {
        self.outgoing.yield(text)
    }

    /// Ends the client side (a normal close).
    func close() {
        self.outgoing.finish()
        self.task.cancel()
    }

    var isClosed: Bool { self.state.finished.withLock { $0 } }

    /// Everything received so far (and forgets it).
    func drain() -> [JSONValue] {
        self.state.received.withLock { all in
            defer { all = [] }
            return all
        }
    }

    /// The next message of `type` (or any type), waiting up to `timeout`; earlier messages of
    /// other types are kept.
    func next(_ type: String? = nil, timeout: Duration = .seconds(5)) async -> JSONValue? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let found: JSONValue? = self.state.received.withLock { all in
                guard let index = all.firstIndex(where: { type == nil || $0["type"]?.stringValue == type }) else { return nil }
                return all.remove(at: index)
            }
            if let found { return found }
            if self.isClosed { return nil }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }

    /// Waits until the server closes the socket; returns its close code.
    func closeCode(timeout: Duration = .seconds(10)) async -> WebSocketErrorCode? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline && !self.isClosed { try? await Task.sleep(for: .milliseconds(10)) }
        guard self.isClosed else { return nil }
        return try? await self.task.value?.closeCode
    }

    /// The bookmark ids of the `sync_incremental` messages that arrive until none has come for
    /// `timeout`; with `first`, the first message may take that long (a change that must arrive,
    /// on a machine busy with the rest of the suite).
    func incrementalIds(first: Duration? = nil, timeout: Duration = .milliseconds(300)) async -> [String] {
        var ids: [String] = []
        var wait = first ?? timeout
        while let message = await self.next("sync_incremental", timeout: wait) {
            wait = timeout
            if case .array(let events)? = message["events"] {
                ids += events.compactMap { $0["bookmarkId"]?.stringValue }
            }
        }
        return ids
    }
}

/// Runs blocking socket code on a thread of its own, never on the cooperative pool (which the
/// server in the same process needs to answer).
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread { continuation.resume(returning: body()) }
    }
}

/// A blocking TCP connection to 127.0.0.1:`port` (optionally with a small receive buffer, set
/// before connecting); `nil` when it cannot connect.
func connectLoopback(port: Int, receiveBuffer: Int32? = nil) -> Int32? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    if var size = receiveBuffer {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        close(fd)
        return nil
    }
    return fd
}

/// Sends a WebSocket upgrade on a fresh connection and returns the status code of the answer.
func rawUpgradeStatus(port: Int, path: String = "/api/sync/ws", headers: [String: String]) async -> Int? {
    await onOwnThread { blockingUpgradeStatus(port: port, path: path, headers: headers) }
}

func blockingUpgradeStatus(port: Int, path: String, headers: [String: String]) -> Int? {
    guard let fd = connectLoopback(port: port) else { return nil }
    defer { close(fd) }
    var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    for (name, value) in headers { request += "\(name): \(value)\r\n" }
    request += "\r\n"
    _ = request.withCString { send(fd, $0, strlen($0), 0) }
    var buffer = [UInt8](repeating: 0, count: 512)
    let count = recv(fd, &buffer, buffer.count, 0)
    guard count > 12 else { return nil }
    let line = String(decoding: buffer[0..<count], as: UTF8.self)
    return Int(line.split(separator: " ").dropFirst().first ?? "")
}

/// A TCP client that completes the WebSocket handshake and then never reads: the slow consumer.
final class StalledSocket: @unchecked Sendable {
    let fd: Int32

    static func open(port: Int, token: String) async -> StalledSocket? {
        await onOwnThread { StalledSocket(port: port, token: token) }
    }

    init?(port: Int, token: String) {
        // Reads just the handshake answer, then never reads again.
        guard let fd = upgradeLoopbackWebSocket(port: port, token: token, receiveBuffer: 4096) else { return nil }
        self.fd = fd
    }

    deinit { close(self.fd) }
}

/// Connects to `/api/sync/ws` on loopback with `Authorization: Bearer token` and reads the
/// handshake answer byte by byte (nothing after it); the socket when the server answered 101.
func upgradeLoopbackWebSocket(port: Int, token: String, receiveBuffer: Int32?) -> Int32? {
    guard let fd = connectLoopback(port: port, receiveBuffer: receiveBuffer) else { return nil }
    let request =
        "GET /api/sync/ws HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer \(token)\r\n\r\n"
    _ = request.withCString { send(fd, $0, strlen($0), 0) }
    var byte = [UInt8](repeating: 0, count: 1)
    var head = [UInt8]()
    while head.count < 4096 {
        guard recv(fd, &byte, 1, 0) == 1 else { break }
        head.append(byte[0])
        if head.suffix(4) == [13, 10, 13, 10] { break }
    }
    guard String(decoding: head, as: UTF8.self).contains(" 101 ") else {
        close(fd)
        return nil
    }
    return fd
}

/// Opens a TCP connection, sends nothing, and returns how long the server took to close it
/// (`nil` if it stayed open for `limit` seconds).
func secondsUntilIdleClose(port: Int, limit: Double) async -> Double? {
    await onOwnThread {
        guard let fd = connectLoopback(port: port) else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: Int(limit), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let start = Date()
        var buffer = [UInt8](repeating: 0, count: 16)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count == 0 ? Date().timeIntervalSince(start) : nil
    }
}

/// A blocking WebSocket client on a plain TCP socket, for exact control of when it writes and
/// reads (a client that floods before reading anything). Use it on threads of its own.
final class RawWebSocketClient: @unchecked Sendable {
    /// A frame from the server.
    enum Frame {
        case text(String)
        case close(code: Int?)
        /// Pings and pongs, which these tests do not look at.
        case control
    }

    let fd: Int32

    /// Connects and upgrades with `Authorization: Bearer token`; `receiveBuffer` is set before
    /// connecting (a small one makes the server's writes back up as soon as the client stops
    /// reading).
    init?(port: Int, token: String, receiveBuffer: Int32? = nil) {
        guard let fd = upgradeLoopbackWebSocket(port: port, token: token, receiveBuffer: receiveBuffer) else { return nil }
        self.fd = fd
    }

    deinit { close(self.fd) }

    /// Sends one masked text frame (the mask is zero: valid, and the payload stays readable).
    @discardableResult
    func sendText(_ text: String) -> Bool {
        let payload = Array(text.utf8)
        var frame: [UInt8] = [0x81]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else {
            frame += [0x80 | 126, UInt8(payload.count >> 8 & 0xFF), UInt8(payload.count & 0xFF)]
        }
        frame += [0, 0, 0, 0] + payload
        var sent = 0
        while sent < frame.count {
            let count = frame[sent...].withUnsafeBytes { send(self.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { return false }
            sent += count
        }
        return true
    }

    /// The next frame, waiting at most `timeout` seconds; `nil` on timeout or a closed connection.
    func readFrame(timeout: Double) -> Frame? {
        var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        setsockopt(self.fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        guard let head = self.read(2) else { return nil }
        var length = Int(head[1] & 0x7F)
        if length == 126 {
            guard let extended = self.read(2) else { return nil }
            length = Int(extended[0]) << 8 | Int(extended[1])
        } else if length == 127 {
            guard let extended = self.read(8) else { return nil }
            length = extended.reduce(0) { $0 << 8 | Int($1) }
        }
        guard let payload = self.read(length) else { return nil }
        switch head[0] & 0x0F {
        case 0x1: return .text(String(decoding: payload, as: UTF8.self))
        case 0x8: return .close(code: payload.count >= 2 ? Int(payload[0]) << 8 | Int(payload[1]) : nil)
        default: return .control
        }
    }

    /// Exactly `count` bytes, or `nil`.
    private func read(_ count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let received = bytes[done...].withUnsafeMutableBytes { recv(self.fd, $0.baseAddress, $0.count, 0) }
            guard received > 0 else { return nil }
            done += received
        }
        return bytes
    }
}
