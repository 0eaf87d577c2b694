import CairnTestFixtures
import Testing

@testable import CairnServer

@Suite("Server clock")
struct ServerHLCTests {
    /// The node-name cleaning as it was before its fast path for names that are already clean.
    static func reference(_ node: String) -> String {
        let allowed = node.unicodeScalars.filter { scalar in
            scalar.isASCII && (("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar) || "_.:-".unicodeScalars.contains(scalar))
        }
        let clean = String(String.UnicodeScalarView(allowed.prefix(64)))
        return clean.isEmpty ? "client" : clean
    }

    @Test func cleansNodeNamesAsBefore() {
        var names = [
            "", "phone", "bench", "a-b_c.d:e", String(repeating: "x", count: 64), String(repeating: "x", count: 65),
            String(repeating: "é", count: 40), "dev/ice", "dev ice", "ünïcödé", "e\u{301}", "🏔️node", "\u{0}", "a\u{0}b", "//",
        ]
        let pieces = ["a", "Z", "9", "_", ".", ":", "-", "/", " ", "é", "\u{301}", "🏔️", "\u{7F}", "x"]
        var random = SeededRandom(state: 20_261_123)
        for _ in 0..<5_000 {
            names.append((0..<Int.random(in: 0..<80, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined())
        }
        for name in names {
            #expect(ServerHLC.cleanNode(name) == Self.reference(name), "\(name)")
        }
        #expect(ServerHLC.cleanNode("dev/ice") == "device")
        #expect(ServerHLC.cleanNode("") == "client")
        #expect(ServerHLC.cleanNode(String(repeating: "x", count: 65)) == String(repeating: "x", count: 64))
    }
}
