import Histogram

/// Latency samples in microseconds, from 1 µs to 60 s at three significant digits.
struct Latency: Sendable {
    private var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)

    /// Records one sample (values past 60 s are clamped to it).
    mutating func record(_ duration: Duration) {
        _ = self.histogram.record(min(duration.microseconds, 60_000_000))
    }

    /// The value at `percentile` (0–100) in milliseconds.
    func milliseconds(at percentile: Double) -> Double {
        Double(self.histogram.valueAtPercentile(percentile)) / 1000
    }
}
