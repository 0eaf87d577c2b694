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
    static func milliseconds(_ text: String) -> Int64? {
        let trimmed = text.trimmingWhitespace()
        if let number = Int64(trimmed) { return number }
        if let number = Double(trimmed), number.isFinite { return Int64(number) }
        let full = ISO8601DateFormatter()
        full.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = full.date(from: trimmed) { return Int64((date.timeIntervalSince1970 * 1000).rounded()) }
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        if let date = plain.date(from: trimmed) { return Int64((date.timeIntervalSince1970 * 1000).rounded()) }
        let day = ISO8601DateFormatter()
        day.formatOptions = [.withFullDate]
        if let date = day.date(from: trimmed) { return Int64((date.timeIntervalSince1970 * 1000).rounded()) }
        return nil
    }

    static func milliseconds(_ value: JSONValue?) -> Int64? {
        switch value {
        case .number(let number)?: number.isFinite ? Int64(number) : nil
        case .string(let text)?: self.milliseconds(text)
        default: nil
        }
    }
}
