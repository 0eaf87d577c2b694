import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A real `cairn serve` child process on a free port and a data directory of its own.
public final class LiveServerProcess: @unchecked Sendable {
    public let process = Process()
    public let dataDirectory: URL
    public let logFile: URL
    public private(set) var baseURL: URL?

    /// The `cairn` executable built next to the test bundle (or `CAIRN_BINARY`).
    public static var executable: URL {
        if let path = ProcessInfo.processInfo.environment["CAIRN_BINARY"] { return URL(fileURLWithPath: path) }
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [bundle.appendingPathComponent("cairn"), bundle.deletingLastPathComponent().appendingPathComponent("cairn")]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]
    }

    public init(dataDirectory: URL, port: Int = 0, extraArguments: [String] = [], environment: [String: String] = [:]) throws {
        self.dataDirectory = dataDirectory
        self.logFile = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-serve-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: self.logFile.path, contents: nil)
        self.process.executableURL = Self.executable
        self.process.arguments = ["serve", "--port", String(port), "--data-dir", dataDirectory.path, "--log-level", "notice"] + extraArguments
        var env = ProcessInfo.processInfo.environment
        env["CAIRN_BCRYPT_COST"] = env["CAIRN_BCRYPT_COST"] ?? "4"
        for (key, value) in environment { env[key] = value }
        self.process.environment = env
        let handle = try FileHandle(forWritingTo: self.logFile)
        self.process.standardError = handle
        self.process.standardOutput = handle
    }

    /// Starts the process and waits until it logs the URL it listens on.
    public func start(timeout: TimeInterval = 60) async throws {
        try self.process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let log = (try? String(contentsOf: self.logFile, encoding: .utf8)) ?? ""
            if let range = log.range(of: "Cairn listening on ") {
                let rest = log[range.upperBound...]
                let url = String(rest.prefix { !$0.isWhitespace })
                self.baseURL = URL(string: url)
                return
            }
            if !self.process.isRunning { throw LiveServerError.exited(log) }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw LiveServerError.timeout
    }

    /// The log written so far.
    public var log: String { (try? String(contentsOf: self.logFile, encoding: .utf8)) ?? "" }

    /// SIGKILL: no chance to flush or shut down. Waits for the exit without blocking a thread of
    /// the cooperative pool (the in-process clients of other tests need those to make progress).
    public func kill() async {
        guard self.process.isRunning else { return }
        Foundation.kill(self.process.processIdentifier, SIGKILL)
        await self.waitForExit()
    }

    /// SIGTERM and wait: the graceful path. A server that is still running after `timeout` is
    /// killed and reported as status -1.
    public func terminate(timeout: Duration = .seconds(30)) async -> Int32 {
        guard self.process.isRunning else { return self.process.terminationStatus }
        self.process.terminate()
        if await self.waitForExit(timeout: timeout) { return self.process.terminationStatus }
        await self.kill()
        return -1
    }

    /// Polls for the exit; `waitUntilExit` would park a cooperative thread.
    @discardableResult
    public func waitForExit(timeout: Duration = .seconds(30)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while self.process.isRunning {
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    deinit {
        if self.process.isRunning { Foundation.kill(self.process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: self.logFile)
    }
}

public enum LiveServerError: Error {
    case exited(String)
    case timeout
}

/// Minimal JSON-over-HTTP for black-box tests.
public enum HTTP {
    public static func send(_ method: String, _ url: URL, json: Any? = nil, token: String? = nil) async throws -> (Int, [String: Any]) {
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.timeoutInterval = 30
        if let json {
            request.httpBody = try JSONSerialization.data(withJSONObject: json)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        // A just-started server may still be settling under load: retry a refused connection briefly.
        var attempt = 0
        var result: (Data, URLResponse)?
        while result == nil {
            do {
                result = try await URLSession.shared.data(for: request)
            } catch let error as URLError where error.code == .cannotConnectToHost && attempt < 20 {
                attempt += 1
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        guard let (data, response) = result else { throw URLError(.cannotConnectToHost) }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        return (status, object)
    }
}

/// A scratch directory removed by `remove()`.
public func makeScratchDirectory(_ prefix: String = "cairn-live") throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// A started `cairn serve` with one registered account.
public struct LiveAccount: Sendable {
    public let server: LiveServerProcess
    public let base: URL
    public let email: String
    public let password: String
    public let token: String
    public let refreshToken: String

    /// Starts a server on `dataDirectory` (optionally on a fixed port) and registers `email`.
    public static func start(dataDirectory: URL, port: Int = 0, email: String = "sdk@example.com") async throws -> LiveAccount {
        let server = try LiveServerProcess(dataDirectory: dataDirectory, port: port)
        try await server.start()
        guard let base = server.baseURL else { throw LiveServerError.timeout }
        let password = "password-123"
        let (status, body) = try await HTTP.send("POST", base.appendingPathComponent("api/auth/register"), json: ["email": email, "password": password])
        guard status == 201, let token = body["token"] as? String, let refresh = body["refreshToken"] as? String else {
            throw LiveServerError.exited("register answered \(status): \(body)")
        }
        return LiveAccount(server: server, base: base, email: email, password: password, token: token, refreshToken: refresh)
    }
}
