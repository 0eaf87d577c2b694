import CairnCore
import Foundation
import Testing

@testable import CairnClient
@testable import CairnServer

/// A small deterministic random generator (SplitMix64): a seed replays the same run.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &self) < percent }
}

/// A simulation failure: the seed, what broke, and the trace that led there.
struct SimulationFailure: Error, CustomStringConvertible {
    let seed: UInt64
    let message: String
    let trace: [String]

    var description: String {
        """
        convergence simulation failed for seed \(seed): \(message)
        replay: CAIRN_SIM_SEED=\(seed) swift test --filter ConvergenceSimulationTests
        trace (last 60 steps):
        \(trace.suffix(60).joined(separator: "\n"))
        """
    }
}

/// R1: several SDK clients (the real replica, outbox and rebase code) and the real engine on
/// SQLite, with the network between them simulated from a seed: dropped requests, lost answers
/// (the client crashes or times out after the server applied a push), duplicated deliveries, old
/// pushes replayed late, offline windows, client restarts from their replica file and server
/// restarts. After quiescence every replica must equal the server, every op must have been
/// applied exactly once, and the tree must be valid.
struct ConvergenceSimulation {
    let seed: UInt64
    let clientCount: Int
    let opsPerClient: Int
    let directory: URL

    private final class SimClient {
        let name: String
        let replica: URL
        var client: CairnClient
        var offlineFor = 0
        var cursorBehind = false

        init(name: String, replica: URL, client: CairnClient) {
            self.name = name
            self.replica = replica
            self.client = client
        }
    }

    static func openClient(name: String, replica: URL) throws -> CairnClient {
        var configuration = ClientConfiguration(
            serverURL: URL(string: "http://simulated.invalid")!, credentials: .apiKey("simulated"), replicaPath: replica)
        configuration.clientId = name
        configuration.useWebSocket = false
        return try CairnClient(configuration: configuration)
    }

    func run() async throws {
        var random = SeededRandom(state: self.seed)
        var trace: [String] = []
        func fail(_ message: String) -> SimulationFailure { SimulationFailure(seed: self.seed, message: message, trace: trace) }

        var configuration = ServerConfiguration()
        configuration.dataDirectory = self.directory.appendingPathComponent("server")
        configuration.bcryptCost = 4
        configuration.logLevel = .critical
        var server = try await makeServer(configuration: configuration)
        let account = try await server.auth.register(CairnCore.Credentials(email: "sim@example.com", password: "password-123"), ip: nil)
        guard let profile = try await server.store.profile(userId: account.user.id, idOrName: "default") else { throw fail("no profile") }

        var clients: [SimClient] = []
        for index in 0..<self.clientCount {
            let replica = self.directory.appendingPathComponent("client\(index).sqlite")
            clients.append(SimClient(name: "c\(index)", replica: replica, client: try Self.openClient(name: "c\(index)", replica: replica)))
        }
        // Every op any client ever queued, to prove at the end that each was applied exactly once.
        var allOps: [String: SyncOperation] = [:]
        // Pushes whose delivery is held back, replayed later (reordered / duplicated messages).
        var delayed: [(String, [SyncOperation])] = []

        func push(_ sim: SimClient, faults: Bool) async throws {
            let batch = try await sim.client.replica.pending(limit: 1 + Int.random(in: 0..<40, using: &random), collections: nil)
            guard !batch.isEmpty else { return }
            let ops = batch.map(\.op)
            for op in ops { allOps[op.opId] = op }
            if faults && random.chance(8) {
                trace.append("\(sim.name) push \(ops.count) ops: request lost")
                return
            }
            let outcome = try await server.engine.push(PushRequest(profileId: profile.id, clientId: sim.name, operations: ops))
            if faults && random.chance(5) { delayed.append((sim.name, ops)) }
            if faults && random.chance(10) {
                trace.append("\(sim.name) push \(ops.count) ops: applied, answer lost")
                return
            }
            trace.append("\(sim.name) push \(ops.count) ops: \(outcome.results.map(\.status.rawValue).joined(separator: ","))")
            _ = try await sim.client.replica.applyPushResults(ops, outcome.results)
        }

        func pull(_ sim: SimClient, faults: Bool) async throws {
            var cursor = try await sim.client.cursor()
            for _ in 0..<1000 {
                let page = try await server.engine.pull(profileId: profile.id, since: cursor, collections: nil, limit: 1 + Int.random(in: 0..<60, using: &random))
                if faults && random.chance(8) {
                    trace.append("\(sim.name) pull since \(cursor): answer lost")
                    return
                }
                _ = try await sim.client.replica.applyPull(page.changes, cursor: page.cursor)
                trace.append("\(sim.name) pull since \(cursor): \(page.changes.count) changes → \(page.cursor)")
                if !page.hasMore { return }
                cursor = page.cursor
            }
        }

        func localEdit(_ sim: SimClient) async throws {
            let marks = sim.client.bookmarks
            let live = try await sim.client.replica.records("bookmarks").map(BookmarkNode.init)
            let folders = live.filter(\.isFolder)
            let nonRoots = live.filter { !Bookmark.isRoot($0.id) }
            let notes = try await sim.client.replica.records("notes")
            func pick<T>(_ list: [T]) -> T? { list.isEmpty ? nil : list[Int.random(in: 0..<list.count, using: &random)] }
            let roll = Int.random(in: 0..<100, using: &random)
            do {
                switch roll {
                case 0..<18:
                    let parent = pick(folders)?.id ?? "other"
                    let node = try await marks.add(url: "https://site.example/\(random.next() % 100_000)", title: "b\(random.next() % 1000)", parentId: parent, index: Int.random(in: 0..<4, using: &random))
                    trace.append("\(sim.name) add \(node.id.prefix(6)) in \(parent.prefix(6))")
                case 18..<26:
                    let parent = pick(folders)?.id ?? "other"
                    let node = try await marks.addFolder(title: "f\(random.next() % 1000)", parentId: parent)
                    trace.append("\(sim.name) folder \(node.id.prefix(6)) in \(parent.prefix(6))")
                case 26..<44:
                    guard let node = pick(nonRoots) else { return }
                    if node.isFolder {
                        try await marks.update(node.id, title: "t\(random.next() % 1000)")
                    } else {
                        try await marks.update(node.id, title: "t\(random.next() % 1000)", tags: random.chance(50) ? ["x"] : nil)
                    }
                    trace.append("\(sim.name) rename \(node.id.prefix(6))")
                case 44..<62:
                    guard let node = pick(nonRoots), let folder = pick(folders) else { return }
                    try await marks.move(node.id, to: folder.id, index: Int.random(in: 0..<5, using: &random))
                    trace.append("\(sim.name) move \(node.id.prefix(6)) → \(folder.id.prefix(6))")
                case 62..<70:
                    guard let node = pick(nonRoots) else { return }
                    try await marks.delete(node.id)
                    trace.append("\(sim.name) delete \(node.id.prefix(6))")
                case 70..<82:
                    let id = "n\(Int.random(in: 0..<30, using: &random))"
                    try await sim.client.collection("notes").put(id, ["text": .string("v\(random.next() % 1000)"), "by": .string(sim.name)])
                    trace.append("\(sim.name) put \(id)")
                case 82..<94:
                    guard let note = pick(notes) else { return }
                    try await sim.client.collection("notes").patch(note.id, [random.chance(50) ? "text" : "extra": .string("p\(random.next() % 1000)")])
                    trace.append("\(sim.name) patch \(note.id)")
                default:
                    guard let note = pick(notes) else { return }
                    try await sim.client.collection("notes").delete(note.id)
                    trace.append("\(sim.name) delete \(note.id)")
                }
            } catch let error as CairnClientError {
                // A local refusal (a move into itself, a parent deleted meanwhile): nothing queued.
                trace.append("\(sim.name) local refusal: \(error)")
            }
        }

        // The run: each step one client does one thing.
        let steps = self.clientCount * self.opsPerClient
        var edits = 0
        var step = 0
        while edits < steps {
            step += 1
            let sim = clients[Int.random(in: 0..<clients.count, using: &random)]
            let roll = Int.random(in: 0..<100, using: &random)
            if roll < 60 {
                try await localEdit(sim)
                edits += 1
            } else if roll < 90 {
                if sim.offlineFor > 0 {
                    sim.offlineFor -= 1
                    continue
                }
                if random.chance(50) { try await push(sim, faults: true) } else { try await pull(sim, faults: true) }
            } else if roll < 94 {
                sim.offlineFor = Int.random(in: 1...20, using: &random)
                trace.append("\(sim.name) offline for \(sim.offlineFor)")
            } else if roll < 97 {
                // The client process dies and restarts from its replica file.
                sim.client = try Self.openClient(name: sim.name, replica: sim.replica)
                trace.append("\(sim.name) restarted")
            } else if roll < 98 {
                // The server restarts: in-memory state (clock, limiters, tickets) is gone.
                server = try await makeServer(configuration: configuration)
                trace.append("server restarted")
            } else if let (name, ops) = delayed.popLast() {
                // An old push delivered again, late: every op must come back as a duplicate.
                let outcome = try await server.engine.push(PushRequest(profileId: profile.id, clientId: name, operations: ops))
                if let bad = outcome.results.first(where: { $0.status != .duplicate }) {
                    throw fail("a replayed push applied again: \(bad)")
                }
                trace.append("replayed a push of \(name): all duplicate")
            }
        }

        // Quiescence: everyone online, no faults, until nothing moves.
        for round in 0..<20 {
            var pending = 0
            for sim in clients {
                while try await sim.client.replica.pendingCount() > 0 { try await push(sim, faults: false) }
                try await pull(sim, faults: false)
                pending += try await sim.client.replica.pendingCount()
            }
            let head = try await server.engine.sequence(profileId: profile.id)
            var allCaughtUp = pending == 0
            for sim in clients where try await sim.client.cursor() != head { allCaughtUp = false }
            if allCaughtUp { break }
            if round == 19 { throw fail("no quiescence after 20 rounds") }
        }

        // 1. Every op queued by anyone was applied exactly once: replaying all of them changes
        //    nothing and answers duplicate for each.
        let before = try await server.engine.sequence(profileId: profile.id)
        let everyOp = Array(allOps.values)
        for start in stride(from: 0, to: everyOp.count, by: 500) {
            let slice = Array(everyOp[start..<min(start + 500, everyOp.count)])
            let outcome = try await server.engine.push(PushRequest(profileId: profile.id, clientId: "audit", operations: slice))
            if let bad = outcome.results.first(where: { $0.status != .duplicate }) { throw fail("an op was not applied exactly once: \(bad)") }
        }
        let after = try await server.engine.sequence(profileId: profile.id)
        if before != after { throw fail("the audit replay moved the sequence \(before) → \(after)") }

        // 2. Every replica equals the server, record by record (state, fields, version).
        var serverRecords: [String: RecordChange] = [:]
        var cursor: Int64 = 0
        while true {
            let page = try await server.engine.pull(profileId: profile.id, since: cursor, collections: nil, limit: 5000)
            for change in page.changes { serverRecords["\(change.collection)/\(change.id)"] = change }
            if !page.hasMore { break }
            cursor = page.cursor
        }
        func comparable(_ collection: String, _ data: [String: JSONValue]) -> [String: JSONValue] {
            guard collection == "bookmarks" else { return data }
            return data.filter { ["title", "url", "parentId", "position", "isFolder", "tags", "isDeleted"].contains($0.key) }
        }
        for sim in clients {
            for collection in ["bookmarks", "notes"] {
                let local = try await sim.client.replica.records(collection, includeDeleted: true)
                let serverSide = serverRecords.values.filter { $0.collection == collection }
                if local.count != serverSide.count {
                    throw fail("\(sim.name) has \(local.count) \(collection), the server \(serverSide.count)")
                }
                for record in local {
                    guard let remote = serverRecords["\(collection)/\(record.id)"] else { throw fail("\(sim.name) has \(record.id) the server lacks") }
                    if remote.deleted != record.deleted || remote.version != record.version || record.pending {
                        throw fail("\(sim.name) \(collection)/\(record.id): deleted \(record.deleted)/\(remote.deleted), version \(record.version)/\(remote.version)")
                    }
                    if !remote.deleted && comparable(collection, record.data) != comparable(collection, remote.data.objectValue ?? [:]) {
                        throw fail("\(sim.name) \(collection)/\(record.id) differs: \(record.data) vs \(remote.data)")
                    }
                }
            }
        }

        // 3. The server's tree is valid: every live node's parent is null or a live folder, no
        //    cycle, and each replica orders siblings the same way.
        let live = serverRecords.values.filter { $0.collection == "bookmarks" && !$0.deleted }
        let byId = Dictionary(uniqueKeysWithValues: live.map { ($0.id, $0.data) })
        for (id, data) in byId {
            var current = data["parentId"]?.stringValue
            var seen: Set<String> = [id]
            while let parent = current {
                guard let parentData = byId[parent], parentData["isFolder"]?.boolValue == true else {
                    throw fail("bookmark \(id) has a parent \(parent) that is not a live folder")
                }
                if !seen.insert(parent).inserted { throw fail("cycle through \(parent)") }
                current = parentData["parentId"]?.stringValue
            }
        }
        let outlines = try await clients.asyncMap { try await $0.client.bookmarks.tree().flatMap(Self.outline) }
        if Set(outlines.map { $0.joined(separator: "\n") }).count != 1 { throw fail("replicas order the tree differently") }
        if outlines.first?.count != live.count { throw fail("the tree shows \(outlines.first?.count ?? 0) nodes of \(live.count) live") }
    }

    static func outline(_ node: BookmarkNode) -> [String] {
        ["\(node.parentId ?? "-")/\(node.id)"] + (node.children ?? []).flatMap(outline)
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}

@Suite("R1 convergence simulation", .timeLimit(.minutes(20)))
struct ConvergenceSimulationTests {
    /// The CI size by default (12 seeds × 6 clients × 150 edits each); `CAIRN_SIM_SEEDS`,
    /// `CAIRN_SIM_CLIENTS`, `CAIRN_SIM_OPS` change it (the release size is 300 × 6 × 500, see
    /// docs/testing.md) and `CAIRN_SIM_SEED` replays one seed.
    @Test func everyReplicaConvergesAndEveryOpAppliesOnce() async throws {
        let environment = ProcessInfo.processInfo.environment
        let seeds: [UInt64] = environment["CAIRN_SIM_SEED"].flatMap(UInt64.init).map { [$0] }
            ?? (1...UInt64(environment["CAIRN_SIM_SEEDS"].flatMap(Int.init) ?? 12)).map { $0 }
        let clients = environment["CAIRN_SIM_CLIENTS"].flatMap(Int.init) ?? 6
        let ops = environment["CAIRN_SIM_OPS"].flatMap(Int.init) ?? 150
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? URL(fileURLWithPath: "/dev/shm") : FileManager.default.temporaryDirectory
        for seed in seeds {
            let directory = base.appendingPathComponent("cairn-sim-\(seed)-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            do {
                try await ConvergenceSimulation(seed: seed, clientCount: clients, opsPerClient: ops, directory: directory).run()
            } catch let failure as SimulationFailure {
                Issue.record("\(failure)")
                return
            }
        }
    }
}
