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
///
/// Two kinds of messages share the queue and its bounds:
/// - **stream** messages (live changes, catch-up pages and their `sync_complete`) are refused
///   when the queue is full, and an overflow replaces every queued one with a single `resync`
///   (``replaceStream(with:)``): the client catches up by cursor, so nothing is lost;
/// - **replies** (the one answer to each client message: `pong`, acks, errors, `auth_*`) are
///   never refused for room nor dropped. What bounds them is the socket's reader, which takes
///   the client's next message only once the queue has room again (``waitForRoom()``).
///
/// A waiting writer is handed a message under the same lock that queues it, so no message can
/// slip in between the writer finding the queue empty and starting to wait.
final class Outbox: Sendable {
    enum Kind: Sendable {
        case reply
        case stream
    }

    enum EnqueueResult {
        case enqueued
        /// The message did not fit: the queue is full.
        case full
        case closed
    }

    struct Entry {
        var message: Outgoing
        var kind: Kind
    }

    struct State {
        var queue: [Entry] = []
        var head = 0
        var bytes = 0
        var closed = false
        /// The writer, waiting in `next()`; only ever set while the queue is empty.
        var writer: CheckedContinuation<Outgoing?, Never>?
        /// Tasks waiting in `waitForRoom()`, by a number of their own (to remove one on cancel).
        var roomWaiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
        var count: Int { self.queue.count - self.head }

        func hasRoom(maxMessages: Int, maxBytes: Int) -> Bool {
            self.count < maxMessages && self.bytes < maxBytes
        }

        /// Takes the room waiters if the queue has room for another message.
        mutating func waitersToWake(maxMessages: Int, maxBytes: Int) -> [CheckedContinuation<Void, Never>] {
            guard !self.roomWaiters.isEmpty, self.hasRoom(maxMessages: maxMessages, maxBytes: maxBytes) else { return [] }
            defer { self.roomWaiters = [:] }
            return Array(self.roomWaiters.values)
        }
    }

    /// What `take` found.
    private enum Taken {
        case message(Outgoing)
        case closed
        /// Nothing queued; the writer passed in (if any) now waits for the next message.
        case waiting
    }

    let maxMessages: Int
    let maxBytes: Int
    private let state = Mutex(State())

    init(maxMessages: Int = 256, maxBytes: Int = 1 << 20) {
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
    }

    /// Queues a message of `kind`. A stream message is refused (`.full`) when it would exceed a
    /// bound, except that a single message larger than the whole byte bound is still accepted
    /// into an empty queue (large pages are sent one at a time). A reply is always queued.
    func enqueue(_ message: String, kind: Kind) -> EnqueueResult {
        self.enqueue(Entry(message: .text(message), kind: kind), bounded: kind == .stream)
    }

    /// Queues a close frame after what is queued, whatever the bounds.
    func enqueueClose(_ code: WebSocketErrorCode, reason: String) {
        _ = self.enqueue(Entry(message: .close(code, reason), kind: .reply), bounded: false)
    }

    private func enqueue(_ entry: Entry, bounded: Bool) -> EnqueueResult {
        let size = entry.message.size
        let (result, writer) = self.state.withLock { state -> (EnqueueResult, CheckedContinuation<Outgoing?, Never>?) in
            if state.closed { return (.closed, nil) }
            if let writer = state.writer {
                // The writer waits on an empty queue: the message goes straight to it.
                state.writer = nil
                return (.enqueued, writer)
            }
            if bounded, state.count > 0, state.count + 1 > self.maxMessages || state.bytes + size > self.maxBytes { return (.full, nil) }
            state.queue.append(entry)
            state.bytes += size
            return (.enqueued, nil)
        }
        writer?.resume(returning: entry.message)
        return result
    }

    /// Drops every queued stream message and queues `text` (a `resync`, itself a stream message)
    /// after the replies that stay. Returns how many messages were dropped.
    func replaceStream(with text: String) -> Int {
        let resync = Entry(message: .text(text), kind: .stream)
        let (dropped, writer, waiters) = self.state.withLock {
            state -> (Int, CheckedContinuation<Outgoing?, Never>?, [CheckedContinuation<Void, Never>]) in
            if state.closed { return (0, nil, []) }
            if let writer = state.writer {
                state.writer = nil
                return (0, writer, [])
            }
            let kept = state.queue[state.head...].filter { $0.kind == .reply }
            let dropped = state.count - kept.count
            state.queue = Array(kept) + [resync]
            state.head = 0
            state.bytes = state.queue.reduce(0) { $0 + $1.message.size }
            return (dropped, nil, state.waitersToWake(maxMessages: self.maxMessages, maxBytes: self.maxBytes))
        }
        writer?.resume(returning: resync.message)
        for waiter in waiters { waiter.resume() }
        return dropped
    }

    /// Takes the first queued message; with none queued, `writer` (if given) waits for the next.
    private func take(orWait writer: CheckedContinuation<Outgoing?, Never>?) -> Taken {
        let (taken, waiters) = self.state.withLock { state -> (Taken, [CheckedContinuation<Void, Never>]) in
            guard state.count > 0 else {
                if state.closed { return (.closed, []) }
                if let writer { state.writer = writer }
                return (.waiting, [])
            }
            let entry = state.queue[state.head]
            state.head += 1
            state.bytes -= entry.message.size
            if state.head > 64 && state.head * 2 > state.queue.count {
                state.queue.removeFirst(state.head)
                state.head = 0
            }
            return (.message(entry.message), state.waitersToWake(maxMessages: self.maxMessages, maxBytes: self.maxBytes))
        }
        for waiter in waiters { waiter.resume() }
        return taken
    }

    /// The next message, waiting for one; `nil` once closed. One writer calls this.
    func next() async -> Outgoing? {
        switch self.take(orWait: nil) {
        case .message(let message): return message
        case .closed: return nil
        case .waiting: break
        }
        return await withCheckedContinuation { continuation in
            switch self.take(orWait: continuation) {
            case .message(let message): continuation.resume(returning: message)
            case .closed: continuation.resume(returning: nil)
            case .waiting: break  // an enqueue, replaceStream or close resumes it
            }
        }
    }

    /// Waits until the queue has room for another message, or is closed, or the task is cancelled.
    func waitForRoom() async {
        let number: Int? = self.state.withLock { state in
            if state.closed || state.hasRoom(maxMessages: self.maxMessages, maxBytes: self.maxBytes) { return nil }
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        guard let number else { return }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = self.state.withLock { state in
                    if state.closed || Task.isCancelled || state.hasRoom(maxMessages: self.maxMessages, maxBytes: self.maxBytes) { return true }
                    state.roomWaiters[number] = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            self.state.withLock { $0.roomWaiters.removeValue(forKey: number) }?.resume()
        }
    }

    /// Messages queued now.
    var count: Int { self.state.withLock { $0.count } }

    /// Ends the queue: the writer drains nothing more and stops.
    func close() {
        let (writer, waiters) = self.state.withLock { state -> (CheckedContinuation<Outgoing?, Never>?, [CheckedContinuation<Void, Never>]) in
            state.closed = true
            state.queue = []
            state.head = 0
            state.bytes = 0
            defer {
                state.writer = nil
                state.roomWaiters = [:]
            }
            return (state.writer, Array(state.roomWaiters.values))
        }
        writer?.resume(returning: nil)
        for waiter in waiters { waiter.resume() }
    }
}
