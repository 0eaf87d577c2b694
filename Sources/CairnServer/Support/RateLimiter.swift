import Foundation
import Synchronization

/// Token buckets keyed by a string (an IP, a user, an email+IP pair), in memory and bounded in
/// size: when the table is full, buckets that have refilled completely (they carry no state) are
/// dropped, then the oldest.
public final class RateLimiter: Sendable {
    struct Bucket {
        var tokens: Double
        var updated: Double
    }

    /// Bucket capacity (the burst).
    let capacity: Double
    /// Tokens added per second.
    let refillPerSecond: Double
    let maximumKeys: Int
    let clock: ServerClock
    private let buckets: Mutex<[String: Bucket]>

    /// - Parameters:
    ///   - perMinute: sustained rate.
    ///   - burst: how many may come at once.
    ///   - maximumKeys: most keys remembered.
    public init(perMinute: Double, burst: Double, maximumKeys: Int = 100_000, clock: ServerClock = .system) {
        self.capacity = max(1, burst)
        self.refillPerSecond = perMinute / 60
        self.maximumKeys = maximumKeys
        self.clock = clock
        self.buckets = Mutex([:])
    }

    /// Takes one token for `key`. Returns `nil` when allowed, or the whole seconds to wait.
    public func acquire(_ key: String, cost: Double = 1) -> Int? {
        let now = self.clock.now.timeIntervalSince1970
        return self.buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: self.capacity, updated: now)
            bucket.tokens = min(self.capacity, bucket.tokens + max(0, now - bucket.updated) * self.refillPerSecond)
            bucket.updated = now
            if bucket.tokens >= cost {
                bucket.tokens -= cost
                buckets[key] = bucket
                if buckets.count > self.maximumKeys { self.prune(&buckets, now: now) }
                return nil
            }
            buckets[key] = bucket
            let missing = cost - bucket.tokens
            return max(1, Int((missing / max(self.refillPerSecond, 1e-9)).rounded(.up)))
        }
    }

    /// Whether `key` could take a token now, without taking it.
    public func wouldAllow(_ key: String) -> Bool {
        let now = self.clock.now.timeIntervalSince1970
        return self.buckets.withLock { buckets in
            guard let bucket = buckets[key] else { return true }
            return min(self.capacity, bucket.tokens + max(0, now - bucket.updated) * self.refillPerSecond) >= 1
        }
    }

    /// Seconds until `key` may try again (0 if it may now).
    public func retryAfter(_ key: String) -> Int {
        let now = self.clock.now.timeIntervalSince1970
        return self.buckets.withLock { buckets in
            guard let bucket = buckets[key] else { return 0 }
            let tokens = min(self.capacity, bucket.tokens + max(0, now - bucket.updated) * self.refillPerSecond)
            return tokens >= 1 ? 0 : max(1, Int(((1 - tokens) / max(self.refillPerSecond, 1e-9)).rounded(.up)))
        }
    }

    /// Number of keys currently remembered.
    public var count: Int { self.buckets.withLock { $0.count } }

    private func prune(_ buckets: inout [String: Bucket], now: Double) {
        buckets = buckets.filter { _, bucket in
            bucket.tokens + (now - bucket.updated) * self.refillPerSecond < self.capacity
        }
        if buckets.count > self.maximumKeys {
            let excess = buckets.count - self.maximumKeys * 9 / 10
            for key in buckets.sorted(by: { $0.value.updated < $1.value.updated }).prefix(excess).map(\.key) {
                buckets.removeValue(forKey: key)
            }
        }
    }
}

extension RateLimiter {
    /// The rate-limit key of a client address: an IPv4 address as it is, an IPv6 address by its
    /// /64 prefix (one subscriber usually holds a whole /64, so per-/128 buckets would let it
    /// rotate through 2^64 of them), an IPv4-mapped IPv6 address as its IPv4 address.
    public static func addressKey(_ address: String?) -> String {
        guard let address, !address.isEmpty else { return "unknown" }
        guard address.contains(":") else { return address }
        let bare = address.split(separator: "%", maxSplits: 1).first.map(String.init) ?? address
        let lowered = bare.lowercased()
        if lowered.hasPrefix("::ffff:"), lowered.contains(".") {
            return String(lowered.dropFirst("::ffff:".count))
        }
        let halves = lowered.components(separatedBy: "::")
        guard halves.count <= 2 else { return lowered }
        let head = halves[0].split(separator: ":").map(String.init)
        let tail = halves.count == 2 ? halves[1].split(separator: ":").map(String.init) : []
        var groups = head
        if halves.count == 2 {
            groups += Array(repeating: "0", count: max(0, 8 - head.count - tail.count)) + tail
        }
        let numbers = groups.compactMap { UInt16($0, radix: 16) }
        guard groups.count == 8, numbers.count == 8 else { return lowered }
        return numbers.prefix(4).map { String($0, radix: 16) }.joined(separator: ":") + "::/64"
    }
}
