import Foundation

/// Workload 5: `connections` authenticated WebSockets held open and idle, opened by `processes`
/// child processes of this executable (`cairn-bench --idle-client URL`, reading one token per
/// socket on stdin), so that no process nears the open-files limit and the clients' memory is not
/// counted as the server's. Sockets belong to users of `perUser` sockets each. Figures: the server's resident memory growth per socket, and
/// how long opening them all took.
struct IdleWorkload {
    let connections: Int
    let processes: Int
    /// Sockets per user: few users, so that registering them stays under the per-address
    /// sign-up limit (the bench starts the server with a per-user socket cap above this).
    var perUser = 2_500

    func run(_ client: BenchHTTP, server: ServerUnderTest, executable: URL, budget: Budget) async throws -> [Figure] {
        var tokens: [String] = []
        for user in 0..<((self.connections + self.perUser - 1) / self.perUser) {
            try budget.check()
            let account = try await BenchHTTP(baseURL: client.baseURL).registerAccount("idle\(user)")
            tokens.append(account.token ?? "")
        }
        let url = "ws://\(client.baseURL.host ?? "127.0.0.1"):\(client.baseURL.port ?? 80)/api/sync/ws"
        try await Task.sleep(for: .seconds(1))
        guard let before = server.residentBytes else { throw BenchError.unexpected("cannot read the server's memory") }

        let started = ContinuousClock.now
        var children: [IdleChild] = []
        defer { children.forEach { $0.stop() } }
        let share = (self.connections + self.processes - 1) / self.processes
        for index in 0..<self.processes {
            let range = (index * share)..<min(self.connections, (index + 1) * share)
            guard !range.isEmpty else { continue }
            children.append(try IdleChild.start(executable: executable, url: url, tokens: range.map { tokens[$0 / self.perUser] }))
        }
        guard await budget.wait(upTo: .seconds(300), until: { children.allSatisfy { $0.ready || $0.failed != nil } }) else {
            throw BenchError.unexpected("\(children.filter(\.ready).count) of \(children.count) client processes opened their sockets in time")
        }
        if let failure = children.compactMap(\.failed).first { throw BenchError.unexpected("an idle client failed: \(failure)") }
        let opened = ContinuousClock.now - started
        try await Task.sleep(for: .seconds(3))
        guard let after = server.residentBytes else { throw BenchError.unexpected("cannot read the server's memory") }
        let metrics = try await client.send("GET", "metrics")
        let open = String(decoding: metrics.body, as: UTF8.self).firstMatch(of: /cairn_websocket_connections_open(?:\{[^}]*\})? (\d+)/).flatMap { Int($0.1) }
        children.forEach { $0.stop() }
        _ = await budget.wait(upTo: .seconds(30), until: { children.allSatisfy { !$0.running } })

        var figures = [
            Figure(
                id: "idle.memory", workload: "idle", label: "\(self.connections) idle authenticated sockets (\(children.count) client processes): server RSS growth per socket",
                value: Double(after - before) / Double(self.connections) / 1024, unit: "KiB"),
            Figure(id: "idle.open", workload: "idle", label: "time to open and authenticate them all", value: opened.seconds, unit: "s"),
        ]
        if let open {
            figures.append(Figure(id: "idle.count", workload: "idle", label: "open sockets the server counted (cairn_websocket_connections)", value: Double(open), unit: "sockets"))
        }
        return figures
    }
}

/// One `cairn-bench --idle-client` child: its tokens go in on stdin; it prints `ready` once every
/// socket is authenticated, or `failed <reason>`; closing its stdin makes it close them and exit.
final class IdleChild: @unchecked Sendable {
    private let process: Process
    private let input: Pipe
    private let lock = NSLock()
    private var state: (ready: Bool, failed: String?) = (false, nil)

    var ready: Bool { self.lock.withLock { self.state.ready } }
    var failed: String? { self.lock.withLock { self.state.failed } }
    var running: Bool { self.process.isRunning }

    private init(process: Process, input: Pipe) {
        self.process = process
        self.input = input
    }

    static func start(executable: URL, url: String, tokens: [String]) throws -> IdleChild {
        let process = Process()
        process.executableURL = executable
        process.arguments = ["--idle-client", url]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        let child = IdleChild(process: process, input: input)
        output.fileHandleForReading.readabilityHandler = { handle in
            let text = String(decoding: handle.availableData, as: UTF8.self)
            child.lock.withLock {
                if text.contains("ready") { child.state.ready = true }
                if let range = text.range(of: "failed ") { child.state.failed = String(text[range.upperBound...]).trimmingCharacters(in: .newlines) }
            }
            if text.isEmpty { handle.readabilityHandler = nil }
        }
        try process.run()
        input.fileHandleForWriting.write(Data((tokens.joined(separator: "\n") + "\nend\n").utf8))
        return child
    }

    /// Closes its stdin: it closes its sockets and exits.
    func stop() {
        try? self.input.fileHandleForWriting.close()
    }
}
