import Foundation
import Synchronization

/// The server's wall clock, injectable so tests can move time instead of sleeping.
public struct ServerClock: Sendable {
    private let read: @Sendable () -> Date

    /// A clock reading `read()`.
    public init(_ read: @escaping @Sendable () -> Date) {
        self.read = read
    }

    /// The system clock.
    public static var system: ServerClock { ServerClock { Date() } }

    /// Now.
    public var now: Date { self.read() }

    /// Now in milliseconds since 1970.
    public var nowMilliseconds: Int64 { Int64((self.read().timeIntervalSince1970 * 1000).rounded(.down)) }

    /// Now in whole seconds since 1970.
    public var nowSeconds: Int64 { Int64(self.read().timeIntervalSince1970.rounded(.down)) }
}

/// A clock that only moves when told to (tests).
public final class ManualClock: Sendable {
    private let current: Mutex<Date>

    /// Starts at `start`.
    public init(start: Date = Date()) {
        self.current = Mutex(start)
    }

    /// Moves the clock forward (or back, with a negative interval).
    public func advance(by seconds: TimeInterval) {
        self.current.withLock { $0 = $0.addingTimeInterval(seconds) }
    }

    /// A `ServerClock` reading this clock.
    public var clock: ServerClock { ServerClock { self.current.withLock { $0 } } }
}
