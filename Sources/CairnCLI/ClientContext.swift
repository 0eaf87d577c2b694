import ArgumentParser
import CairnClient
import CairnCore
import Foundation
import Logging

/// Where the `cairn` client commands keep their state: the login under the config directory
/// (`$XDG_CONFIG_HOME/cairn`, else `~/.config/cairn`), the replica under the data directory
/// (`$XDG_DATA_HOME/cairn`, else `~/.local/share/cairn`).
struct ClientHome {
    let configDirectory: URL
    let dataDirectory: URL

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let home = URL(fileURLWithPath: environment["HOME"] ?? NSHomeDirectory())
        let config = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) } ?? home.appendingPathComponent(".config")
        let data = environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) } ?? home.appendingPathComponent(".local/share")
        self.configDirectory = config.appendingPathComponent("cairn")
        self.dataDirectory = data.appendingPathComponent("cairn")
    }

    var loginFile: URL { self.configDirectory.appendingPathComponent("login.json") }
    var credentialsFile: URL { self.configDirectory.appendingPathComponent("credentials.json") }
    var replicaFile: URL { self.dataDirectory.appendingPathComponent("replica.sqlite") }
}

/// The login the client commands use: server and profile (the secret is in credentials.json).
struct Login: Codable {
    var server: String
    var profile: String
    var email: String?
}

/// A one-line error with a non-zero exit.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { self.description = message }
}

/// Runs a client command body; any error becomes one line on stderr and exit status 1.
func runClientCommand(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ExitCode {
        throw error
    } catch let error as CleanExit {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        FileHandle.standardError.write(Data("cairn: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

/// The logged-in client, opened on the local replica.
struct ClientSession {
    let home: ClientHome
    let login: Login
    let client: CairnClient

    static func open(useWebSocket: Bool = false) throws -> ClientSession {
        let home = ClientHome()
        guard let data = FileManager.default.contents(atPath: home.loginFile.path),
            let login = try? JSONDecoder().decode(Login.self, from: data),
            let server = URL(string: login.server)
        else {
            throw CLIError("not logged in: run `cairn login --server URL --email EMAIL --password-stdin` first")
        }
        var configuration = ClientConfiguration(
            serverURL: server, credentials: .stored(in: FileCredentialStore(url: home.credentialsFile)), replicaPath: home.replicaFile)
        configuration.profile = login.profile
        configuration.useWebSocket = useWebSocket
        configuration.pullInterval = .seconds(30)
        var logger = Logger(label: "cairn.client")
        logger.logLevel = ProcessInfo.processInfo.environment["CAIRN_CLIENT_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .error
        return ClientSession(home: home, login: login, client: try CairnClient(configuration: configuration, logger: logger))
    }

    /// Syncs now if the server can be reached within `timeout`; otherwise says that the work is
    /// queued. Never fails the command for being offline.
    @discardableResult
    func syncIfPossible(timeout: Duration = .seconds(15), quiet: Bool = false) async -> SyncReport? {
        let client = self.client
        let outcome: Result<SyncReport, any Error>? = await withTaskGroup(of: Result<SyncReport, any Error>?.self) { group in
            group.addTask {
                do { return .success(try await client.forceSync()) } catch { return .failure(error) }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        let pending = (try? await client.pendingCount()) ?? 0
        switch outcome {
        case .success(let report)?:
            for rejected in report.rejected {
                Self.note("the server refused a change (\(rejected.error?.code ?? "?"): \(rejected.error?.message ?? ""))")
            }
            return report
        case .failure(CairnClientError.replicaLocked)?:
            if !quiet && pending > 0 { Self.note("\(pending) change(s) queued; the running `cairn sync --watch` will push them") }
        case .failure(CairnClientError.unauthorized)?:
            Self.note("the server refused the login; run `cairn login` again (\(pending) change(s) queued)")
        case .failure(CairnClientError.offline(let reason))?:
            if !quiet { Self.note("offline (\(reason)); \(pending) change(s) queued, they sync when the server is reachable") }
        case .failure(let error)?:
            Self.note("sync failed: \(error); \(pending) change(s) queued")
        case nil:
            if !quiet { Self.note("the server did not answer in time; \(pending) change(s) queued") }
        }
        return nil
    }

    static func note(_ message: String) {
        FileHandle.standardError.write(Data("cairn: \(message)\n".utf8))
    }

    /// A bookmark by full id or unique id prefix (as `ls` shows it).
    func resolveBookmark(_ reference: String) async throws -> BookmarkNode {
        if let node = try await self.client.bookmarks.get(reference) { return node }
        let all = try await self.client.bookmarks.tree().flatMap(Self.flatten)
        let matches = all.filter { $0.id.hasPrefix(reference) }
        guard matches.count == 1, let match = matches.first else {
            throw CLIError(matches.isEmpty ? "no bookmark or folder with id \(reference)" : "\(reference) matches several ids; give more characters")
        }
        return match
    }

    /// A folder by id, id prefix, root name or title path (`toolbar/Dev`).
    func resolveFolder(_ reference: String) async throws -> BookmarkNode {
        if let folder = try await self.client.bookmarks.folder(named: reference) { return folder }
        if let node = try? await self.resolveBookmark(reference), node.isFolder { return node }
        throw CLIError("no folder \(reference)")
    }

    static func flatten(_ node: BookmarkNode) -> [BookmarkNode] {
        [node] + (node.children ?? []).flatMap(flatten)
    }
}

/// A progress bar on stderr (only when stderr is a terminal, else one line at the end).
final class ProgressBar: Sendable {
    let label: String
    let interactive = isatty(STDERR_FILENO) == 1

    init(label: String) {
        self.label = label
    }

    func update(_ done: Int, _ total: Int) {
        guard total > 0 else { return }
        if self.interactive {
            let width = 30
            let filled = done * width / total
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            FileHandle.standardError.write(Data("\r\(self.label) [\(bar)] \(done)/\(total)".utf8))
            if done >= total { FileHandle.standardError.write(Data("\n".utf8)) }
        } else if done >= total {
            FileHandle.standardError.write(Data("\(self.label): \(done)/\(total)\n".utf8))
        }
    }
}
