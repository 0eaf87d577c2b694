import Foundation
import HummingbirdWSClient
import Logging
import Synchronization

/// What the fan-out subscribers saw: how many are authenticated, when each write's bookmark
/// first reached each of them, and whether any was told to resync (messages dropped).
final class Arrivals: Sendable {
    private struct State {
        var authenticated = 0
        var finished = 0
        var resyncs = 0
        /// Write index → subscriber index → first arrival.
        var times: [Int: [Int: ContinuousClock.Instant]] = [:]
    }

    private let state = Mutex(State())

    var authenticated: Int { self.state.withLock { $0.authenticated } }
    var finished: Int { self.state.withLock { $0.finished } }
    var resyncs: Int { self.state.withLock { $0.resyncs } }

    /// The first arrival of `write` at each subscriber it reached so far.
    func times(of write: Int) -> [ContinuousClock.Instant] { self.state.withLock { Array(($0.times[write] ?? [:]).values) } }

    fileprivate func receive(_ message: Subscriber.Scan, by subscriber: Int, at instant: ContinuousClock.Instant) {
        self.state.withLock { state in
            switch message.type {
            case "auth_success": state.authenticated += 1
            case "resync": state.resyncs += 1
            default: break
            }
            for write in message.writes where state.times[write]?[subscriber] == nil {
                state.times[write, default: [:]][subscriber] = instant
            }
        }
    }

    fileprivate func finish() { self.state.withLock { $0.finished += 1 } }
}

/// One WebSocket subscriber (number `index`) of a profile, authenticated with
/// `Authorization: Bearer` on the upgrade. It stamps every message the moment it is read, before
/// decoding it.
enum Subscriber {
    /// What a subscriber needs of a message, found by scanning its text rather than decoding it
    /// (with 1,000 subscribers in this process, decoding every message would take the CPU the
    /// server is measured on): its type and the write numbers of the `fan-N` bookmarks in it.
    struct Scan {
        var type: String?
        var writes: [Int] = []

        init(_ text: String) {
            let bytes = Array(text.utf8)
            if let start = Self.find(Self.typeKey, in: bytes, from: 0) {
                let end = bytes[start...].firstIndex(of: UInt8(ascii: "\"")) ?? bytes.count
                self.type = String(decoding: bytes[start..<end], as: UTF8.self)
            }
            var from = 0
            while let start = Self.find(Self.fanKey, in: bytes, from: from) {
                var value = 0
                var index = start
                while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                    value = value * 10 + Int(bytes[index] - UInt8(ascii: "0"))
                    index += 1
                }
                if index > start { self.writes.append(value) }
                from = index
            }
        }

        static let typeKey = Array(#""type":""#.utf8)
        static let fanKey = Array(#""bookmarkId":"fan-"#.utf8)

        /// The index just after the first `needle` at or after `from` (a plain byte search:
        /// Swift regexes were the slowest part of 1,000 subscribers).
        static func find(_ needle: [UInt8], in bytes: [UInt8], from: Int) -> Int? {
            guard needle.count <= bytes.count else { return nil }
            var index = from
            while index + needle.count <= bytes.count {
                if bytes[index] == needle[0], bytes[index..<(index + needle.count)].elementsEqual(needle) { return index + needle.count }
                index += 1
            }
            return nil
        }
    }

    /// Connects and listens until the task is cancelled, then closes the socket (the client
    /// library does not end a connection on cancellation by itself).
    static func start(_ index: Int, url: String, token: String, arrivals: Arrivals, logger: Logger) -> Task<Void, Never> {
        Task {
            defer { arrivals.finish() }
            _ = try? await WebSocketClient.connect(
                url: url, configuration: .init(maxFrameSize: 1 << 20, additionalHeaders: [.authorization: "Bearer \(token)"]), logger: logger
            ) { inbound, outbound, _ in
                await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for try await message in inbound.messages(maxSize: 1 << 21) {
                            let instant = ContinuousClock.now
                            guard case .text(let text) = message else { continue }
                            arrivals.receive(Scan(text), by: index, at: instant)
                        }
                    }
                    group.addTask {
                        while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
                    }
                    _ = try? await group.next()
                    try? await outbound.close(.normalClosure, reason: nil)
                    group.cancelAll()
                }
            }
        }
    }
}
