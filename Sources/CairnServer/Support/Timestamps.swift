import CairnCore
import Foundation

/// Millisecond timestamps in and out: ISO 8601 for the seed surfaces that speak it, integers
/// everywhere else; either accepted on input.
enum Timestamps {
    /// `2024-01-15T10:30:00.000Z`.
    static func iso(_ milliseconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }

    /// Milliseconds from an integer (ms), a numeric string, or an ISO 8601 date (with or without
    /// fractional seconds, or a bare date).
    /// The largest timestamp accepted (year 9999), so arithmetic on it can never overflow.
    static let maximum: Int64 = 253_402_300_799_999

    static func milliseconds(_ text: String) -> Int64? {
        let trimmed = text.trimmingWhitespace()
        if let number = Int64(trimmed) { return (0...maximum).contains(number) ? number : nil }
        if let number = Double(trimmed) { return self.milliseconds(number) }
        let full = ISO8601DateFormatter()
        full.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = full.date(from: trimmed) { return self.milliseconds((date.timeIntervalSince1970 * 1000).rounded()) }
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        if let date = plain.date(from: trimmed) { return self.milliseconds((date.timeIntervalSince1970 * 1000).rounded()) }
        let day = ISO8601DateFormatter()
        day.formatOptions = [.withFullDate]
        if let date = day.date(from: trimmed) { return self.milliseconds((date.timeIntervalSince1970 * 1000).rounded()) }
        return nil
    }

    /// A whole number of ms within range; `nil` for NaN, infinities and anything out of range.
    static func milliseconds(_ number: Double) -> Int64? {
        guard number.isFinite, number >= 0, number <= Double(maximum) else { return nil }
        return Int64(number)
    }

    static func milliseconds(_ value: JSONValue?) -> Int64? {
        switch value {
        case .number(let number)?: self.milliseconds(number)
        case .string(let text)?: self.milliseconds(text)
        default: nil
        }
    }
}
