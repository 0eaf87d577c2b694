import CairnCore
import Foundation
import Synchronization

/// A value many tasks can watch: each `stream()` starts with the current value and then gets
/// every change, until the broadcast finishes.
final class Broadcast<Value: Sendable & Equatable>: Sendable {
    private struct State {
        var value: Value
        var subscribers: [UUID: AsyncStream<Value>.Continuation] = [:]
        var finished = false
    }

    private let state: Mutex<State>

    init(_ value: Value) {
        self.state = Mutex(State(value: value))
    }

    var value: Value { self.state.withLock { $0.value } }

    func update(_ change: (inout Value) -> Void) {
        let (value, subscribers) = self.state.withLock { state -> (Value?, [AsyncStream<Value>.Continuation]) in
            let old = state.value
            change(&state.value)
            return state.value == old ? (nil, []) : (state.value, Array(state.subscribers.values))
        }
        guard let value else { return }
        for subscriber in subscribers { subscriber.yield(value) }
    }

    func stream() -> AsyncStream<Value> {
        let (stream, continuation) = AsyncStream.makeStream(of: Value.self, bufferingPolicy: .bufferingNewest(64))
        let id = UUID()
        let current: Value? = self.state.withLock { state in
            if state.finished { return nil }
            state.subscribers[id] = continuation
            return state.value
        }
        if let current { continuation.yield(current) } else { continuation.finish() }
        continuation.onTermination = { [weak self] _ in self?.state.withLock { _ = $0.subscribers.removeValue(forKey: id) } }
        return stream
    }

    func finish() {
        let subscribers = self.state.withLock { state in
            state.finished = true
            defer { state.subscribers = [:] }
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers { subscriber.finish() }
    }
}

/// Events fanned out to every current listener (no replay).
final class EventFanout<Event: Sendable>: Sendable {
    private let subscribers = Mutex<[UUID: AsyncStream<Event>.Continuation]>([:])

    func stream() -> AsyncStream<Event> {
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingNewest(10_000))
        let id = UUID()
        self.subscribers.withLock { $0[id] = continuation }
        continuation.onTermination = { [weak self] _ in self?.subscribers.withLock { _ = $0.removeValue(forKey: id) } }
        return stream
    }

    func send(_ events: [Event]) {
        let subscribers = self.subscribers.withLock { Array($0.values) }
        for subscriber in subscribers {
            for event in events { subscriber.yield(event) }
        }
    }

    func finish() {
        let subscribers = self.subscribers.withLock { all in defer { all = [:] }; return Array(all.values) }
        for subscriber in subscribers { subscriber.finish() }
    }
}

/// A wake-up flag a loop can wait on with a deadline.
final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
        var generation = 0
        /// The generation whose timer fired, even if it fired before its waiter was registered.
        var expired = -1
    }

    private let state = Mutex(State())

    /// Wakes the waiter (or the next `wait`).
    func notify() {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.pending = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Returns when notified (true) or when `timeout` passed (false). One waiter at a time.
    func wait(timeout: Duration) async -> Bool {
        let generation = self.state.withLock { state -> Int? in
            if state.pending {
                state.pending = false
                return nil
            }
            state.generation += 1
            return state.generation
        }
        guard let generation else { return true }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            guard let self else { return }
            let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard state.generation == generation else { return nil }
                state.expired = generation
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = self.state.withLock { state -> Bool in
                    if state.pending || state.expired == generation || Task.isCancelled { return true }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            self.notify()
        }
        timer.cancel()
        return self.state.withLock { state in
            defer { state.pending = false }
            return state.pending
        }
    }
}

/// This device's hybrid logical clock: every local edit gets a stamp later than the last one.
final class LocalClock: Sendable {
    private let last: Mutex<HLC>
    let node: String

    /// Starts after `last`: the newest stamp this device already queued (a new process must not
    /// stamp an edit before one it queued earlier, even if the wall clock stepped back).
    init(node: String, after last: HLC? = nil) {
        self.node = node
        self.last = Mutex(last ?? HLC(wall: 0, node: node))
    }

    /// Moves the clock past a time seen on the server (a pulled change's `updatedAt`), so that an
    /// edit made after seeing a change is stamped after it even when this device's clock is
    /// behind (the receive rule of a hybrid logical clock).
    func observe(wall: Int64) {
        guard wall <= HLC.maximumWall else { return }
        self.last.withLock { last in
            if wall > last.wall { last = HLC(wall: wall, counter: 0, node: self.node) }
        }
    }

    func next() -> HLC {
        let wall = Int64(Date().timeIntervalSince1970 * 1000)
        return self.last.withLock { last in
            last = last.wall < wall ? HLC(wall: wall, counter: 0, node: self.node) : last.successor(after: last, node: self.node)
            return last
        }
    }
}

/// Fault injection for the crash tests (R8): `CAIRN_CLIENT_FAULT=<point>` kills the process with
/// SIGKILL when it reaches that point. Points: `after-local-write`, `before-push`, `after-ack`.
enum FaultInjection {
    static let point = ProcessInfo.processInfo.environment["CAIRN_CLIENT_FAULT"]

    static func reach(_ name: String) {
        if point == name { kill(getpid(), SIGKILL) }
    }
}
