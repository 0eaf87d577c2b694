import NIOWebSocket
import Synchronization

/// What the writer task sends next.
enum Outgoing: Sendable {
    case text(String)
    case close(WebSocketErrorCode, String)

    var size: Int {
        switch self {
        case .text(let text): text.utf8.count
        case .close: 0
        }
    }
}

/// A connection's bounded queue of outgoing text messages (256 messages / 1 MiB by default),
/// drained by the connection's own writer task, so one slow reader never slows anyone else.
final class Outbox: Sendable {
    enum EnqueueResult {
        case enqueued
        /// The message did not fit: the queue is full.
        case full
        case closed
    }

    struct State {
        var queue: [Outgoing] = []
        var head = 0
        var bytes = 0
        var closed = false
        var reader: CheckedContinuation<Outgoing?, Never>?
        var spaceWaiters: [CheckedContinuation<Void, Never>] = []
        var count: Int { self.queue.count - self.head }
    }

    let maxMessages: Int
    let maxBytes: Int
    private let state = Mutex(State())

    init(maxMessages: Int = 256, maxBytes: Int = 1 << 20) {
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
    }

    /// Queues `message` unless that would exceed a bound. A single message larger than the whole
    /// byte bound is still accepted into an empty queue (large pages are sent one at a time).
    func enqueue(_ message: String) -> EnqueueResult {
        self.enqueue(.text(message), force: false)
    }

    /// Queues a close frame after what is queued, whatever the bounds.
    func enqueueClose(_ code: WebSocketErrorCode, reason: String) {
        _ = self.enqueue(.close(code, reason), force: true)
    }

    private func enqueue(_ message: Outgoing, force: Bool) -> EnqueueResult {
        let size = message.size
        let reader: CheckedContinuation<Outgoing?, Never>?
        let result: EnqueueResult = self.state.withLock { state in
            if state.closed { return .closed }
            if !force, state.count > 0, state.count + 1 > self.maxMessages || state.bytes + size > self.maxBytes { return .full }
            state.queue.append(message)
            state.bytes += size
            return .enqueued
        }
        guard case .enqueued = result else { return result }
        reader = self.state.withLock { state in
            guard let reader = state.reader else { return nil }
            state.reader = nil
            return reader
        }
        if let reader, let next = self.take() {
            reader.resume(returning: next)
        }
        return result
    }

    /// Drops everything queued and queues `message` instead (overflow: the client resyncs).
    /// Returns how many messages were dropped.
    func replaceAll(with text: String) -> Int {
        let message = Outgoing.text(text)
        let (dropped, waiters) = self.state.withLock { state -> (Int, [CheckedContinuation<Void, Never>]) in
            let dropped = state.count
            state.queue = [message]
            state.head = 0
            state.bytes = message.size
            let waiters = state.spaceWaiters
            state.spaceWaiters = []
            return (dropped, waiters)
        }
        for waiter in waiters { waiter.resume() }
        if let reader = self.state.withLock({ state -> CheckedContinuation<Outgoing?, Never>? in
            let reader = state.reader
            state.reader = nil
            return reader
        }), let next = self.take() {
            reader.resume(returning: next)
        }
        return dropped
    }

    private func take() -> Outgoing? {
        let (message, waiters) = self.state.withLock { state -> (Outgoing?, [CheckedContinuation<Void, Never>]) in
            guard state.count > 0 else { return (nil, []) }
            let message = state.queue[state.head]
            state.head += 1
            state.bytes -= message.size
            if state.head > 64 && state.head * 2 > state.queue.count {
                state.queue.removeFirst(state.head)
                state.head = 0
            }
            let waiters = state.spaceWaiters
            state.spaceWaiters = []
            return (message, waiters)
        }
        for waiter in waiters { waiter.resume() }
        return message
    }

    /// The next message, waiting for one; `nil` once closed.
    func next() async -> Outgoing? {
        if let message = self.take() { return message }
        return await withCheckedContinuation { continuation in
            let immediate: Outgoing?? = self.state.withLock { state in
                if state.count > 0 { return .some(nil) }
                if state.closed { return .some(.none) }
                state.reader = continuation
                return .none
            }
            switch immediate {
            case .none: break
            case .some(.none): continuation.resume(returning: nil)
            case .some(.some): continuation.resume(returning: self.take())
            }
        }
    }

    /// Waits until the queue has room (or is closed).
    func waitForSpace() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = self.state.withLock { state in
                if state.closed || (state.count < self.maxMessages && state.bytes < self.maxBytes) { return true }
                state.spaceWaiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }

    /// Messages queued now.
    var count: Int { self.state.withLock { $0.count } }

    /// Ends the queue: the writer drains nothing more and stops.
    func close() {
        let (reader, waiters) = self.state.withLock { state -> (CheckedContinuation<Outgoing?, Never>?, [CheckedContinuation<Void, Never>]) in
            state.closed = true
            state.queue = []
            state.head = 0
            state.bytes = 0
            let reader = state.reader
            state.reader = nil
            let waiters = state.spaceWaiters
            state.spaceWaiters = []
            return (reader, waiters)
        }
        reader?.resume(returning: nil)
        for waiter in waiters { waiter.resume() }
    }
}
