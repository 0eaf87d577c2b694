import ArgumentParser
import Foundation

/// `cairn-bench`: measures a real `cairn serve` on loopback against raw SQLite doing the same
/// writes on the same disk, in the same run. Prints a table and optionally writes JSON.
@main
struct CairnBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cairn-bench",
        abstract: "Benchmark a cairn server against the raw SQLite baseline.",
        discussion: """
            Starts `cairn serve --port 0` on a fresh data directory (CAIRN_BCRYPT_COST=4), runs the \
            raw baseline, fan-out, push, single-write, pull, import and scale workloads, and prints \
            every figure with its ratio to its raw counterpart. Exits non-zero when a workload failed.
            """
    )

    @Option(help: "The cairn executable (default: `cairn` next to this executable).")
    var cairn: String?

    @Option(help: "Also write the figures as JSON to this file.")
    var json: String?

    @Flag(help: "Small sizes: a smoke run of a few seconds.")
    var quick = false

    @Option(help: "Profile sizes of the scale workload, comma-separated (default: 10000,1000000; quick: 500,2000).")
    var scale: String?

    @Option(help: "Run only these workloads, comma-separated: \(Report.workloads.joined(separator: ", ")) (default: all).")
    var only: String?

    @Option(name: .customLong("work-dir"), help: "Where the scratch data directories go (default: the temporary directory).")
    var workDirectory: String?

    @Option(name: .customLong("idle-client"), help: .hidden)
    var idleClient: String?

    func validate() throws {
        if let scale, self.scaleSizes(scale) == nil { throw ValidationError("--scale takes positive sizes separated by commas") }
        if let only, let unknown = self.onlyWorkloads(only).first(where: { !Report.workloads.contains($0) }) {
            throw ValidationError("--only: unknown workload '\(unknown)'")
        }
    }

    /// `10000,100000` as sizes, or `nil` when malformed.
    func scaleSizes(_ raw: String) -> [Int]? {
        let sizes = raw.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !sizes.isEmpty, sizes.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        return sizes.compactMap { $0 }
    }

    /// `push,pull` as workload names.
    func onlyWorkloads(_ raw: String) -> Set<String> {
        Set(raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
    }

    var sizes: BenchSizes {
        var sizes = self.quick ? BenchSizes.quick : .full
        if let scale, let custom = self.scaleSizes(scale) { sizes.scaleSizes = custom }
        return sizes
    }

    /// This executable (the idle-connections workload starts copies of it).
    static var ownExecutable: URL {
        Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
    }

    var executable: URL {
        if let cairn { return URL(fileURLWithPath: cairn) }
        let bench = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        return bench.deletingLastPathComponent().appendingPathComponent("cairn")
    }

    func run() async throws {
        if let idleClient {
            // A child of the idle-connections workload.
            try await IdleClient.run(url: idleClient)
            return
        }
        let sizes = self.sizes
        let parent = self.workDirectory.map { URL(fileURLWithPath: $0) } ?? FileManager.default.temporaryDirectory
        let scratch = parent.appendingPathComponent("cairn-bench-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: scratch.appendingPathComponent("data"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }

        var report = Report(mode: self.quick ? "quick" : "full", only: self.only.map(self.onlyWorkloads))
        let budget = { (workload: String) in Budget(workload, limit: sizes.budget) }
        let raw = RawBaseline(
            rows: sizes.pushRecords, batchSize: sizes.pushBatch, oneTransactionRows: sizes.importBookmarks, updates: sizes.rawUpdates,
            changedRows: sizes.pullUpdates + sizes.pullCreates + sizes.pullDeletes, repeats: sizes.repeats)
        await report.measure("raw") { try raw.run(directory: scratch, budget: budget("raw")) }

        let server = try await ServerUnderTest.start(executable: self.executable, dataDirectory: scratch.appendingPathComponent("data"))
        let client = BenchHTTP(baseURL: server.baseURL)
        let rawUpdateP50 = report.figures.first { $0.id == RawBaseline.updateP50ID }?.value
        // First, while the server's heap is small and quiet: its memory growth per socket is read here.
        await report.measure("fanout") {
            var figures: [Figure] = []
            for (index, subscribers) in sizes.subscribers.enumerated() {
                figures += try await FanOutWorkload(subscribers: subscribers, writes: sizes.fanOutWrites, measureMemory: index == 0)
                    .run(client, server: server, budget: budget("fanout"))
            }
            return figures
        }
        await Self.settle(server, before: "idle", report.selected("idle"))
        await report.measure("idle") {
            try await IdleWorkload(connections: sizes.idleConnections, processes: sizes.idleProcesses)
                .run(client, server: server, executable: Self.ownExecutable, budget: budget("idle"))
        }
        await Self.settle(server, before: "push", report.selected("push"))
        await report.measure("push") {
            try await PushWorkload(records: sizes.pushRecords, batchSize: sizes.pushBatch, clients: sizes.pushClients).run(client, server: server, budget: budget("push"))
        }
        await Self.settle(server, before: "write", report.selected("write"))
        await report.measure("write") {
            try await SingleWriteWorkload(writes: sizes.singleWrites, rawUpdateP50: rawUpdateP50).run(client, budget: budget("write"))
        }
        await Self.settle(server, before: "pull", report.selected("pull"))
        await report.measure("pull") {
            try await PullWorkload(
                records: sizes.pullRecords, updates: sizes.pullUpdates, creates: sizes.pullCreates, deletes: sizes.pullDeletes, repeats: sizes.repeats
            ).run(client, budget: budget("pull"))
        }
        await Self.settle(server, before: "import", report.selected("import"))
        await report.measure("import") { try await ImportWorkload(bookmarks: sizes.importBookmarks).run(client, budget: budget("import")) }
        await Self.settle(server, before: "scale", report.selected("scale"))
        await report.measure("scale") {
            try await ScaleWorkload(sizes: sizes.scaleSizes, changes: sizes.scaleChanges, repeats: sizes.repeats, folderSize: sizes.scaleFolderSize)
                .run(client, budget: budget("scale"))
        }
        await server.stop()

        print(report.table)
        if let json { try report.json().write(to: URL(fileURLWithPath: json)) }
        if !report.failures.isEmpty {
            let log = (try? String(contentsOf: server.logFile, encoding: .utf8)) ?? ""
            let tail = log.split(separator: "\n", omittingEmptySubsequences: false).suffix(40).joined(separator: "\n")
            FileHandle.standardError.write(Data("cairn-bench: the server log ends with:\n\(tail)\n".utf8))
            throw ExitCode.failure
        }
    }

    /// Before a workload on the shared server: waits for the server to finish the work of the
    /// one before (`ServerUnderTest.settle`), and says how long that took.
    static func settle(_ server: ServerUnderTest, before workload: String, _ selected: Bool) async {
        guard selected else { return }
        let waited = await server.settle()
        let seconds = Double(waited.components.seconds) + Double(waited.components.attoseconds) / 1e18
        FileHandle.standardError.write(Data("cairn-bench: the server was quiet after \(String(format: "%.2f", seconds)) s\n".utf8))
    }
}
