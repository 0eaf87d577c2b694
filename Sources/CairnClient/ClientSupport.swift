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
///
/// The wall time it stamps with is the device's clock corrected by an offset learned from the
/// server's `Date` header (S9): a device whose clock is hours off still stamps its edits with
/// the server's notion of now, so that "the later edit wins" means the same with or without
/// skew. The correction is in whole minutes and changes only when the device is more than 45 s
/// away from it: the `Date` header has one-second resolution plus the network's delay, and a
/// clock within half a minute of the server's is left to the HLC (the server clamps stamps more
/// than 60 s ahead anyway).
final class LocalClock: Sendable {
    private struct State {
        var last: HLC
        var offset: Int64
    }

    private let state: Mutex<State>
    let node: String
    private let wall: @Sendable () -> Int64

    /// Starts after `last`: the newest stamp this device already queued (a new process must not
    /// stamp an edit before one it queued earlier, even if the wall clock stepped back).
    init(
        node: String, after last: HLC? = nil, offset: Int64 = 0,
        wall: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
    ) {
        self.node = node
        self.wall = wall
        self.state = Mutex(State(last: last ?? HLC(wall: 0, node: node), offset: offset))
    }

    /// The correction (ms) added to the device's clock.
    var offset: Int64 { self.state.withLock { $0.offset } }

    /// The device's wall clock with the correction, in ms since 1970.
    var now: Int64 {
        let offset = self.offset
        return self.wall() + offset
    }

    /// Learns the device's distance to the server's clock from the server's time as an answer
    /// stated it (`Date`, whole seconds, in ms). Returns true when the correction changed.
    @discardableResult
    func observeServerDate(_ server: Int64) -> Bool {
        let raw = server - self.wall()
        return self.state.withLock { state in
            guard abs(raw - state.offset) > 45_000 else { return false }
            state.offset = Int64((Double(raw) / 60_000).rounded()) * 60_000
            return true
        }
    }

    /// Moves the clock past a time seen on the server (a pulled change's `updatedAt`), so that an
    /// edit made after seeing a change is stamped after it even when this device's clock is
    /// behind (the receive rule of a hybrid logical clock).
    func observe(wall: Int64) {
        guard wall <= HLC.maximumWall else { return }
        self.state.withLock { state in
            if wall > state.last.wall { state.last = HLC(wall: wall, counter: 0, node: self.node) }
        }
    }

    func next() -> HLC {
        let device = self.wall()
        return self.state.withLock { state in
            let wall = device + state.offset
            state.last = state.last.wall < wall ? HLC(wall: wall, counter: 0, node: self.node) : state.last.successor(after: state.last, node: self.node)
            return state.last
        }
    }
}

/// Hands the server's `Date` of every HTTP answer to the clock once the client has one.
final class ServerDateSink: Sendable {
    private let clock = Mutex<LocalClock?>(nil)

    func connect(_ clock: LocalClock) { self.clock.withLock { $0 = clock } }

    func deliver(_ milliseconds: Int64) {
        let clock = self.clock.withLock { $0 }
        clock?.observeServerDate(milliseconds)
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
