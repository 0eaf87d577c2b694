import ArgumentParser
import CairnClient
import CairnCore
import Foundation

/// Reads all of stdin, without the trailing newline.
private func readSecretFromStdin() throws -> String {
    let data = FileHandle.standardInput.readDataToEndOfFile()
    var text = String(decoding: data, as: UTF8.self)
    while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
    guard !text.isEmpty else { throw CLIError("nothing on stdin") }
    return text
}

private func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

private func shortId(_ id: String) -> String { Bookmark.isRoot(id) ? id : String(id.prefix(8)) }

struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login", abstract: "Sign in to a Cairn server (the password is never stored).")

    @Option(help: "The server, e.g. http://127.0.0.1:8080") var server: String
    @Option(help: "Your account's email (with --password-stdin).") var email: String?
    @Flag(name: .customLong("password-stdin"), help: "Read the password from stdin.") var passwordStdin = false
    @Flag(name: .customLong("api-key-stdin"), help: "Read an API key from stdin instead of signing in.") var apiKeyStdin = false
    @Option(help: "The profile to sync (default: default).") var profile: String = "default"

    func run() async throws {
        try await runClientCommand {
            guard let url = URL(string: self.server), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                throw CLIError("--server must be an http(s) URL, e.g. http://127.0.0.1:8080")
            }
            guard self.passwordStdin != self.apiKeyStdin else { throw CLIError("give exactly one of --password-stdin or --api-key-stdin") }
            let home = ClientHome()
            let store = FileCredentialStore(url: home.credentialsFile)
            var email = self.email
            var scoped: String?
            if self.passwordStdin {
                guard let account = self.email else { throw CLIError("--password-stdin needs --email") }
                let answer = try await CairnClient.login(server: url, email: account, password: try readSecretFromStdin())
                try store.save(StoredCredentials(refreshToken: answer.refreshToken, accessToken: answer.token))
                email = answer.user.email
            } else {
                let key = try readSecretFromStdin()
                let me = try await CairnClient.me(server: url, token: key)
                try store.save(StoredCredentials(apiKey: key))
                email = me.user.email
                scoped = me.scopedProfile
            }
            // A key scoped to one profile can only sync that one.
            let profile = scoped ?? self.profile
            let login = Login(server: url.absoluteString, profile: profile, email: email)
            try FileCredentialStore.writePrivately(try JSONEncoder().encode(login), to: home.loginFile)
            print("Logged in to \(url.absoluteString) as \(email ?? "?") (profile \(profile))")
        }
    }
}

struct AddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Add a bookmark (works offline).")

    @Argument(help: "The URL.") var url: String
    @Option(help: "The title (default: the URL).") var title: String?
    @Option(help: "The folder: an id, a root (toolbar, menu, other, mobile) or a path like toolbar/Dev.") var folder: String?
    @Option(name: .customLong("tag"), help: "A tag (repeatable).") var tags: [String] = []

    func run() async throws {
        try await runClientCommand {
            let session = try ClientSession.open()
            let parent = try await session.resolveFolder(self.folder ?? "other")
            let node = try await session.client.bookmarks.add(url: self.url, title: self.title, parentId: parent.id, tags: self.tags)
            print("Added \(shortId(node.id)) \(node.title) → \(parent.title)")
            await session.syncIfPossible()
        }
    }
}

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List a folder, or the whole tree.")

    @Argument(help: "The folder (default: all roots).") var folder: String?
    @Flag(help: "Show every level below.") var tree = false
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await runClientCommand {
            let session = try ClientSession.open()
            await session.syncIfPossible(timeout: .seconds(5), quiet: true)
            var nodes: [BookmarkNode]
            if let folder = self.folder {
                let parent = try await session.resolveFolder(folder)
                let whole = try await session.client.bookmarks.tree().flatMap(ClientSession.flatten)
                nodes = whole.first { $0.id == parent.id }?.children ?? []
            } else {
                nodes = try await session.client.bookmarks.tree()
            }
            if !self.tree && self.folder != nil { nodes = nodes.map { var node = $0; node.children = nil; return node } }
            if self.json {
                try printJSON(nodes)
                return
            }
            func show(_ node: BookmarkNode, depth: Int) {
                let indent = String(repeating: "  ", count: depth)
                let mark = node.pending ? " *" : ""
                if node.isFolder {
                    print("\(indent)\(shortId(node.id))  \(node.title)/\(mark)")
                } else {
                    print("\(indent)\(shortId(node.id))  \(node.title)  \(node.url ?? "")\(node.tags.isEmpty ? "" : "  #" + node.tags.joined(separator: " #"))\(mark)")
                }
                if self.tree {
                    for child in node.children ?? [] { show(child, depth: depth + 1) }
                }
            }
            for node in nodes { show(node, depth: 0) }
        }
    }
}

struct MoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mv", abstract: "Move a bookmark or folder (works offline).")

    @Argument(help: "The id (or a unique prefix, as ls shows it).") var id: String
    @Option(help: "The target folder.") var to: String
    @Option(help: "The position among the folder's children (0 = first; default: last).") var index: Int?

    func run() async throws {
        try await runClientCommand {
            let session = try ClientSession.open()
            let node = try await session.resolveBookmark(self.id)
            let target = try await session.resolveFolder(self.to)
            try await session.client.bookmarks.move(node.id, to: target.id, index: self.index)
            print("Moved \(shortId(node.id)) \(node.title) → \(target.title)")
            await session.syncIfPossible()
        }
    }
}

struct RemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Delete a bookmark, or a folder with its contents (works offline).")

    @Argument(help: "The id (or a unique prefix).") var id: String

    func run() async throws {
        try await runClientCommand {
            let session = try ClientSession.open()
            let node = try await session.resolveBookmark(self.id)
            try await session.client.bookmarks.delete(node.id)
            print("Deleted \(shortId(node.id)) \(node.title)")
            await session.syncIfPossible()
        }
    }
}

struct SearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "search", abstract: "Search titles, URLs, tags and notes.")

    @Argument(help: "Words to find (all must match).") var query: [String]
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await runClientCommand {
            let session = try ClientSession.open()
            await session.syncIfPossible(timeout: .seconds(5), quiet: true)
            let results = try await session.client.bookmarks.search(self.query.joined(separator: " "))
            if self.json { return try printJSON(results) }
            for node in results { print("\(shortId(node.id))  \(node.title)  \(node.url ?? "")") }
            if results.isEmpty { FileHandle.standardError.write(Data("no matches\n".utf8)) }
        }
    }
}

struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync", abstract: "Push queued changes and pull new ones; with --watch, keep syncing and print remote changes.")

    @Flag(help: "Keep running: sync in real time and print changes from other devices until interrupted.") var watch = false

    func run() async throws {
        try await runClientCommand {
            let session = try ClientSession.open(useWebSocket: self.watch)
            guard self.watch else {
                let report = try await session.client.forceSync()
                print("Synced: \(report.pushed) pushed, \(report.pulled) pulled\(report.conflicts > 0 ? ", \(report.conflicts) conflicts" : "")")
                return
            }
            let changes = session.client.changes()
            try await session.client.start()
            FileHandle.standardOutput.write(Data("Watching \(session.login.server) (profile \(session.login.profile)); Ctrl-C to stop\n".utf8))
            let signals = SignalWatcher()
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await event in changes where event.origin == .remote && event.collection == "bookmarks" {
                        let title = event.record?.data["title"]?.stringValue ?? event.id
                        let url = event.record?.data["url"]?.stringValue.map { " \($0)" } ?? ""
                        let line = event.record?.deleted == true ? "- \(shortId(event.id)) \(title)" : "~ \(shortId(event.id)) \(title)\(url)"
                        FileHandle.standardOutput.write(Data((line + "\n").utf8))
                    }
                }
                await signals.wait()
                group.cancelAll()
            }
            await session.client.stop()
            print("Stopped")
        }
    }
}

/// Waits for SIGINT or SIGTERM.
final class SignalWatcher: Sendable {
    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let once = OnceFlag()
            var sources: [any DispatchSourceSignal] = []
            for number in [SIGINT, SIGTERM] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { if once.take() { continuation.resume() } }
                source.resume()
                sources.append(source)
            }
            SignalWatcher.keep(sources)
        }
    }

    nonisolated(unsafe) private static var retained: [any DispatchSourceSignal] = []
    private static func keep(_ sources: [any DispatchSourceSignal]) { retained = sources }
}

final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    func take() -> Bool {
        self.lock.lock()
        defer { self.lock.unlock() }
        if self.done { return false }
        self.done = true
        return true
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show the login, the queue and the last sync.")

    func run() async throws {
        try await runClientCommand {
            let session = try ClientSession.open()
            let client = session.client
            print("Server:   \(session.login.server)")
            print("Account:  \(session.login.email ?? "(API key)")")
            print("Profile:  \(session.login.profile)")
            print("Device:   \(client.clientId)")
            print("Replica:  \(session.home.replicaFile.path)")
            print("Queued:   \(try await client.pendingCount()) change(s)")
            print("Cursor:   \(try await client.cursor())")
            let stats = client.currentStats
            if let last = stats.lastSyncAt {
                print("Last sync: \(Date(timeIntervalSince1970: Double(last) / 1000)) (pushed \(stats.pushCount), pulled \(stats.pullCount), conflicts \(stats.conflictCount))")
            } else {
                print("Last sync: never")
            }
            do {
                let status = try await client.serverStatus()
                print("Online:   yes (server sequence \(status["syncVersion"]?.intValue ?? 0))")
            } catch {
                print("Online:   no (\(error))")
            }
        }
    }
}

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "import", abstract: "Import a browser bookmark file (Netscape HTML).")

    @Argument(help: "The exported .html file.") var file: String
    @Option(help: "Put everything into this folder instead of mapping the browser's roots.") var folder: String?

    func run() async throws {
        try await runClientCommand {
            let session = try ClientSession.open()
            guard let data = FileManager.default.contents(atPath: self.file) else { throw CLIError("cannot read \(self.file)") }
            let nodes = try NetscapeBookmarkFile.parse(String(decoding: data, as: UTF8.self))
            let target = try await self.folder.asyncMap { try await session.resolveFolder($0).id }
            let bar = ProgressBar(label: "Importing")
            let count = try await session.client.bookmarks.importTree(nodes, into: target) { done, total in bar.update(done, total) }
            print("Imported \(count) bookmarks and folders")
            let pushBar = ProgressBar(label: "Syncing")
            let pending = try await session.client.pendingCount()
            let progress = Task {
                while !Task.isCancelled {
                    let left = (try? await session.client.pendingCount()) ?? 0
                    pushBar.update(pending - left, pending)
                    if left == 0 { return }
                    try? await Task.sleep(for: .milliseconds(200))
                }
            }
            await session.syncIfPossible(timeout: .seconds(600))
            progress.cancel()
        }
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Export the bookmark tree (html for browsers, or json).")

    @Option(help: "html or json.") var format: String = "html"
    @Option(name: [.customShort("o"), .long], help: "Write to this file instead of stdout.") var output: String?

    func run() async throws {
        try await runClientCommand {
            guard ["html", "json"].contains(self.format) else { throw CLIError("--format must be html or json") }
            let session = try ClientSession.open()
            await session.syncIfPossible(timeout: .seconds(5), quiet: true)
            let text: String
            if self.format == "html" {
                text = NetscapeBookmarkFile.render(try await session.client.bookmarks.exportTree())
            } else {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                text = String(decoding: try encoder.encode(try await session.client.bookmarks.tree()), as: UTF8.self) + "\n"
            }
            if let output = self.output {
                try Data(text.utf8).write(to: URL(fileURLWithPath: output))
                FileHandle.standardError.write(Data("Exported to \(output)\n".utf8))
            } else {
                print(text, terminator: "")
            }
        }
    }
}

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Manage API keys.", subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Create an API key (its secret is shown once).")
        @Argument(help: "A name for the key.") var name: String
        @Option(help: "Limit the key to one profile.") var profile: String?

        func run() async throws {
            try await runClientCommand {
                let created = try await ClientSession.open().client.createAPIKey(name: self.name, profile: self.profile)
                print(created.secret)
                FileHandle.standardError.write(Data("Created key \(created.key.id) (\(created.key.name)); the secret above is shown only once\n".utf8))
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List API keys.")
        func run() async throws {
            try await runClientCommand {
                for key in try await ClientSession.open().client.apiKeys() {
                    print("\(key.id)  \(key.name)  \(key.prefix)…\(key.profileId.map { "  profile \($0)" } ?? "")")
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke an API key.")
        @Argument(help: "The key's id.") var id: String
        func run() async throws {
            try await runClientCommand {
                try await ClientSession.open().client.revokeAPIKey(id: self.id)
                print("Revoked \(self.id)")
            }
        }
    }
}
