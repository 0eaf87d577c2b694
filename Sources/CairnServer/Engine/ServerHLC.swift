import CairnCore
import Synchronization

/// The server's hybrid logical clock: merges every stamp it sees and clamps client stamps that
/// run too far ahead of the server's wall clock.
final class ServerHLC: Sendable {
    private let last: Mutex<HLC>
    let clock: ServerClock
    /// A client stamp more than this many ms ahead of the server is clamped.
    let maxDrift: Int64
    let node: String

    init(clock: ServerClock, maxDrift: Int64 = 60_000, node: String = "server") {
        self.clock = clock
        self.maxDrift = maxDrift
        self.node = node
        self.last = Mutex(HLC(wall: 0, node: node))
    }

    /// A fresh server stamp, later than every stamp seen so far.
    func now() -> HLC {
        let wall = self.clock.nowMilliseconds
        return self.last.withLock { last in
            let next = wall > last.wall ? HLC(wall: wall, counter: 0, node: self.node) : last.successor(after: last, node: self.node)
            last = next
            return next
        }
    }

    /// The stamp to record for a client's edit: its own stamp when plausible, the server's clock
    /// when it is more than `maxDrift` ahead (then `clamped` is true), a server stamp when absent.
    func stamp(for client: HLC?, defaultNode: String) -> (stamp: HLC, clamped: Bool) {
        guard var client else { return (self.now(), false) }
        client.node = Self.cleanNode(client.node.isEmpty ? defaultNode : client.node)
        let wall = self.clock.nowMilliseconds
        if client.wall > wall + self.maxDrift {
            var clamped = self.now()
            clamped.node = client.node
            return (clamped, true)
        }
        if client.counter > HLC.maximumCounter || client.wall > HLC.maximumWall {
            var clamped = self.now()
            clamped.node = client.node
            return (clamped, true)
        }
        self.last.withLock { last in
            if client > last { last = HLC(wall: client.wall, counter: client.counter, node: self.node) }
        }
        return (client, false)
    }

    /// A node name that survives storage: `[A-Za-z0-9_.:-]`, at most 64 characters.
    static func cleanNode(_ node: String) -> String {
        // Every allowed character is one ASCII byte, so the name is filtered on its bytes; every
        // op's stamp comes through here, almost always with a clean name, which is kept as it is.
        if !node.isEmpty, node.utf8.count <= 64, node.utf8.allSatisfy(Self.isNodeByte) { return node }
        let clean = String(decoding: node.utf8.lazy.filter(Self.isNodeByte).prefix(64), as: UTF8.self)
        return clean.isEmpty ? "client" : clean
    }

    private static func isNodeByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }
}
