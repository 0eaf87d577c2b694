import CairnCore
import CairnTestFixtures
import Foundation
import Synchronization
import Testing

@testable import CairnClient
@testable import CairnServer

/// One step of a run: which client does what. Every random choice inside the step (what to
/// edit, which faults hit it) comes from the step's own `seed` and picks by index among what
/// exists at that moment, so a step means the same kind of thing wherever it stands in a trace:
/// removing steps (shrinking a failure) leaves the others intact.
struct SimStep: Sendable, Equatable, CustomStringConvertible {
    enum Kind: String, Sendable, CaseIterable {
        case edit = "e", push = "p", pull = "l", offline = "o", restart = "r", serverRestart = "s", replay = "d"
    }

    var kind: Kind
    var client: Int
    var seed: UInt64

    /// `e3.9f2c…`: the form `CAIRN_SIM_TRACE` reads back.
    var description: String { "\(self.kind.rawValue)\(self.client).\(String(self.seed, radix: 16))" }

    init(kind: Kind, client: Int, seed: UInt64) {
        self.kind = kind
        self.client = client
        self.seed = seed
    }

    init?(_ text: Substring) {
        let parts = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".")
        guard parts.count == 2, let first = parts[0].first, let kind = Kind(rawValue: String(first)),
            let client = Int(parts[0].dropFirst()), let seed = UInt64(parts[1], radix: 16)
        else { return nil }
        self.init(kind: kind, client: client, seed: seed)
    }

    /// The steps of a seed: `clients × opsPerClient` local edits, with syncs, faults and restarts
    /// between them.
    static func plan(seed: UInt64, clients: Int, opsPerClient: Int) -> [SimStep] {
        var random = SeededRandom(state: seed)
        var steps: [SimStep] = []
        var edits = 0
        while edits < clients * opsPerClient {
            let client = Int.random(in: 0..<clients, using: &random)
            let kind: Kind
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<60:
                kind = .edit
                edits += 1
            case 60..<75: kind = .push
            case 75..<90: kind = .pull
            case 90..<94: kind = .offline
            case 94..<97: kind = .restart
            case 97..<98: kind = .serverRestart
            default: kind = .replay
            }
            steps.append(SimStep(kind: kind, client: client, seed: random.next()))
        }
        return steps
    }

    static func parse(trace: String) -> [SimStep]? {
        let steps = trace.split(whereSeparator: { $0 == "," || $0.isWhitespace }).filter { !$0.isEmpty }.map(SimStep.init)
        return steps.contains(where: { $0 == nil }) ? nil : steps.compactMap { $0 }
    }
}

/// A simulation failure: which invariant broke, how, and the steps that led there.
struct SimulationFailure: Error, CustomStringConvertible {
    /// The invariant (shrinking keeps a trace only while the same one fails).
    let check: String
    let message: String
    let log: [String]

    var description: String { "[\(self.check)] \(self.message)" }
}

/// The final state of the server, record by record, in a canonical text form (S9 compares two).
typealias ServerSnapshot = [String: String]

/// R1: several SDK clients (the real replica, outbox, rebase and bookmark code) and the real
/// engine on SQLite, with the network between them simulated from a seed: dropped requests, lost
/// answers (the client crashes or times out after the server applied a push), duplicated
/// deliveries, old pushes replayed late, offline windows, client restarts from their replica file
/// and server restarts. Every clock is virtual (the server's `ManualClock`, each client's wall
/// clock that plus its skew) and every id is deterministic, so a trace replays exactly.
/// After quiescence every replica must equal the server, every op must have been applied exactly
/// once, no version may have gone backwards, and the tree must be valid.
struct ConvergenceSimulation {
    let clientCount: Int
    let steps: [SimStep]
    /// Each client's clock skew in ms (S9).
    var skews: [Int64] = []
    /// Whether clients learn the server's time from its answers (the `Date` header); off only to
    /// show that S9 fails without it.
    var clockCorrection = true
    /// `CAIRN_SIM_PLANT_BUG=lost-page`: a planted SDK bug (a pulled page's cursor kept, its
    /// changes dropped, now and then), to see a failure being caught, shrunk and replayed.
    static let plantedBug = ProcessInfo.processInfo.environment["CAIRN_SIM_PLANT_BUG"]
    let directory: URL

    /// A counter for deterministic ids, kept across restarts of a client.
    final class Counter: Sendable {
        private let value = Mutex(0)
        func next() -> Int { self.value.withLock { $0 += 1; return $0 } }
    }

    private final class SimClient {
        let index: Int
        let name: String
        let replica: URL
        let ids = Counter()
        let skew: Int64
        var client: CairnClient?
        var offlineFor = 0
        /// The newest server version this client's replica knew of each record.
        var known: [String: Int64] = [:]

        init(index: Int, replica: URL, skew: Int64) {
            self.index = index
            self.name = "c\(index)"
            self.replica = replica
            self.skew = skew
        }
    }

    private static let start = Date(timeIntervalSince1970: 1_790_000_000)

    private static func openClient(_ sim: SimClient, time: ManualClock) throws -> CairnClient {
        var configuration = ClientConfiguration(
            serverURL: URL(string: "http://simulated.invalid")!, credentials: .apiKey("simulated"), replicaPath: sim.replica)
        configuration.clientId = sim.name
        configuration.useWebSocket = false
        let clock = time.clock
        let skew = sim.skew
        configuration.wallClock = { clock.nowMilliseconds + skew }
        let ids = sim.ids
        let name = sim.name
        configuration.makeIdentifier = { "\(name)-\(ids.next())" }
        return try CairnClient(configuration: configuration)
    }

    /// Runs the steps, then quiescence and the checks; returns the server's final state.
    func run() async throws -> ServerSnapshot {
        var log: [String] = []
        func fail(_ check: String, _ message: String) -> SimulationFailure { SimulationFailure(check: check, message: message, log: log) }

        let time = ManualClock(start: Self.start)
        var configuration = ServerConfiguration()
        configuration.dataDirectory = self.directory.appendingPathComponent("server")
        configuration.bcryptCost = 4
        configuration.logLevel = .critical
        configuration.clock = time.clock
        var server = try await makeServer(configuration: configuration)
        let account = try await server.auth.register(CairnCore.Credentials(email: "sim@example.com", password: "password-123"), ip: nil)
        guard let profile = try await server.store.profile(userId: account.user.id, idOrName: "default") else { throw fail("setup", "no profile") }

        /// The server's `Date` header: its clock in whole seconds.
        func dateHeader() -> Int64 { time.clock.nowSeconds * 1000 }

        var clients: [SimClient] = []
        for index in 0..<self.clientCount {
            let sim = SimClient(
                index: index, replica: self.directory.appendingPathComponent("client\(index).sqlite"),
                skew: index < self.skews.count ? self.skews[index] : 0)
            let client = try Self.openClient(sim, time: time)
            // The device signs in before it syncs: the first answer tells it the server's time.
            if self.clockCorrection {
                client.clock.observeServerDate(dateHeader())
                try await client.persistClockOffset()
            }
            sim.client = client
            clients.append(sim)
        }
        // Every op any client ever queued, to prove at the end that each was applied exactly once.
        var allOps: [String: SyncOperation] = [:]
        // Pushes whose delivery is held back, replayed later (reordered / duplicated messages).
        var delayed: [(String, [SyncOperation])] = []
        // The newest version the server ever stated for each record (push answers, pulls).
        var stated: [String: Int64] = [:]

        /// No stale-version overwrite: a replica never goes back to an older server state of a
        /// record than one it already had, and the server never serves a version older than one
        /// it already stated.
        func checkVersions(_ sim: SimClient, _ keys: [(collection: String, id: String)]) async throws {
            let versions = try await sim.client!.replica.knownVersions(keys)
            for (key, version) in zip(keys, versions) {
                let name = "\(key.collection)/\(key.id)"
                if version < sim.known[name, default: 0] {
                    throw fail("stale-version", "\(sim.name)'s replica took \(name) back from version \(sim.known[name, default: 0]) to \(version)")
                }
                sim.known[name] = version
            }
        }
        func noteStated(_ collection: String, _ id: String, _ version: Int64?, pulled: Bool) throws {
            guard let version else { return }
            let name = "\(collection)/\(id)"
            if pulled, version < stated[name, default: 0] {
                throw fail("stale-version", "the server served \(name) at version \(version) after stating \(stated[name, default: 0])")
            }
            stated[name] = max(version, stated[name, default: 0])
        }

        func push(_ sim: SimClient, _ random: inout SeededRandom, faults: Bool) async throws {
            let client = sim.client!
            let batch = try await client.replica.pending(limit: faults ? 1 + Int.random(in: 0..<40, using: &random) : 200, collections: nil)
            guard !batch.isEmpty else { return }
            let ops = batch.map(\.op)
            for op in ops { allOps[op.opId] = op }
            if faults && random.chance(8) {
                log.append("\(sim.name) push \(ops.count) ops: request lost")
                return
            }
            let outcome = try await server.engine.push(PushRequest(profileId: profile.id, clientId: sim.name, operations: ops))
            if faults && random.chance(5) { delayed.append((sim.name, ops)) }
            if faults && random.chance(10) {
                log.append("\(sim.name) push \(ops.count) ops: applied, answer lost")
                return
            }
            for result in outcome.results where result.status == .applied || result.status == .merged {
                if let id = result.id { try noteStated(result.collection, id, result.version, pulled: false) }
            }
            log.append("\(sim.name) push \(ops.count) ops: \(outcome.results.map(\.status.rawValue).joined(separator: ","))")
            if self.clockCorrection { client.clock.observeServerDate(dateHeader()) }
            _ = try await client.replica.applyPushResults(ops, outcome.results)
            try await checkVersions(sim, ops.compactMap { op in op.id.map { (op.collection, $0) } })
        }

        func pull(_ sim: SimClient, _ random: inout SeededRandom, faults: Bool) async throws {
            let client = sim.client!
            var cursor = try await client.cursor()
            for _ in 0..<10_000 {
                let limit = faults ? 1 + Int.random(in: 0..<60, using: &random) : 1000
                let page = try await server.engine.pull(profileId: profile.id, since: cursor, collections: nil, limit: limit)
                if faults && random.chance(8) {
                    log.append("\(sim.name) pull since \(cursor): answer lost")
                    return
                }
                for change in page.changes { try noteStated(change.collection, change.id, change.version, pulled: true) }
                if self.clockCorrection { client.clock.observeServerDate(dateHeader()) }
                if Self.plantedBug == "lost-page", faults, !page.changes.isEmpty, random.chance(3) {
                    _ = try await client.replica.applyPull([], cursor: page.cursor)
                    log.append("\(sim.name) pull since \(cursor): \(page.changes.count) changes DROPPED (planted bug) → \(page.cursor)")
                    if !page.hasMore { return }
                    cursor = page.cursor
                    continue
                }
                _ = try await client.applyPulledPage(page)
                try await checkVersions(sim, page.changes.map { ($0.collection, $0.id) })
                log.append("\(sim.name) pull since \(cursor): \(page.changes.count) changes → \(page.cursor)")
                if !page.hasMore { return }
                cursor = page.cursor
            }
        }

        func localEdit(_ sim: SimClient, _ random: inout SeededRandom) async throws {
            let client = sim.client!
            let marks = client.bookmarks
            let replica = client.replica
            // Picks by index among what exists now (SQLite seeks; nothing is decoded).
            func pickFolder() async throws -> String? { try await replica.pickLive("bookmarks", foldersOnly: true, index: random.next()) }
            func pickNode() async throws -> String? {
                let id = try await replica.pickLive("bookmarks", index: random.next())
                return id.map(Bookmark.isRoot) == true ? nil : id
            }
            func pickNote() async throws -> String? { try await replica.pickLive("notes", index: random.next()) }
            let roll = Int.random(in: 0..<100, using: &random)
            do {
                switch roll {
                case 0..<18:
                    let parent = try await pickFolder() ?? "other"
                    let node = try await marks.add(
                        url: "https://site.example/\(random.next() % 100_000)", title: "b\(random.next() % 1000)", parentId: parent,
                        index: Int.random(in: 0..<4, using: &random))
                    log.append("\(sim.name) add \(node.id) in \(parent)")
                case 18..<26:
                    let parent = try await pickFolder() ?? "other"
                    let node = try await marks.addFolder(title: "f\(random.next() % 1000)", parentId: parent)
                    log.append("\(sim.name) folder \(node.id) in \(parent)")
                case 26..<44:
                    guard let id = try await pickNode() else { return }
                    if try await marks.get(id)?.isFolder == true {
                        try await marks.update(id, title: "t\(random.next() % 1000)")
                    } else {
                        try await marks.update(id, title: "t\(random.next() % 1000)", tags: random.chance(50) ? ["x"] : nil)
                    }
                    log.append("\(sim.name) rename \(id)")
                case 44..<62:
                    guard let id = try await pickNode(), let folder = try await pickFolder() else { return }
                    try await marks.move(id, to: folder, index: Int.random(in: 0..<5, using: &random))
                    log.append("\(sim.name) move \(id) → \(folder)")
                case 62..<70:
                    guard let id = try await pickNode() else { return }
                    try await marks.delete(id)
                    log.append("\(sim.name) delete \(id)")
                case 70..<82:
                    let id = "n\(Int.random(in: 0..<30, using: &random))"
                    try await client.collection("notes").put(id, ["text": .string("v\(random.next() % 1000)"), "by": .string(sim.name)])
                    log.append("\(sim.name) put \(id)")
                case 82..<94:
                    guard let id = try await pickNote() else { return }
                    try await client.collection("notes").patch(id, [random.chance(50) ? "text" : "extra": .string("p\(random.next() % 1000)")])
                    log.append("\(sim.name) patch \(id)")
                default:
                    guard let id = try await pickNote() else { return }
                    try await client.collection("notes").delete(id)
                    log.append("\(sim.name) delete \(id)")
                }
            } catch let error as CairnClientError {
                // A local refusal (a move into itself, a parent deleted meanwhile): nothing queued.
                log.append("\(sim.name) local refusal: \(error)")
            }
        }

        for step in self.steps {
            guard step.client < clients.count else { continue }
            var random = SeededRandom(state: step.seed)
            // Time moves on between steps (1 to 97 ms), the same for every clock.
            time.advance(by: Double(1 + step.seed % 97) / 1000)
            let sim = clients[step.client]
            switch step.kind {
            case .edit:
                try await localEdit(sim, &random)
            case .push, .pull:
                if sim.offlineFor > 0 {
                    sim.offlineFor -= 1
                    continue
                }
                if step.kind == .push { try await push(sim, &random, faults: true) } else { try await pull(sim, &random, faults: true) }
            case .offline:
                sim.offlineFor = Int.random(in: 1...20, using: &random)
                log.append("\(sim.name) offline for \(sim.offlineFor)")
            case .restart:
                // The client process dies and restarts from its replica file.
                sim.client = nil
                sim.client = try Self.openClient(sim, time: time)
                log.append("\(sim.name) restarted")
            case .serverRestart:
                // The server restarts: in-memory state (clock, limiters, tickets) is gone.
                server = try await makeServer(configuration: configuration)
                log.append("server restarted")
            case .replay:
                // An old push delivered again, late: every op must come back as a duplicate.
                guard let (name, ops) = delayed.popLast() else { continue }
                let outcome = try await server.engine.push(PushRequest(profileId: profile.id, clientId: name, operations: ops))
                if let bad = outcome.results.first(where: { $0.status != .duplicate }) {
                    throw fail("exactly-once", "a replayed push applied again: \(bad)")
                }
                log.append("replayed a push of \(name): all duplicate")
            }
        }

        // Quiescence: everyone online, no faults, until nothing moves.
        var quiet = SeededRandom(state: 0)
        for round in 0..<20 {
            var pending = 0
            for sim in clients {
                while try await sim.client!.replica.pendingCount() > 0 { try await push(sim, &quiet, faults: false) }
                try await pull(sim, &quiet, faults: false)
                pending += try await sim.client!.replica.pendingCount()
            }
            let head = try await server.engine.sequence(profileId: profile.id)
            var allCaughtUp = pending == 0
            for sim in clients where try await sim.client!.cursor() != head { allCaughtUp = false }
            if allCaughtUp { break }
            if round == 19 { throw fail("quiescence", "no quiescence after 20 rounds") }
        }

        // 1. Every op queued by anyone was applied exactly once (none acknowledged and lost, none
        //    twice): replaying all of them changes nothing and answers duplicate for each.
        let before = try await server.engine.sequence(profileId: profile.id)
        let everyOp = allOps.values.sorted { $0.opId < $1.opId }
        for start in stride(from: 0, to: everyOp.count, by: 500) {
            let slice = Array(everyOp[start..<min(start + 500, everyOp.count)])
            let outcome = try await server.engine.push(PushRequest(profileId: profile.id, clientId: "audit", operations: slice))
            if let bad = outcome.results.first(where: { $0.status != .duplicate }) { throw fail("exactly-once", "an op was not applied exactly once: \(bad)") }
        }
        let after = try await server.engine.sequence(profileId: profile.id)
        if before != after { throw fail("exactly-once", "the audit replay moved the sequence \(before) → \(after)") }

        // 2. Every replica equals the server, record by record (state, fields, version), and no
        //    record is older on the server than a version it once stated.
        var serverRecords: [String: RecordChange] = [:]
        var cursor: Int64 = 0
        while true {
            let page = try await server.engine.pull(profileId: profile.id, since: cursor, collections: nil, limit: 5000)
            for change in page.changes { serverRecords["\(change.collection)/\(change.id)"] = change }
            if !page.hasMore { break }
            cursor = page.cursor
        }
        for (name, version) in stated where (serverRecords[name]?.version ?? 0) < version {
            throw fail("stale-version", "\(name) is at version \(serverRecords[name]?.version ?? 0) on the server, which once stated \(version)")
        }
        func comparable(_ collection: String, _ data: [String: JSONValue]) -> [String: JSONValue] {
            guard collection == "bookmarks" else { return data }
            return data.filter { ["title", "url", "parentId", "position", "isFolder", "tags", "isDeleted"].contains($0.key) }
        }
        for sim in clients {
            for collection in ["bookmarks", "notes"] {
                // The four roots exist locally from the start (version 0); the server creates its own
                // with the first bookmark write, so a run without one has them only locally.
                let local = try await sim.client!.replica.records(collection, includeDeleted: true).filter { record in
                    !(collection == "bookmarks" && Bookmark.isRoot(record.id) && record.version == 0 && !record.pending
                        && serverRecords["bookmarks/\(record.id)"] == nil)
                }
                let serverSide = serverRecords.values.filter { $0.collection == collection }
                if local.count != serverSide.count {
                    throw fail("replica-equals-server", "\(sim.name) has \(local.count) \(collection), the server \(serverSide.count)")
                }
                for record in local {
                    guard let remote = serverRecords["\(collection)/\(record.id)"] else {
                        throw fail("replica-equals-server", "\(sim.name) has \(record.id) the server lacks")
                    }
                    if remote.deleted != record.deleted || remote.version != record.version || record.pending {
                        throw fail(
                            "replica-equals-server",
                            "\(sim.name) \(collection)/\(record.id): deleted \(record.deleted)/\(remote.deleted), version \(record.version)/\(remote.version)")
                    }
                    if !remote.deleted && comparable(collection, record.data) != comparable(collection, remote.data.objectValue ?? [:]) {
                        throw fail("replica-equals-server", "\(sim.name) \(collection)/\(record.id) differs: \(record.data) vs \(remote.data)")
                    }
                }
            }
        }

        // 3. The server's tree is valid: every live node's parent is null or a live folder (no
        //    orphan), no cycle, and each replica orders siblings the same way, without ties.
        let live = serverRecords.values.filter { $0.collection == "bookmarks" && !$0.deleted }
        let byId = Dictionary(uniqueKeysWithValues: live.map { ($0.id, $0.data) })
        for (id, data) in byId {
            var current = data["parentId"]?.stringValue
            var seen: Set<String> = [id]
            while let parent = current {
                guard let parentData = byId[parent], parentData["isFolder"]?.boolValue == true else {
                    throw fail("tree", "bookmark \(id) has a parent \(parent) that is not a live folder")
                }
                if !seen.insert(parent).inserted { throw fail("tree", "cycle through \(parent)") }
                current = parentData["parentId"]?.stringValue
            }
        }
        let outlines = try await clients.asyncMap { try await $0.client!.bookmarks.tree().flatMap(Self.outline) }
        if Set(outlines.map { $0.joined(separator: "\n") }).count != 1 { throw fail("tree", "replicas order the tree differently") }
        if outlines.first?.count != live.count { throw fail("tree", "the tree shows \(outlines.first?.count ?? 0) nodes of \(live.count) live") }

        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try serverRecords.mapValues { String(decoding: try encoder.encode($0), as: UTF8.self) }
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

/// Runs simulations in scratch directories, and shrinks failing traces.
enum SimulationRunner {
    static let base = FileManager.default.fileExists(atPath: "/dev/shm") ? URL(fileURLWithPath: "/dev/shm") : FileManager.default.temporaryDirectory

    /// Runs `steps`; a failure of an invariant comes back as a value, anything else throws.
    static func run(clients: Int, steps: [SimStep], skews: [Int64] = [], clockCorrection: Bool = true) async throws -> Result<ServerSnapshot, SimulationFailure> {
        let directory = Self.base.appendingPathComponent("cairn-sim-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        do {
            return .success(
                try await ConvergenceSimulation(clientCount: clients, steps: steps, skews: skews, clockCorrection: clockCorrection, directory: directory).run())
        } catch let failure as SimulationFailure {
            return .failure(failure)
        }
    }

    /// Delta debugging (ddmin) over the steps: drops chunks while the same invariant still fails,
    /// within `budget`. Returns the smallest failing trace found and its failure.
    static func shrink(
        clients: Int, steps: [SimStep], failure: SimulationFailure, budget: Duration
    ) async throws -> ([SimStep], SimulationFailure) {
        try await Self.shrink(steps: steps, failure: failure, budget: budget) { candidate in
            if case .failure(let found) = try await Self.run(clients: clients, steps: candidate) { return found }
            return nil
        }
    }

    /// ddmin with any test of a candidate trace (`nil`: it passes).
    static func shrink(
        steps: [SimStep], failure: SimulationFailure, budget: Duration, attempt: ([SimStep]) async throws -> SimulationFailure?
    ) async throws -> ([SimStep], SimulationFailure) {
        let deadline = ContinuousClock.now + budget
        var current = steps
        var currentFailure = failure
        var parts = 2
        while current.count >= 2 && ContinuousClock.now < deadline {
            let size = (current.count + parts - 1) / parts
            var reduced = false
            for start in stride(from: 0, to: current.count, by: size) where ContinuousClock.now < deadline {
                var candidate = current
                candidate.removeSubrange(start..<min(start + size, current.count))
                if let found = try await attempt(candidate), found.check == failure.check {
                    current = candidate
                    currentFailure = found
                    parts = max(parts - 1, 2)
                    reduced = true
                    break
                }
            }
            if !reduced {
                if size == 1 { break }
                parts = min(parts * 2, current.count)
            }
        }
        return (current, currentFailure)
    }

    /// What a failure prints: the seed, the invariant, the shrunk trace and how to replay both.
    static func report(seed: UInt64?, clients: Int, opsPerClient: Int, original: Int, shrunk: [SimStep], failure: SimulationFailure) -> String {
        let trace = shrunk.map(\.description).joined(separator: ",")
        return """
            convergence simulation failed\(seed.map { " for seed \($0)" } ?? ""): \(failure)
            replay the seed (shrinks again, deterministically): \
            \(seed.map { "CAIRN_SIM_SEED=\($0) CAIRN_SIM_CLIENTS=\(clients) CAIRN_SIM_OPS=\(opsPerClient) " } ?? "")swift test --filter ConvergenceSimulationTests
            replay the shrunk trace (\(shrunk.count) of \(original) steps): \
            CAIRN_SIM_CLIENTS=\(clients) CAIRN_SIM_TRACE='\(trace)' swift test --filter ConvergenceSimulationTests
            what the shrunk trace did (last 200 lines):
            \(failure.log.suffix(200).joined(separator: "\n"))
            """
    }
}

@Suite("R1 convergence simulation", .timeLimit(.minutes(40)))
struct ConvergenceSimulationTests {
    static let environment = ProcessInfo.processInfo.environment
    static func setting(_ name: String, _ fallback: Int) -> Int { Self.environment[name].flatMap(Int.init) ?? fallback }
    /// Seeds at a time: two per core. A seed hands work between threads (the server store's
    /// queue, task wake-ups) and waits meanwhile; a second seed per core fills those waits (12
    /// seeds on 2 cores: 39 s four at a time, 44 s two at a time).
    static let defaultJobs = 2 * ProcessInfo.processInfo.activeProcessorCount
    #if DEBUG
    /// A debug build is about 8 times slower: `swift test` while working runs a smaller default.
    static let defaultSeeds = 12, defaultOps = 150, defaultSkewSeeds = 4
    #else
    /// The CI size (`./scripts/test` runs the simulation from a release build).
    static let defaultSeeds = 300, defaultOps = 500, defaultSkewSeeds = 20
    #endif

    /// The CI size by default in release (300 seeds × 6 clients × 500 edits each; 12 × 6 × 150
    /// in debug), seeds run `CAIRN_SIM_JOBS` at a time (default two per core); `CAIRN_SIM_SEEDS`, `CAIRN_SIM_FIRST_SEED`,
    /// `CAIRN_SIM_CLIENTS`, `CAIRN_SIM_OPS` change it, `CAIRN_SIM_SEED` replays one seed and
    /// `CAIRN_SIM_TRACE` one printed trace (see docs/testing.md).
    @Test func everyReplicaConvergesAndEveryOpAppliesOnce() async throws {
        let clients = Self.setting("CAIRN_SIM_CLIENTS", 6)
        let ops = Self.setting("CAIRN_SIM_OPS", Self.defaultOps)
        if let text = Self.environment["CAIRN_SIM_TRACE"] {
            guard let steps = SimStep.parse(trace: text) else {
                Issue.record("CAIRN_SIM_TRACE is not a trace of steps like e3.9f2c,p0.11")
                return
            }
            if case .failure(let failure) = try await SimulationRunner.run(clients: clients, steps: steps) {
                Issue.record("\(SimulationRunner.report(seed: nil, clients: clients, opsPerClient: ops, original: steps.count, shrunk: steps, failure: failure))")
            }
            return
        }
        let seeds: [UInt64]
        if let one = Self.environment["CAIRN_SIM_SEED"].flatMap(UInt64.init) {
            seeds = [one]
        } else {
            let first = Self.setting("CAIRN_SIM_FIRST_SEED", 1)
            seeds = (first..<(first + Self.setting("CAIRN_SIM_SEEDS", Self.defaultSeeds))).map { UInt64($0) }
        }
        let jobs = max(1, Self.setting("CAIRN_SIM_JOBS", Self.defaultJobs))
        let started = ContinuousClock.now
        // Seeds run `jobs` at a time; the first failure is shrunk and reported, later ones only named.
        let failures = try await withThrowingTaskGroup(of: (UInt64, [SimStep], SimulationFailure)?.self) { group in
            var pending = seeds[...]
            var failures: [(UInt64, [SimStep], SimulationFailure)] = []
            func launch() {
                guard let seed = pending.popFirst() else { return }
                group.addTask {
                    let steps = SimStep.plan(seed: seed, clients: clients, opsPerClient: ops)
                    if case .failure(let failure) = try await SimulationRunner.run(clients: clients, steps: steps) { return (seed, steps, failure) }
                    return nil
                }
            }
            for _ in 0..<jobs { launch() }
            var done = 0
            while let result = try await group.next() {
                done += 1
                if let result { failures.append(result) }
                if done % 25 == 0 { print("R1: \(done) of \(seeds.count) seeds in \(ContinuousClock.now - started)") }
                launch()
            }
            return failures
        }
        print("R1: \(seeds.count) seeds × \(clients) clients × \(ops) edits in \(ContinuousClock.now - started), \(jobs) at a time")
        guard let (seed, steps, failure) = failures.min(by: { $0.0 < $1.0 }) else { return }
        let (shrunk, shrunkFailure) =
            Self.environment["CAIRN_SIM_SHRINK"] == "0"
            ? (steps, failure)
            : try await SimulationRunner.shrink(clients: clients, steps: steps, failure: failure, budget: .seconds(Self.setting("CAIRN_SIM_SHRINK_SECONDS", 300)))
        Issue.record(
            """
            \(failures.count) seed(s) failed: \(failures.map(\.0).sorted().map(String.init).joined(separator: ", "))
            \(SimulationRunner.report(seed: seed, clients: clients, opsPerClient: ops, original: steps.count, shrunk: shrunk, failure: shrunkFailure))
            """)
    }

    /// S9: clients whose clocks are 24 h fast or 24 h slow end in the same state as the same run
    /// with every clock right: record by record, fields, versions and timestamps.
    @Test func clockSkewOfADayGivesTheSameFinalState() async throws {
        let clients = Self.setting("CAIRN_SIM_CLIENTS", 6)
        let ops = Self.setting("CAIRN_SIM_SKEW_OPS", 150)
        let first = Self.setting("CAIRN_SIM_FIRST_SEED", 1)
        let seeds = (first..<(first + Self.setting("CAIRN_SIM_SKEW_SEEDS", Self.defaultSkewSeeds))).map { UInt64($0) }
        let day: Int64 = 24 * 3600 * 1000
        let skews = (0..<clients).map { [day, -day, 0][$0 % 3] }
        let jobs = max(1, Self.setting("CAIRN_SIM_JOBS", ProcessInfo.processInfo.activeProcessorCount))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, seed) in seeds.enumerated() {
                if index >= jobs { try await group.next() }
                group.addTask {
                    let steps = SimStep.plan(seed: seed, clients: clients, opsPerClient: ops)
                    let plain = try await SimulationRunner.run(clients: clients, steps: steps)
                    let skewed = try await SimulationRunner.run(
                        clients: clients, steps: steps, skews: skews, clockCorrection: Self.environment["CAIRN_SIM_NO_CLOCK_CORRECTION"] != "1")
                    switch (plain, skewed) {
                    case (.success(let expected), .success(let actual)):
                        let differing = Set(expected.keys).union(actual.keys).filter { expected[$0] != actual[$0] }.sorted()
                        if let key = differing.first {
                            Issue.record(
                                """
                                S9 seed \(seed): with clocks skewed by \(skews.map { $0 / 3_600_000 }) h, \(differing.count) records end differently, e.g. \(key):
                                without skew: \(expected[key] ?? "absent")
                                with skew:    \(actual[key] ?? "absent")
                                replay: CAIRN_SIM_FIRST_SEED=\(seed) CAIRN_SIM_SKEW_SEEDS=1 CAIRN_SIM_SKEW_OPS=\(ops) CAIRN_SIM_CLIENTS=\(clients) \
                                swift test --filter clockSkewOfADayGivesTheSameFinalState
                                """)
                        }
                    case (.failure(let failure), _), (_, .failure(let failure)):
                        Issue.record("S9 seed \(seed): a run failed: \(failure)")
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}

@Suite("R1 simulation machinery")
struct SimulationMachineryTests {
    /// ddmin finds the two steps that together make a run fail, among a thousand.
    @Test func shrinkingFindsTheFailingPair() async throws {
        let steps = SimStep.plan(seed: 7, clients: 6, opsPerClient: 100)
        let culprits = [steps[123], steps[777]]
        let failure = SimulationFailure(check: "planted", message: "both culprits ran", log: [])
        var attempts = 0
        let (shrunk, _) = try await SimulationRunner.shrink(steps: steps, failure: failure, budget: .seconds(60)) { candidate in
            attempts += 1
            return culprits.allSatisfy(candidate.contains) ? failure : nil
        }
        #expect(shrunk == culprits)
        #expect(attempts < 200)
    }

    /// A printed trace reads back as the same steps.
    @Test func tracesRoundTrip() {
        let steps = SimStep.plan(seed: 11, clients: 6, opsPerClient: 20)
        #expect(SimStep.parse(trace: steps.map(\.description).joined(separator: ",")) == steps)
        #expect(SimStep.parse(trace: "e1.ff, x2.1") == nil)
    }

    /// S9's comparison needs runs to be deterministic: the same trace twice, the same state.
    @Test func aTraceReplaysToTheSameState() async throws {
        let steps = SimStep.plan(seed: 5, clients: 4, opsPerClient: 40)
        let first = try await SimulationRunner.run(clients: 4, steps: steps).get()
        let second = try await SimulationRunner.run(clients: 4, steps: steps).get()
        #expect(first == second)
        #expect(first.count > 20)
    }
}
