import Foundation

/// A real `cairn serve` child process on a loopback port chosen by the kernel (`--port 0`), with a
/// fresh data directory and `CAIRN_BCRYPT_COST=4` (registrations are not what is measured).
final class ServerUnderTest {
    let baseURL: URL
    let logFile: URL
    private let process: Process

    private init(baseURL: URL, logFile: URL, process: Process) {
        self.baseURL = baseURL
        self.logFile = logFile
        self.process = process
    }

    /// Starts `executable` on `dataDirectory` and waits (up to `timeout`) for the line
    /// `Cairn listening on http://127.0.0.1:PORT` in its output.
    static func start(executable: URL, dataDirectory: URL, timeout: Duration = .seconds(60)) async throws -> ServerUnderTest {
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw BenchError.server("no cairn executable at \(executable.path) (pass --cairn PATH)")
        }
        let logFile = dataDirectory.deletingLastPathComponent().appendingPathComponent("cairn-serve.log")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let process = Process()
        process.executableURL = executable
        // 1,000 subscribers of one profile, and 2,500 idle sockets, are one user's sockets: the
        // per-user cap (100 by default) is raised for the fan-out and idle workloads.
        process.arguments = [
            "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDirectory.path, "--max-websockets-per-user", "5000",
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["CAIRN_BCRYPT_COST"] = "4"
        process.environment = environment
        let output = try FileHandle(forWritingTo: logFile)
        process.standardOutput = output
        process.standardError = output
        try process.run()

        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let log = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
            if let url = Self.listeningURL(in: log) {
                return ServerUnderTest(baseURL: url, logFile: logFile, process: process)
            }
            guard process.isRunning else { throw BenchError.server("cairn exited before listening:\n\(log)") }
            try await Task.sleep(for: .milliseconds(20))
        }
        process.terminate()
        throw BenchError.server("cairn did not log its URL within \(timeout)")
    }

    /// The URL of the first `Cairn listening on http://127.0.0.1:PORT` line.
    static func listeningURL(in log: String) -> URL? {
        guard let match = log.firstMatch(of: /Cairn listening on (http:\/\/127\.0\.0\.1:\d+)/) else { return nil }
        return URL(string: String(match.1))
    }

    var processIdentifier: Int32 { self.process.processIdentifier }

    /// The server's resident memory in bytes (`VmRSS` of `/proc/PID/status`), when readable.
    var residentBytes: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(self.processIdentifier)/status", encoding: .utf8),
              let match = status.firstMatch(of: /VmRSS:\s+(\d+) kB/), let kilobytes = Int(match.1)
        else { return nil }
        return kilobytes * 1024
    }

    /// The CPU time the server has used so far, user and system (`/proc/PID/stat`), when readable.
    /// Steadier than wall time on a shared machine: the A/B figure for a change to the write path.
    var cpuSeconds: Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(self.processIdentifier)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")")
        else { return nil }
        // After the command name: state is field 3, utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Waits until the server has used at most one clock tick of CPU in each quarter of a second
    /// for `quiet` (longer than the WebSocket hub's 2 s sweep, which may give freed memory back
    /// after many sockets closed), for at most `limit`; returns how long that took. A workload
    /// that follows one with thousands of sockets otherwise starts while the server is still
    /// closing them, and its figures (the push's CPU per create above all) count that work as
    /// its own.
    func settle(quiet: Duration = .milliseconds(2_500), limit: Duration = .seconds(20)) async -> Duration {
        let clock = ContinuousClock()
        let start = clock.now
        let tick = 1.01 / Double(sysconf(Int32(_SC_CLK_TCK)))
        guard var before = self.cpuSeconds else { return .zero }
        var quietSince = start
        while clock.now - start < limit {
            try? await Task.sleep(for: .milliseconds(250))
            guard let after = self.cpuSeconds else { break }
            if after - before > tick { quietSince = clock.now }
            before = after
            if clock.now - quietSince >= quiet { break }
        }
        return clock.now - start
    }

    /// SIGTERM, then SIGKILL if it has not exited within `timeout`.
    func stop(timeout: Duration = .seconds(20)) async {
        guard self.process.isRunning else { return }
        self.process.terminate()
        let deadline = ContinuousClock.now + timeout
        while self.process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if self.process.isRunning { kill(self.processIdentifier, SIGKILL) }
    }
}
