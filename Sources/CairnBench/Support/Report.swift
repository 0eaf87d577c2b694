import Foundation

/// One measured number. `counterpart` names the raw-baseline figure it is compared with.
struct Figure: Sendable {
    /// A stable key, e.g. `push.one-client`.
    let id: String
    let workload: String
    let label: String
    let value: Double
    let unit: String
    var counterpart: String?
}

/// A workload that stopped before producing its figures, and why.
struct Failure: Encodable, Sendable {
    let workload: String
    let reason: String
}

/// Everything one run measured, printed as a table and written as JSON.
struct Report: Sendable {
    /// The ratio of a figure to its raw counterpart, with the counterpart's value.
    struct Comparison: Sendable {
        let raw: Double
        let ratio: Double
    }

    /// One JSON row: the figure and, when it has a raw counterpart, its value and the ratio.
    struct Row: Encodable, Sendable {
        let id: String
        let workload: String
        let label: String
        let value: Double
        let unit: String
        let counterpart: String?
        let raw: Double?
        let ratio: Double?
    }

    /// Where the run happened, as far as the process can tell, and how busy the machine was
    /// (the 1-minute load average when the run started and when it ended, from `/proc/loadavg`).
    struct Machine: Encodable, Sendable {
        let processors = ProcessInfo.processInfo.activeProcessorCount
        let memoryBytes = ProcessInfo.processInfo.physicalMemory
        let operatingSystem = ProcessInfo.processInfo.operatingSystemVersionString
        let loadAverageAtStart: Double?
        let loadAverageAtEnd = Machine.loadAverage()

        static func loadAverage() -> Double? {
            (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first.flatMap { Double($0) }
        }
    }

    /// The workloads, in the order they run; `--only` picks among these names.
    static let workloads = ["raw", "fanout", "idle", "push", "write", "pull", "import", "scale"]

    let mode: String
    let startedAt: Date
    let loadAverageAtStart = Machine.loadAverage()
    /// The workloads to run; `nil` runs them all.
    let only: Set<String>?
    private(set) var figures: [Figure] = []
    private(set) var failures: [Failure] = []

    init(mode: String, only: Set<String>? = nil, startedAt: Date = Date()) {
        self.mode = mode
        self.only = only
        self.startedAt = startedAt
    }

    /// Whether `workload` runs (every one unless `--only` names others).
    func selected(_ workload: String) -> Bool { self.only?.contains(workload) ?? true }

    /// Runs one workload unless `only` leaves it out (announcing it on stderr, so stdout is only
    /// the table) and keeps its figures, or the reason it failed: the other workloads still run.
    mutating func measure(_ workload: String, _ body: () async throws -> [Figure]) async {
        guard self.selected(workload) else { return }
        FileHandle.standardError.write(Data("cairn-bench: \(workload)…\n".utf8))
        do {
            self.figures += try await body()
        } catch {
            self.failures.append(Failure(workload: workload, reason: "\(error)"))
        }
    }

    /// `figure` compared with its raw counterpart, when both were measured.
    func comparison(of figure: Figure) -> Comparison? {
        guard let key = figure.counterpart, let raw = self.figures.first(where: { $0.id == key }), raw.value > 0 else { return nil }
        return Comparison(raw: raw.value, ratio: figure.value / raw.value)
    }

    /// The fixed-width table printed on stdout.
    var table: String {
        let header = ["workload", "figure", "value", "unit", "raw", "ratio"]
        let rows = self.figures.map { figure -> [String] in
            let comparison = self.comparison(of: figure)
            return [
                figure.workload, figure.label, Self.format(figure.value), figure.unit,
                comparison.map { Self.format($0.raw) } ?? "", comparison.map { String(format: "%.3f×", $0.ratio) } ?? "",
            ]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        let line = { (cells: [String]) in
            zip(cells, widths).enumerated().map { index, pair in
                index >= 2 && index != 3 ? Self.pad(pair.0, pair.1, left: true) : Self.pad(pair.0, pair.1, left: false)
            }.joined(separator: "  ")
        }
        var lines = [line(header), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")] + rows.map(line)
        lines += self.failures.map { "FAILED \($0.workload): \($0.reason)" }
        let load = [self.loadAverageAtStart, Machine.loadAverage()].map { $0.map { String(format: "%.2f", $0) } ?? "?" }
        lines.append("\(ProcessInfo.processInfo.activeProcessorCount) processors; 1-minute load average \(load[0]) at start, \(load[1]) at end")
        return lines.joined(separator: "\n")
    }

    /// The JSON document: the mode, the start time, the machine, every figure with its
    /// comparison, failures.
    func json() throws -> Data {
        struct Document: Encodable {
            let mode: String
            let only: [String]?
            let startedAt: Date
            let machine: Machine
            let figures: [Row]
            let failures: [Failure]
        }
        let rows = self.figures.map { figure in
            let comparison = self.comparison(of: figure)
            return Row(
                id: figure.id, workload: figure.workload, label: figure.label, value: figure.value, unit: figure.unit,
                counterpart: figure.counterpart, raw: comparison?.raw, ratio: comparison?.ratio)
        }
        let document = Document(
            mode: self.mode, only: self.only.map { $0.sorted() }, startedAt: self.startedAt,
            machine: Machine(loadAverageAtStart: self.loadAverageAtStart), figures: rows, failures: self.failures)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(document)
    }

    /// Three significant digits (whole numbers with grouped thousands from 1,000).
    static func format(_ value: Double) -> String {
        switch abs(value) {
        case 1000...: Self.grouped(Int(value.rounded()))
        case 10..<1000: String(format: "%.1f", value)
        case 1..<10: String(format: "%.2f", value)
        case 0: "0"
        default: String(format: "%.3g", value)
        }
    }

    /// `12345` as `12,345`.
    private static func grouped(_ value: Int) -> String {
        var digits = String(value.magnitude)
        var groups: [Substring] = []
        while digits.count > 3 {
            groups.insert(digits.suffix(3), at: 0)
            digits.removeLast(3)
        }
        groups.insert(Substring(digits), at: 0)
        return (value < 0 ? "-" : "") + groups.joined(separator: ",")
    }

    private static func pad(_ text: String, _ width: Int, left: Bool) -> String {
        let padding = String(repeating: " ", count: max(0, width - text.count))
        return left ? padding + text : text + padding
    }
}
