import CairnCore
import CairnTestFixtures
import Foundation
import Synchronization
import Testing

/// One device for the `cairn` client commands: its own config and data directories.
struct CLIHome: Sendable {
    let root: URL

    var environment: [String: String] {
        [
            "XDG_CONFIG_HOME": self.root.appendingPathComponent("config").path,
            "XDG_DATA_HOME": self.root.appendingPathComponent("data").path,
            "HOME": self.root.path,
        ]
    }

    /// Runs `cairn ARGS` to the end (without parking a cooperative thread) and returns its exit
    /// status, stdout and stderr.
    @discardableResult
    func run(_ arguments: [String], stdin: String? = nil, extraEnvironment: [String: String] = [:]) async throws -> (Int32, String, String) {
        let running = try self.spawn(arguments, stdin: stdin, extraEnvironment: extraEnvironment)
        let deadline = ContinuousClock.now + .seconds(120)
        while running.process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        if running.process.isRunning { running.process.terminate() }
        while running.process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        return (running.process.terminationStatus, running.stdout, running.stderr)
    }

    /// Starts `cairn ARGS` and returns at once.
    func spawn(_ arguments: [String], stdin: String? = nil, extraEnvironment: [String: String] = [:]) throws -> RunningCommand {
        try FileManager.default.createDirectory(at: self.root, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = LiveServerProcess.executable
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in self.environment.merging(extraEnvironment, uniquingKeysWith: { $1 }) { environment[key] = value }
        environment.removeValue(forKey: "CAIRN_CLIENT_FAULT")
        for (key, value) in extraEnvironment { environment[key] = value }
        process.environment = environment
        let out = self.root.appendingPathComponent("out-\(UUID().uuidString)")
        let err = self.root.appendingPathComponent("err-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        if let stdin {
            let input = self.root.appendingPathComponent("in-\(UUID().uuidString)")
            FileManager.default.createFile(atPath: input.path, contents: Data(stdin.utf8))
            process.standardInput = try FileHandle(forReadingFrom: input)
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        try process.run()
        return RunningCommand(process: process, outFile: out, errFile: err)
    }
}

final class RunningCommand: @unchecked Sendable {
    let process: Process
    let outFile: URL
    let errFile: URL

    init(process: Process, outFile: URL, errFile: URL) {
        self.process = process
        self.outFile = outFile
        self.errFile = errFile
    }

    var stdout: String { (try? String(contentsOf: self.outFile, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: self.errFile, encoding: .utf8)) ?? "" }
}

/// A browser export with `count` bookmarks in nested folders.
func bookmarkFile(count: Int) -> String {
    var folders: [BookmarkTreeNode] = []
    for folder in 0..<10 {
        var children: [BookmarkTreeNode] = []
        for index in 0..<(count / 10) {
            children.append(BookmarkTreeNode(title: "Page \(folder)-\(index)", url: "https://site\(folder).example/page/\(index)", tags: index % 7 == 0 ? ["seven"] : []))
        }
        folders.append(BookmarkTreeNode(title: "Folder \(folder)", children: children))
    }
    return NetscapeBookmarkFile.render([BookmarkTreeNode(title: "Bookmarks Toolbar", children: folders, rootHint: .toolbar)])
}

@Suite("cairn client commands against a live server", .serialized, .timeLimit(.minutes(6)))
struct ClientCommandTests {
    @Test func twoDevicesEndToEnd() async throws {
        let root = try makeScratchDirectory("cairn-cli")
        defer { try? FileManager.default.removeItem(at: root) }
        let account = try await LiveAccount.start(dataDirectory: root.appendingPathComponent("server"), email: "cli@example.com")
        let port = account.base.port ?? 0
        let server = "http://127.0.0.1:\(port)"
        let laptop = CLIHome(root: root.appendingPathComponent("laptop"))
        let desk = CLIHome(root: root.appendingPathComponent("desk"))

        // Login stores the server and a refresh token (0600), never the password
        for home in [laptop, desk] {
            let (status, out, err) = try await home.run(["login", "--server", server, "--email", "cli@example.com", "--password-stdin"], stdin: "password-123\n")
            #expect(status == 0, "\(err)")
            #expect(out.contains("Logged in"))
            let credentials = home.root.appendingPathComponent("config/cairn/credentials.json")
            let text = try String(contentsOf: credentials, encoding: .utf8)
            #expect(!text.contains("password-123"))
            #expect(text.contains("refreshToken"))
            let mode = (try FileManager.default.attributesOfItem(atPath: credentials.path)[.posixPermissions] as? NSNumber)?.intValue
            #expect(mode == 0o600)
        }
        let (badStatus, _, badErr) = try await laptop.run(["login", "--server", server, "--email", "cli@example.com", "--password-stdin"], stdin: "wrong-password\n")
        #expect(badStatus != 0)
        #expect(badErr.hasPrefix("cairn: ") && badErr.split(separator: "\n").count == 1)

        // Import 200 bookmarks with progress, then the tree on the other device
        let file = root.appendingPathComponent("bookmarks.html")
        try bookmarkFile(count: 200).write(to: file, atomically: true, encoding: .utf8)
        let (importStatus, importOut, importErr) = try await laptop.run(["import", file.path])
        #expect(importStatus == 0, "\(importErr)")
        #expect(importOut.contains("Imported 210"))
        #expect(importErr.contains("Importing"))
        let (_, tree, _) = try await desk.run(["ls", "--tree"])
        #expect(tree.contains("Folder 9/"))
        #expect(tree.components(separatedBy: "https://site").count - 1 == 200)

        // ls --json of a folder by path, mv, rm, search
        let (_, folderJSON, _) = try await desk.run(["ls", "toolbar/Folder 0", "--json"])
        let listed = try JSONDecoder().decode([JSONValue].self, from: Data(folderJSON.utf8))
        #expect(listed.count == 20)
        let first = try #require(listed.first?["id"]?.stringValue)
        let (mvStatus, mvOut, mvErr) = try await desk.run(["mv", String(first.prefix(8)), "--to", "menu"])
        #expect(mvStatus == 0, "\(mvErr)")
        #expect(mvOut.contains("Moved"))
        let second = try #require(listed.dropFirst().first?["id"]?.stringValue)
        let (rmStatus, _, rmErr) = try await desk.run(["rm", second])
        #expect(rmStatus == 0, "\(rmErr)")
        let (_, found, _) = try await laptop.run(["search", "Page", "0-0"])
        #expect(found.contains("menu") == false)
        #expect(found.contains("Page 0-0"))
        let (_, menu, _) = try await laptop.run(["ls", "menu"])
        #expect(menu.contains("Page 0-0"))
        let (_, gone, _) = try await laptop.run(["search", "Page 0-1 "])
        #expect(!gone.contains("Page 0-1 "))

        // Export round trip: the html parses back into the same bookmarks
        let exported = root.appendingPathComponent("export.html")
        let (exportStatus, _, _) = try await laptop.run(["export", "-o", exported.path])
        #expect(exportStatus == 0)
        let parsed = try NetscapeBookmarkFile.parse(try String(contentsOf: exported, encoding: .utf8))
        #expect(parsed.reduce(0) { $0 + $1.bookmarkCount } == 199)
        let (_, json, _) = try await laptop.run(["export", "--format", "json"])
        #expect(json.contains("\"isFolder\""))

        // sync --watch on the desk shows a change made on the laptop
        let watch = try desk.spawn(["sync", "--watch"])
        let watching = ContinuousClock.now + .seconds(30)
        while !watch.stdout.contains("Watching") && ContinuousClock.now < watching { try await Task.sleep(for: .milliseconds(50)) }
        try await Task.sleep(for: .seconds(1))
        try await laptop.run(["add", "https://watched.example", "--title", "Watched", "--folder", "toolbar"])
        let arrives = ContinuousClock.now + .seconds(20)
        while !watch.stdout.contains("Watched") && ContinuousClock.now < arrives { try await Task.sleep(for: .milliseconds(50)) }
        #expect(watch.stdout.contains("~ ") && watch.stdout.contains("Watched"), "\(watch.stdout) \(watch.stderr)")
        watch.process.interrupt()
        while watch.process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        #expect(watch.process.terminationStatus == 0)

        // An add made with the server down is queued and reaches the other device later
        await account.server.kill()
        let (offlineStatus, _, offlineErr) = try await laptop.run(["add", "https://offline.example", "--title", "Offline add"])
        #expect(offlineStatus == 0)
        #expect(offlineErr.contains("queued"))
        let (_, offlineList, _) = try await laptop.run(["ls", "other"])
        #expect(offlineList.contains("Offline add"))
        let (_, status, _) = try await laptop.run(["status"])
        #expect(status.contains("Queued:   1"))
        let restarted = try LiveServerProcess(dataDirectory: root.appendingPathComponent("server"), port: port)
        try await restarted.start()
        let (syncStatus, syncOut, _) = try await laptop.run(["sync"])
        #expect(syncStatus == 0)
        #expect(syncOut.contains("1 pushed"))
        let (_, deskOther, _) = try await desk.run(["ls", "other"])
        #expect(deskOther.contains("Offline add"))

        // Keys
        let (_, secret, _) = try await laptop.run(["keys", "create", "ci"])
        #expect(secret.hasPrefix("ck_"))
        let (_, keys, _) = try await laptop.run(["keys", "list"])
        #expect(keys.contains("ci"))
        // A third device logs in with the key, sees the tree; once the key is revoked it keeps
        // working offline and says why it cannot sync
        let script = CLIHome(root: root.appendingPathComponent("script"))
        let (keyLogin, _, keyErr) = try await script.run(["login", "--server", server, "--api-key-stdin"], stdin: secret)
        #expect(keyLogin == 0, "\(keyErr)")
        let (_, scriptTree, _) = try await script.run(["ls", "other"])
        #expect(scriptTree.contains("Offline add"))
        let keyId = try #require(keys.split(separator: " ").first.map(String.init))
        let (revokeStatus, _, _) = try await laptop.run(["keys", "revoke", keyId])
        #expect(revokeStatus == 0)
        let (addStatus, _, addErr) = try await script.run(["add", "https://after-revoke.example"])
        #expect(addStatus == 0)
        #expect(addErr.contains("refused the login"))
        _ = await restarted.terminate()
    }

    /// R8: the client process killed at its queue's crash points loses nothing and applies
    /// nothing twice.
    @Test(arguments: ["after-local-write", "before-push", "after-ack"])
    func aClientKilledInItsQueueLosesNothing(fault: String) async throws {
        let root = try makeScratchDirectory("cairn-cli")
        defer { try? FileManager.default.removeItem(at: root) }
        let account = try await LiveAccount.start(dataDirectory: root.appendingPathComponent("server"), email: "crash@example.com")
        let home = CLIHome(root: root.appendingPathComponent("device"))
        try await home.run(["login", "--server", account.base.absoluteString, "--email", "crash@example.com", "--password-stdin"], stdin: "password-123")
        let (status, _, _) = try await home.run(["add", "https://crash.example", "--title", "Crash"], extraEnvironment: ["CAIRN_CLIENT_FAULT": fault])
        #expect(status != 0)  // killed by SIGKILL
        let (_, queued, _) = try await home.run(["status"])
        #expect(queued.contains("Queued:   1"), "\(queued)")
        // The next sync pushes it; the server has it exactly once
        let (syncStatus, syncOut, syncErr) = try await home.run(["sync"])
        #expect(syncStatus == 0, "\(syncErr)")
        #expect(syncOut.contains("1 pushed"))
        let (_, after, _) = try await home.run(["status"])
        #expect(after.contains("Queued:   0"))
        let (_, body) = try await HTTP.send("GET", URL(string: account.base.absoluteString + "/api/bookmarks?format=flat")!, token: account.token)
        let crashes = (body["bookmarks"] as? [[String: Any]] ?? []).filter { $0["title"] as? String == "Crash" }
        #expect(crashes.count == 1)
        let (_, pull) = try await HTTP.send("GET", URL(string: account.base.absoluteString + "/api/sync/pull?since=0")!, token: account.token)
        #expect((pull["changes"] as? [Any])?.count == 5)  // the four roots and the bookmark, once
        _ = await account.server.terminate()
    }
}
