import CairnTestFixtures
import Foundation
import Testing

@testable import CairnCore

@Suite("Sync primitives")
struct SyncPrimitivesTests {
    // MARK: HLC

    @Test func hlcOrdersByWallThenCounterThenNode() {
        let a = HLC(wall: 100, counter: 0, node: "b")
        let b = HLC(wall: 100, counter: 1, node: "a")
        let c = HLC(wall: 101, counter: 0, node: "a")
        let d = HLC(wall: 100, counter: 0, node: "c")
        #expect(a < b && b < c)
        #expect(a < d)
        #expect([c, a, d, b].sorted() == [a, d, b, c])
    }

    @Test func hlcStringFormSortsLikeTheStampAndRoundTrips() throws {
        let stamps = [HLC(wall: 5, counter: 0, node: "x"), HLC(wall: 1_700_000_000_000, counter: 255, node: "phone-1"), HLC(wall: 1_700_000_000_000, counter: 4096, node: "a")]
        for stamp in stamps { #expect(HLC(stamp.description) == stamp) }
        // The exact text: fixed-width zero-padded decimal wall, hex counter, then the node
        #expect(stamps.map(\.description) == ["000000000000005-000000-x", "001700000000000-0000ff-phone-1", "001700000000000-001000-a"])
        #expect(HLC(wall: 0, counter: 0, node: "").description == "000000000000000-000000-")
        #expect(HLC(wall: HLC.maximumWall, counter: HLC.maximumCounter, node: "n").description == "\(HLC.maximumWall)-\(String(HLC.maximumCounter, radix: 16))-n")
        #expect(stamps.sorted().map(\.description) == stamps.map(\.description).sorted())
        #expect(HLC("1700000000000")?.wall == 1_700_000_000_000)
        #expect(HLC("garbage") == nil)
        // The fast reader of the canonical form and the general parser agree, in and out of it
        for text in [
            "001700000000000-0000ff-phone-1", "001700000000000-0000FF-a-b-c", "000000000000000-000000-", "999999999999999-000000-x",
            "00170000000000a-000000-x", "001700000000000-00000g-x", "001700000000000+000000-x", "001700000000000-000000+x",
            "+01700000000000-000000-x", "1700000000000-ff-node", "001700000000000-000000-" + String(repeating: "n", count: 129),
            "001700000000000-000000-" + String(repeating: "n", count: 128), "001700000000000-000000-ü",
        ] {
            let general = HLC(text)
            if let fast = HLC.parseCanonical(text) { #expect(fast == general, "\(text)") }
        }
        #expect(HLC.parseCanonical("001700000000000-0000ff-phone-1") == HLC(wall: 1_700_000_000_000, counter: 255, node: "phone-1"))
        #expect(HLC("999999999999999-000000-x") == nil)
        #expect(HLC("001700000000000-000000-" + String(repeating: "n", count: 129)) == nil)
        #expect(HLC("-5-0-x") == nil)
        let decoded = try JSONDecoder().decode([HLC].self, from: Data(#"["000000000000005-000000-x", 1700000000000]"#.utf8))
        #expect(decoded[0] == HLC(wall: 5, node: "x"))
        #expect(decoded[1].wall == 1_700_000_000_000)
    }

    @Test func successorIsAfterBoth() {
        let a = HLC(wall: 10, counter: 3, node: "a")
        let b = HLC(wall: 10, counter: 5, node: "b")
        let next = a.successor(after: b, node: "c")
        #expect(next > a && next > b)
    }

    // MARK: Fractional index

    @Test func betweenIsStrictlyBetween() {
        let cases: [(String?, String?)] = [(nil, nil), ("V", nil), (nil, "V"), ("V", "W"), ("V", "V1"), ("VV", "W"), (nil, "1"), (nil, "01"), ("y", nil), ("zzzz", nil)]
        for (lower, upper) in cases {
            let key = FractionalIndex.between(lower, upper)
            #expect(FractionalIndex.isValid(key), "\(String(describing: lower)) \(String(describing: upper)) → \(key)")
            if let lower { #expect(lower < key, "\(lower) < \(key)") }
            if let upper { #expect(key < upper, "\(key) < \(upper)") }
        }
    }

    @Test func repeatedInsertionAtTheFrontAndInTheMiddleStaysOrdered() {
        var keys = [FractionalIndex.between(nil, nil)]
        for _ in 0..<200 { keys.insert(FractionalIndex.between(nil, keys[0]), at: 0) }
        for _ in 0..<200 { keys.insert(FractionalIndex.between(keys[100], keys[101]), at: 101) }
        for _ in 0..<200 { keys.append(FractionalIndex.between(keys.last, nil)) }
        #expect(keys == keys.sorted())
        #expect(Set(keys).count == keys.count)
        #expect(keys.allSatisfy(FractionalIndex.isValid))
        #expect(keys.map(\.count).max() ?? 0 < 64)
    }

    @Test func appendingThousandsToOneFolderKeepsKeysShortDistinctAndValid() {
        // Found by cairn-bench: halving the open end grew keys by a character per 6 appends and,
        // past a few thousand, handed out identical keys; the last digit plus one still grew them
        // by a character per 61 appends (165 characters after 10,000).
        var keys = [FractionalIndex.start]
        for _ in 0..<100_000 { keys.append(FractionalIndex.between(keys.last, nil)) }
        #expect(zip(keys, keys.dropFirst()).allSatisfy { $0 < $1 })
        #expect(keys.allSatisfy(FractionalIndex.isValid))
        #expect(keys[10_000].count <= 5)
        #expect(keys.map(\.count).max() == 5)
        #expect(Array(keys.prefix(3)) == ["V", "W", "X"])
    }

    @Test func anAppendIsAfterAnyKey() {
        // Keys a client or an older server made, including the long ones appends used to make.
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        var keys = ["z", "z01", "z1", "z1z", "z2", "z2zz", "z2zzzz", "z5", "zk", "zz", "zz5", "zzz", "zy", "yz", "Vzz1", "zz0zz1"]
        keys.append(String(repeating: "z", count: 100) + "T")
        keys.append("z" + String(repeating: "y", count: 60) + "1")
        for _ in 0..<5_000 {
            let length = Int.random(in: 1...80, using: &generator)
            let zs = Int.random(in: 0...min(3, length - 1), using: &generator)
            var key = String(repeating: "z", count: zs)
            for _ in zs..<length { key.append(alphabet.randomElement(using: &generator)!) }
            if key.hasSuffix("0") { key.removeLast(); key.append("1") }
            keys.append(key)
        }
        for key in keys {
            #expect(FractionalIndex.isValid(key), "\(key)")
            let next = FractionalIndex.between(key, nil)
            #expect(key < next, "\(key) → \(next)")
            #expect(FractionalIndex.isValid(next), "\(key) → \(next)")
            // Never much longer than the key it follows (an old-style `z5` does not become `z500001`).
            #expect(next.count <= key.count + 2, "\(key) → \(next)")
        }
        #expect(FractionalIndex.between("z5", nil) == "z6")
        #expect(FractionalIndex.between("z1z", nil) == "z201")
    }

    @Test func appendsAfterAnOldStyleKeyJoinTheCountersWithin61() {
        // A folder whose last key came from the older rule (`z5`, `zz7`): appends follow it by
        // the last digit, then start counters at the next run of `z`s, and stay short after.
        for start in ["z5", "zz7", "Vzzz"] {
            var keys = [start]
            for _ in 0..<20_000 { keys.append(FractionalIndex.between(keys.last, nil)) }
            #expect(zip(keys, keys.dropFirst()).allSatisfy { $0 < $1 }, "\(start)")
            #expect(keys.allSatisfy(FractionalIndex.isValid), "\(start)")
            #expect(keys.last!.count <= start.count + 5, "\(start) → \(keys.last!)")
        }
    }

    @Test func sequenceGivesOrderedDistinctKeys() {
        let keys = FractionalIndex.sequence(count: 1000, between: "A", and: "B")
        #expect(keys.count == 1000)
        #expect(keys == keys.sorted())
        #expect(Set(keys).count == 1000)
        #expect(keys.first.map { "A" < $0 } == true)
        #expect(keys.last.map { $0 < "B" } == true)
    }

    @Test func rejectsMalformedKeys() {
        for key in ["", "V0", "a b", "é", String(repeating: "V", count: 129), "-"] {
            #expect(!FractionalIndex.isValid(key), "\(key)")
        }
    }

    // MARK: URLs

    @Test func normalisesURLsForDuplicateDetection() {
        #expect(BookmarkURL.normalized("HTTPS://Example.COM:443/Path/") == "https://example.com/Path")
        #expect(BookmarkURL.normalized("http://example.com") == "http://example.com/")
        #expect(BookmarkURL.normalized("http://example.com:80/?q=1") == "http://example.com/?q=1")
        #expect(BookmarkURL.normalized("https://example.com/a#frag") == "https://example.com/a#frag")
        #expect(BookmarkURL.normalized("https://example.com:8443/") == "https://example.com:8443/")
    }

    @Test func validatesSchemesAndHosts() {
        for ok in ["https://a.example", "http://localhost:8080/x", "javascript:alert(1)", "place:sort=8", "about:blank", "file:///tmp/x", "chrome://settings", "moz-extension://abc/page.html", "data:text/html,hi", "HTTPS://A.example", "view-source:https://x.example", "https://bücher.example/ä",
                  // Read on UTF-8 bytes, as RFC 3986 reads a URL: a combining mark after the colon
                  // does not hide the scheme (grapheme clusters would have merged the two).
                  "javascript:\u{301}alert(1)", "https://a.example/\u{301}"] {
            #expect(throws: Never.self) { try BookmarkURL.validate(ok, maxBytes: 16384) }
        }
        for bad in ["", "notaurl", "gopher-evil://x", "https:", "http:///path", "https://a.example/\u{7}", "1http://x", "https://?q", "https://#f", "http:/x.example", "ht tp://x", "https://a.example/\u{7F}", ":x", "-x:y", "é://x",
                   // ...nor does one after the slashes make an empty host a host.
                   "https:///\u{301}x"] {
            #expect(throws: CairnError.self, "\(bad)") { try BookmarkURL.validate(bad, maxBytes: 16384) }
        }
        #expect(throws: CairnError.self) { try BookmarkURL.validate("https://a.example/" + String(repeating: "x", count: 100), maxBytes: 50) }
        #expect(BookmarkURL.scheme(of: "View-Source:https://x") == "view-source")
        #expect(BookmarkURL.scheme(of: "no scheme") == nil)
    }

    // MARK: JSON shape

    @Test func measuresDepthSkippingStrings() {
        #expect(JSONShape.depth(of: Array(#"{"a":[1,{"b":2}]}"#.utf8), limit: 32) == 3)
        #expect(JSONShape.depth(of: Array(#"{"a":"[[[[{{{{","b":"\"[["}"#.utf8), limit: 32) == 1)
        #expect(JSONShape.depth(of: Array(String(repeating: "[", count: 10_000).utf8), limit: 32) == 33)
    }

    /// The escaped-NUL scan against the index-walking version it replaced, on every string of
    /// up to 7 bytes over the bytes that matter to it (and random longer ones), and on a few
    /// named cases.
    @Test func findsAnEscapedNULAsTheIndexWalkDid() {
        func reference(_ text: [UInt8]) -> Bool {
            var index = 0
            while index < text.count {
                guard text[index] == UInt8(ascii: "\\") else {
                    index += 1
                    continue
                }
                if index + 5 < text.count, text[index + 1] == UInt8(ascii: "u"), text[(index + 2)...(index + 5)].allSatisfy({ $0 == UInt8(ascii: "0") }) {
                    return true
                }
                index += 2
            }
            return false
        }
        let alphabet = Array(#"\u0a""#.utf8)
        var texts: [[UInt8]] = [[]]
        var level: [[UInt8]] = [[]]
        for _ in 0..<7 {
            level = level.flatMap { prefix in alphabet.map { prefix + [$0] } }
            texts += level
        }
        var random = SeededRandom(state: 20_261_123)
        for _ in 0..<20_000 {
            // Made of pieces, so that escapes and runs of zeros come up often.
            let pieces = [#"\"#, "u", "0", "a", "\"", #"\u"#, #"\u00"#, "000", #"\\"#].map { Array($0.utf8) }
            texts.append((0..<Int.random(in: 3..<16, using: &random)).flatMap { _ in pieces.randomElement(using: &random)! })
        }
        var found = 0
        for text in texts {
            let direct = text.withUnsafeBytes { JSONShape.containsEscapedNUL($0) }
            #expect(direct == reference(text), "\(String(decoding: text, as: UTF8.self))")
            if direct { found += 1 }
        }
        #expect(found > 1_000)
        #expect(JSONShape.containsEscapedNUL(Array(#"{"a":"x\u0000"}"#.utf8)))
        #expect(JSONShape.containsEscapedNUL(Array(#"{"a":"\u00\u0000"}"#.utf8)))
        #expect(!JSONShape.containsEscapedNUL(Array(#"{"a":"\\u0000"}"#.utf8)))
        #expect(!JSONShape.containsEscapedNUL(Array(#"{"a":"\u0001 \u000"}"#.utf8)))
    }

    @Test func emailsAreValidatedAndNormalised() throws {
        #expect(try EmailAddress.validate("  Ann@Example.com ") == "Ann@Example.com")
        #expect(EmailAddress.normalized("Ann@Example.COM") == "ann@example.com")
        for bad in ["", "a", "a@", "@b.co", "a@b", "a b@c.co", "a@b..co", "a@.b.co", "a@b.co.", "a@@b.co"] {
            #expect(throws: CairnError.self, "\(bad)") { try EmailAddress.validate(bad) }
        }
    }
}
