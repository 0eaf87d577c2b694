import CairnTestFixtures
import Foundation
import Testing

@testable import CairnCore

@Suite("JSON reader and writer")
struct JSONTextTests {
    /// Values the reader must give exactly as `JSONDecoder` does, and the writer must write so
    /// that both readers give the value back.
    static let documents = [
        #"{"a":1,"b":-2.5,"c":"x\"y\\z\/\n\t\u00e9\ud83d\ude00","d":[true,false,null,{}],"e":{"f":[]},"g":1e21,"h":-0,"i":0.1}"#,
        #"  [ 1 , 2 ,"three" , { "k" : null } ]  "#,
        #""plain""#,
        "123456789012345678",
        #"{"emoji":"🏔️","cjk":"山","ctl":"\u0001\u001f"}"#,
        "9007199254740993",
        "-1.5E-7",
        // Escaped strings one after the other, longest first (the reader reuses one buffer for them).
        #"["https:\/\/a.example\/a\/long\/path\/\u00e9","\/x","",  "b\"c","\ud83c\udfd4 \/ \u5c71"]"#,
    ]

    @Test func readsWhatJSONDecoderReads() throws {
        for text in Self.documents {
            let expected = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
            #expect(try JSONValue.parse(text) == expected, "\(text)")
        }
    }

    /// Objects inside objects and arrays each get their own members (the reader builds every
    /// object from one shared list of members), and a repeated key keeps its last value.
    @Test func readsNestedObjectsAndKeepsTheLastOfARepeatedKey() throws {
        let value = try JSONValue.parse(#"{"a":1,"b":{"c":2,"c":{"d":[{"e":1,"f":2},{},{"e":3}]}},"g":[{"h":{"i":4}},5],"a":6}"#)
        let expected: JSONValue = [
            "a": 6, "b": ["c": ["d": [["e": 1, "f": 2], [:], ["e": 3]]]], "g": [["h": ["i": 4]], 5],
        ]
        #expect(value == expected)
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(#"{"a":{"b":1,}"#) }
        // A failed read leaves nothing behind for the next one.
        #expect(try JSONValue.parse(#"{"x":{"y":1}}"#) == ["x": ["y": 1]])
    }

    @Test func writesTextBothReadersReadBack() throws {
        for text in Self.documents {
            let value = try JSONValue.parse(text)
            let written = value.jsonText
            #expect(try JSONValue.parse(written) == value, "\(written)")
            #expect(try JSONDecoder().decode(JSONValue.self, from: Data(written.utf8)) == value, "\(written)")
        }
    }

    @Test func writesLikeJSONEncoderWithSortedKeys() throws {
        let value: JSONValue = ["b": 1, "a": ["x/y", 2.5, true, .null], "c": ["d": "\"q\"\n"], "n": 1_700_000_000_000]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        #expect(value.canonicalJSONText == String(decoding: try encoder.encode(value), as: UTF8.self))
        #expect(JSONValue.object(["b": 1, "a": 2]).canonicalJSONText == #"{"a":2,"b":1}"#)
        #expect(value.jsonByteCount == value.jsonText.utf8.count)
        for text in Self.documents {
            let parsed = try JSONValue.parse(text)
            #expect(parsed.jsonByteCount == parsed.jsonText.utf8.count, "\(text)")
        }
    }

    /// An op result written directly is byte for byte its `jsonValue` with sorted keys, with
    /// every optional member absent, present, or holding text that needs escaping.
    @Test func operationResultWritesItsSortedJSONValue() throws {
        var bare = OperationResult(opId: "op-1", status: .applied, collection: "bookmarks", id: nil)
        var full = OperationResult(
            opId: "op \"2\"/\n\u{1F600}", status: .duplicate, collection: "notes", id: "n-1", version: 9_007_199_254_740_993,
            record: ["z": 1, "a": ["y": .null, "b": [true, "x"]], "é": "\u{1}"],
            error: OperationError(code: "CONFLICT_DETECTED", message: "Version 3 is stale", field: "data")
        )
        full.originalStatus = .conflict
        full.clockClamped = false
        full.affected = ["a", "b\\c"]
        full.deduplicated = true
        var noField = OperationResult(opId: "o", status: .rejected, collection: "c", id: "i", version: 0, error: OperationError(code: "X", message: "m"))
        noField.affected = []
        bare.clockClamped = true
        for result in [bare, full, noField] {
            var direct: [UInt8] = []
            result.writeJSON(to: &direct)
            var sorted: [UInt8] = []
            result.jsonValue.writeJSON(to: &sorted, sortedKeys: true)
            #expect(String(decoding: direct, as: UTF8.self) == String(decoding: sorted, as: UTF8.self))
            #expect(try JSONValue.parse(result.jsonText) == result.jsonValue)
        }
    }

    /// Payload hashes are taken over an op's canonical text, written directly: it must stay byte
    /// for byte the sorted text of its `jsonValue`, with every optional member absent or present,
    /// or a stored op's retry would stop matching its hash.
    @Test func operationCanonicalTextIsItsSortedJSONValue() throws {
        let ops = [
            SyncOperation(opId: "c1", type: .create, id: "b1", data: ["url": "https://a.example/x", "title": "T", "tags": ["b", "a"]]),
            SyncOperation(opId: "d", type: .delete, collection: "notes", id: "n"),
            SyncOperation(
                opId: "m \"1\"", type: .move, id: "b2", data: ["z": ["y": 1, "x": .null]], patch: ["q": 2.5, "p": "\u{1}"],
                expectedVersion: 9_007_199_254_740_993, parentId: "folder", index: -3, afterId: "a", beforeId: "b", position: "a0V",
                hlc: HLC(wall: 1_700_000_000_000, counter: 7, node: "dev/ice")
            ),
            SyncOperation(opId: "u", type: .upsert, collection: "settings", id: "s", data: [:], parentId: .null, index: 0),
        ]
        for op in ops {
            var direct: [UInt8] = []
            op.writeCanonicalJSON(to: &direct)
            var sorted: [UInt8] = []
            op.jsonValue.writeJSON(to: &sorted, sortedKeys: true)
            #expect(String(decoding: direct, as: UTF8.self) == String(decoding: sorted, as: UTF8.self))
        }
        var first: [UInt8] = []
        ops[0].writeCanonicalJSON(to: &first)
        #expect(
            String(decoding: first, as: UTF8.self)
                == #"{"collection":"bookmarks","data":{"tags":["b","a"],"title":"T","url":"https://a.example/x"},"id":"b1","opId":"c1","type":"create"}"#
        )
        // Every field of an op, with escapes, a number past 2^53 (written as the Double it was read
        // as, which stored hashes have always been taken over) and a null inside data.
        var move: [UInt8] = []
        ops[2].writeCanonicalJSON(to: &move)
        #expect(
            String(decoding: move, as: UTF8.self)
                == #"{"afterId":"a","beforeId":"b","collection":"bookmarks","data":{"z":{"x":null,"y":1}},"expectedVersion":9007199254740992.0,"hlc":"001700000000000-000007-dev/ice","id":"b2","index":-3,"opId":"m \"1\"","parentId":"folder","patch":{"p":"\u0001","q":2.5},"position":"a0V","type":"move"}"#
        )
    }

    @Test func refusesInvalidJSON() {
        let invalid = [
            "", "{", "[1,]", "{\"a\":}", "{\"a\" 1}", "01", "1.", "-", "tru", "nul", "\"abc", "\"\\x\"", "\"\\ud800\"", "\"\\udc00x\"",
            "\"a\u{01}\"", "[1] 2", "{\"a\":1,}", "1e", "+1",
        ]
        for text in invalid {
            #expect(throws: JSONValue.ParseError.self, "\(text)") { try JSONValue.parse(text) }
        }
    }

    @Test func refusesNestingPastTheLimit() throws {
        let deep = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(deep, maxDepth: 32) }
        #expect(try JSONValue.parse(deep, maxDepth: 40) != .null)
    }

    static func kind(_ text: String, maxDepth: Int = 32, refusingNUL: Bool = true) -> JSONValue.ParseError.Kind? {
        do {
            var text = text
            _ = try text.withUTF8 { try JSONValue.parse(bytes: $0, maxDepth: maxDepth, refusingNUL: refusingNUL) }
            return nil
        } catch let error as JSONValue.ParseError {
            return error.kind
        } catch {
            Issue.record("unexpected \(error)")
            return nil
        }
    }

    /// A request body is read once: the reader itself refuses nesting past the limit and, when
    /// asked, the escape of a NUL character, each with its own kind, as the two scans before it
    /// did (`JSONShape`).
    @Test func refusesDeepNestingAndNULWithTheirKinds() throws {
        let nested = { (depth: Int) in String(repeating: "[", count: depth) + String(repeating: "]", count: depth) }
        #expect(Self.kind(nested(32)) == nil)
        #expect(Self.kind(nested(33)) == .tooDeep)
        #expect(Self.kind(#"{"a":"# + nested(32) + "}") == .tooDeep)
        // Past the limit in a document cut short: still too deep, found before the end.
        #expect(Self.kind(String(repeating: "[", count: 100_000)) == .tooDeep)
        #expect(Self.kind(#"{"a":[1,}"#) == .malformed)
        for text in [#"{"a":"x\u0000"}"#, #"{"x\u0000":1}"#, #"["\u0000"]"#] {
            #expect(Self.kind(text) == .nul, "\(text)")
            #expect(Self.kind(text, refusingNUL: false) == nil, "\(text)")
        }
        #expect(Self.kind(#"{"a":"\\u0000"}"#) == nil)
        #expect(Self.kind(#"{"a":"\u0001 \u0100"}"#) == nil)
        // Over valid documents the reader and the scan agree.
        var random = SeededRandom(state: 20_261_124)
        let pieces = [#"\u0000"#, #"\\"#, "u", "0", "a", #"\u00"#, #"\u0020"#, #"\""#, #"\n"#, "000"]
        var checked = 0, refused = 0
        for _ in 0..<5_000 {
            let body = (0..<Int.random(in: 1..<8, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
            let text = #"{"k":[""# + body + #""]}"#
            guard Self.kind(text, refusingNUL: false) == nil else { continue }
            checked += 1
            let scanned = JSONShape.containsEscapedNUL(Array(text.utf8))
            #expect((Self.kind(text) == .nul) == scanned, "\(text)")
            if scanned { refused += 1 }
        }
        #expect(checked > 2_500 && refused > 500 && checked - refused > 500)
    }

    @Test func bookmarkJSONValueMatchesItsEncoding() throws {
        let bookmark = Bookmark(
            id: "b1", parentId: nil, title: "T", url: nil, favicon: "f", isFolder: true, position: "a0", sortOrder: 3, tags: ["x"], notes: nil,
            dateAdded: 1, dateModified: 2, syncVersion: 7, isDeleted: false, deletedAt: nil, deduplicated: true,
            children: [Bookmark(
                id: "c", parentId: "b1", title: "C", url: "https://c.example/", favicon: nil, isFolder: false, position: "a1", sortOrder: 0,
                tags: [], notes: "n", dateAdded: 1, dateModified: 1, syncVersion: 8, isDeleted: true, deletedAt: 9
            )]
        )
        let viaEncoder = try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(bookmark))
        #expect(bookmark.jsonValue == viaEncoder)
    }

    /// Each direct form is the object its `Encodable` conformance writes.
    func expectSameAsEncoder(_ value: some Encodable & JSONValueRepresentable) throws {
        let viaEncoder = try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(value))
        #expect(value.jsonValue == viaEncoder)
    }

    @Test func directFormsMatchTheirEncodableForms() throws {
        var full = OperationResult(
            opId: "o", status: .duplicate, collection: "notes", id: "n1", version: 7, record: ["a": 1], error: OperationError(code: "X", message: "m", field: "f")
        )
        full.originalStatus = .conflict
        full.clockClamped = true
        full.affected = ["a", "b"]
        full.deduplicated = false
        try self.expectSameAsEncoder(full)
        try self.expectSameAsEncoder(OperationResult(opId: "o", status: .applied, collection: "c", id: nil))
        let change = RecordChange(collection: "c", id: "i", version: 3, deleted: true, deletedAt: 9, createdAt: 1, updatedAt: 2, data: ["x": [1, "y"]])
        try self.expectSameAsEncoder(change)
        let page = PullResponse(
            changes: [change, RecordChange(collection: "c\"q", id: "j\n", version: 4, deleted: false, deletedAt: nil, createdAt: 1, updatedAt: 2, data: ["é": [:], "n": .null])],
            cursor: 4, hasMore: true
        )
        try self.expectSameAsEncoder(page)
        // Pull pages write their bytes directly: the same object as their JSONValue and encoder forms
        for response in [page, PullResponse(changes: [], cursor: 0, hasMore: false)] {
            var bytes: [UInt8] = []
            response.writeJSON(to: &bytes)
            #expect(try JSONValue.parse(bytes: bytes) == response.jsonValue)
            #expect(try JSONDecoder().decode(PullResponse.self, from: Data(bytes)) == response)
        }
        try self.expectSameAsEncoder(
            SyncOperation(
                opId: "o", type: .move, collection: "bookmarks", id: "b", data: ["u": "https://x/y"], patch: ["t": "v"], expectedVersion: 3,
                parentId: .null, index: 2, afterId: "a", beforeId: "b", position: "a0", hlc: HLC(wall: 5, counter: 1, node: "d")
            )
        )
        try self.expectSameAsEncoder(SyncOperation(opId: "o", type: .delete, collection: "notes", id: "n"))
    }

    struct Sample: Codable, Equatable {
        var name: String
        var count: Int
        var big: Int64?
        var ratio: Double
        var flag: Bool
        var tags: [String]
        var data: JSONValue?
        var nested: [String: [Int]]
        var stamp: HLC?
    }

    @Test func decodesTypesLikeJSONDecoder() throws {
        let text = #"{"name":"n","count":3,"big":1700000000000,"ratio":0.5,"flag":true,"tags":["a"],"data":{"x":[1,{"y":null}]},"nested":{"k":[1,2]},"stamp":"000000000000005-000000-x"}"#
        let expected = try JSONDecoder().decode(Sample.self, from: Data(text.utf8))
        #expect(try JSONValueDecoder().decode(Sample.self, from: JSONValue.parse(text)) == expected)
        let sparse = #"{"name":"n","count":0,"ratio":1,"flag":false,"tags":[],"nested":{}}"#
        #expect(try JSONValueDecoder().decode(Sample.self, from: JSONValue.parse(sparse)) == JSONDecoder().decode(Sample.self, from: Data(sparse.utf8)))
        // The same kinds of errors, with the same paths
        let cases: [(String, String)] = [
            (#"{"count":1,"ratio":1,"flag":true,"tags":[],"nested":{}}"#, "keyNotFound name"),
            (#"{"name":1,"count":1,"ratio":1,"flag":true,"tags":[],"nested":{}}"#, "typeMismatch name"),
            (#"{"name":"n","count":1.5,"ratio":1,"flag":true,"tags":[],"nested":{}}"#, "dataCorrupted count"),
            (#"{"name":"n","count":1,"ratio":1,"flag":1,"tags":[],"nested":{}}"#, "typeMismatch flag"),
            (#"{"name":"n","count":1,"ratio":1,"flag":true,"tags":[1],"nested":{}}"#, "typeMismatch tags.Index 0"),
            (#"{"name":null,"count":1,"ratio":1,"flag":true,"tags":[],"nested":{}}"#, "valueNotFound name"),
        ]
        for (text, expected) in cases {
            do {
                _ = try JSONValueDecoder().decode(Sample.self, from: JSONValue.parse(text))
                Issue.record("decoded \(text)")
            } catch let error as DecodingError {
                let summary: String
                switch error {
                case .keyNotFound(let key, _): summary = "keyNotFound \(key.stringValue)"
                case .typeMismatch(_, let context): summary = "typeMismatch \(context.codingPath.map(\.stringValue).joined(separator: "."))"
                case .valueNotFound(_, let context): summary = "valueNotFound \(context.codingPath.map(\.stringValue).joined(separator: "."))"
                case .dataCorrupted(let context): summary = "dataCorrupted \(context.codingPath.map(\.stringValue).joined(separator: "."))"
                @unknown default: summary = "other"
                }
                #expect(summary == expected, "\(text)")
            }
        }
    }

    /// What a decode gave: the value, or the error's kind, coding path and description.
    static func outcome<T: Equatable>(_ decode: () throws -> T) -> String {
        do {
            let value = try decode()
            return "decoded \(value)"
        } catch let error as DecodingError {
            switch error {
            case .keyNotFound(let key, let context):
                return "keyNotFound \(key.stringValue) at \(context.codingPath.map(\.stringValue)) \(context.debugDescription)"
            case .typeMismatch(let type, let context):
                return "typeMismatch \(type) at \(context.codingPath.map(\.stringValue)) \(context.debugDescription)"
            case .valueNotFound(let type, let context):
                return "valueNotFound \(type) at \(context.codingPath.map(\.stringValue)) \(context.debugDescription)"
            case .dataCorrupted(let context):
                return "dataCorrupted at \(context.codingPath.map(\.stringValue)) \(context.debugDescription)"
            @unknown default: return "other"
            }
        } catch {
            return "other \(error)"
        }
    }

    /// The direct decoding of ops (and their clock stamps) against the synthesized `Decodable` it
    /// stands in for: the same op, or the same error at the same path, for every combination a
    /// seeded generator makes of each field missing, null, of the right kind or of a wrong one.
    @Test func operationsDecodeAsTheirSynthesizedDecodable() throws {
        let choices: [String: [String?]] = [
            "opId": [nil, "null", #""c1-42""#, "7", #""""#],
            "type": [nil, "null", #""create""#, #""move""#, #""upsert""#, #""explode""#, "1", #""Create""#],
            "collection": [nil, "null", #""bookmarks""#, #""notes""#, "[]"],
            "id": [nil, "null", #""b1""#, "true"],
            "data": [nil, "null", #"{"url":"https://a.example","n":[1,{"x":null}]}"#, "[1]", #""text""#],
            "patch": [nil, "null", #"{"title":"T"}"#, "3"],
            "expectedVersion": [nil, "null", "17", "0", "-1", "1.5", #""17""#, "1e300", "9007199254740993"],
            "parentId": [nil, "null", #""root""#, "{}"],
            "index": [nil, "null", "0", "-3", "2.25", "false", "1e40"],
            "afterId": [nil, "null", #""a""#, "{}"],
            "beforeId": [nil, "null", #""b""#, "2"],
            "position": [nil, "null", #""a0V""#, "[]"],
            // Members that name no field (one differs from a field's name in case only): ignored.
            "opID": [nil, "null", #""other""#, "5"],
            "extra": [nil, "[1]", #""x""#],
            "hlc": [
                nil, "null", #""001795297342377-000000-phone""#, "1700000000000", "-1", "1.5", #""not a stamp""#, "true",
                "99999999999999999", #""1700000000000""#, "[]",
            ],
        ]
        let names = choices.keys.sorted()
        var random = SeededRandom(state: 20_261_123)
        var texts = [#"[]"#, "null", #""op""#, "{}", "1"]
        for _ in 0..<3_000 {
            var members: [String] = []
            for name in names {
                // Mostly well-formed, so that the later fields are reached as often as the first.
                let options = choices[name]!
                let pick = random.next() % 4 == 0 ? options[Int(random.next() % UInt64(options.count))] : options[2]
                if let pick { members.append("\"\(name)\":\(pick)") }
            }
            texts.append("{" + members.shuffled(using: &random).joined(separator: ",") + "}")
        }
        var decoded = 0
        for text in texts {
            let value = try JSONValue.parse(text)
            let path: [any CodingKey] = [JSONFieldKey("operations"), JSONIndexKey(index: 3)]
            let direct = Self.outcome { try JSONValueDecoding.decode(SyncOperation.self, value, path) }
            let synthesized = Self.outcome { try SyncOperation(from: JSONValueDecoding(value: value, codingPath: path)) }
            #expect(direct == synthesized, "\(text)")
            if direct.hasPrefix("decoded ") {
                decoded += 1
                // Foundation reads 2^53 + 1 exactly; the request reader, before and after this
                // path, reads every number as a Double (which the direct and synthesized paths
                // above share).
                guard !text.contains("9007199254740993") else { continue }
                #expect(try JSONValueDecoder().decode(SyncOperation.self, from: value) == JSONDecoder().decode(SyncOperation.self, from: Data(text.utf8)), "\(text)")
            }
        }
        // Both sides were exercised: ops that decode and ops refused at every step.
        #expect(decoded > 100 && decoded < texts.count - 1_000, "\(decoded) of \(texts.count)")
        // The stamps: inside an op, both sides above go through the direct `HLC` decoding, so
        // each stamp choice is also held against `HLC`'s own `init(from:)`, at a field's path and
        // on its own (as the WebSocket messages carry them).
        for text in choices["hlc"]!.compactMap({ $0 }) + [#""x""#, "{}", "1e300", "0", "281474976710655", "281474976710656"] {
            let value = try JSONValue.parse(text)
            for path: [any CodingKey] in [[], [JSONFieldKey("operations"), JSONIndexKey(index: 0), JSONFieldKey("hlc")]] {
                #expect(
                    Self.outcome { try JSONValueDecoding.decode(HLC.self, value, path) }
                        == Self.outcome { try HLC(from: JSONValueDecoding(value: value, codingPath: path)) },
                    "\(text) at \(path.map(\.stringValue))"
                )
            }
        }
    }

    @Test func invalidUTF8InAStringIsAnErrorNotAReplacement() throws {
        for bytes: [UInt8] in [[0x22, 0xFF, 0x22], [0x22, 0x61, 0xC3, 0x22], [0x22, 0x5C, 0x6E, 0xED, 0xA0, 0x80, 0x22]] {
            #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(bytes: bytes) }
        }
        #expect(try JSONValue.parse(bytes: Array("\"é\"".utf8)) == "é")
    }
}

@Suite("JSON object members")
struct JSONMembersTests {
    /// The members `JSONMembers.scan` reports, as (key text, value text), or nil when it refused.
    static func members(_ text: String) -> [(String, String)]? {
        var text = text
        return text.withUTF8 { bytes in
            var found: [(String, String)] = []
            let whole = JSONMembers.scan(bytes) { key, value in
                found.append((String(decoding: UnsafeBufferPointer(rebasing: bytes[key]), as: UTF8.self), String(decoding: UnsafeBufferPointer(rebasing: bytes[value]), as: UTF8.self)))
            }
            return whole ? found : nil
        }
    }

    @Test func findsEachTopLevelValueAsItsText() throws {
        let text = #" { "a" : 1 , "b":"x\"}]y" ,"c":[1,{"d":"]"},[]], "e":{"f":{"g":null}},"h":true,"i":-2.5e3 } "#
        let found = try #require(Self.members(text))
        #expect(found.map(\.0) == ["a", "b", "c", "e", "h", "i"])
        #expect(found.map(\.1) == ["1", #""x\"}]y""#, #"[1,{"d":"]"},[]]"#, #"{"f":{"g":null}}"#, "true", "-2.5e3"])
        // Every value text is the value the full parser reads there.
        let parsed = try JSONValue.parseObject(text)
        for (key, value) in found {
            #expect(try JSONValue.parse(value) == parsed[key], "\(key)")
        }
        #expect(Self.members("{}")?.isEmpty == true)
        #expect(Self.members(#"{"k\"ey":1}"#)?.first?.0 == #"k\"ey"#)
    }

    @Test func refusesTextThatIsNotOneObject() {
        for text in ["", "[1]", "\"x\"", "{", #"{"a":1"#, #"{"a" 1}"#, #"{"a":}"#, #"{"a":1,}"#, #"{"a":1}x"#, #"{"a":"unterminated}"#, #"{"a":[1,2}"#, "{a:1}", #"{"a":1}{"b":2}"#] {
            #expect(Self.members(text) == nil, "\(text)")
        }
        // Inside values too: what the parser refuses, the scan refuses, so that a text it
        // accepts can be copied into an answer without making the answer invalid JSON.
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        for text in [
            #"{"a":tru}"#, #"{"a":nul}"#, #"{"a":01}"#, #"{"a":1.}"#, #"{"a":-}"#, #"{"a":1e}"#, #"{"a":+1}"#, #"{"a":.5}"#,
            #"{"a":[1,]}"#, #"{"a":[}}"#, #"{"a":{"x"}}"#, #"{"a":[1,2}}"#, #"{"a":{"x":1,}}"#, #"{"a":[1 2]}"#,
            #"{"a":"\q"}"#, #"{"a":"\ud800"}"#, #"{"a":"\udc00x"}"#, #"{"a":"\ud800\u0041"}"#, #"{"a":"\u12"}"#, "{\"a\":\"tab\there\"}",
            #"{"k\x":1}"#, "{\"a\":\(deep)}",
        ] {
            #expect(Self.members(text) == nil, "\(text)")
            #expect((try? JSONValue.parseObject(text)) == nil, "the parser accepts \(text)")
        }
        #expect(Self.members(#"{"a":"\ud83d\ude00\/\b\f\n\r\t\u00e9","b":-0.5e+10,"c":1E3,"d":[[],{}],"e":0}"#)?.count == 5)
    }

    /// Random edits of valid texts: the scan accepts exactly what the parser reads as an object.
    @Test func acceptsExactlyWhatTheParserReadsAsAnObject() {
        let seeds = [
            #"{"title":"a\"b","url":"https://x.example/a?b=1","tags":["t1","t2"],"n":-12.5e-3,"o":{"p":[true,false,null]},"u":"\u00e9\ud83d\ude00"}"#,
            #"{ "a" : [ 1 , { "b" : "c" } ] , "d" : 0 }"#,
        ]
        let pieces: [UInt8] = Array(#"{}[]:,"\ -+.0123456789eEtrufalsn/ubx"#.utf8) + [0x09, 0x0A, 0x01]
        var state: UInt64 = 20_261_122
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        for _ in 0..<4000 {
            var bytes = Array(seeds[next(seeds.count)].utf8)
            for _ in 0..<(1 + next(3)) {
                let at = next(bytes.count)
                switch next(3) {
                case 0: bytes.remove(at: at)
                case 1: bytes.insert(pieces[next(pieces.count)], at: at)
                default: bytes[at] = pieces[next(pieces.count)]
                }
                if bytes.isEmpty { bytes = [UInt8(ascii: "{")] }
            }
            let text = String(decoding: bytes, as: UTF8.self)
            #expect((Self.members(text) != nil) == ((try? JSONValue.parseObject(text)) != nil), "\(text)")
        }
    }

    @Test func recognisesStringArraysAndPlainIntegers() {
        func check(_ text: String, _ test: (UnsafeBufferPointer<UInt8>, Range<Int>) -> Bool) -> Bool {
            var text = text
            return text.withUTF8 { test($0, 0..<$0.count) }
        }
        for array in ["[]", "[ ]", #"["a"]"#, #"[ "a" , "b\"," ]"#] {
            #expect(check(array, JSONMembers.isStringArray), "\(array)")
        }
        for array in ["[1]", #"["a",1]"#, #"["a",]"#, #"["a""b"]"#, "[null]", #"[["a"]]"#, "[", #""a""#] {
            #expect(!check(array, JSONMembers.isStringArray), "\(array)")
        }
        for number in ["0", "7", "-12", "1700000000000", "999999999999999"] {
            #expect(check(number, JSONMembers.isPlainInteger), "\(number)")
        }
        for number in ["", "-", "01", "1.0", "1e3", "1000000000000000", "+1", "12a"] {
            #expect(!check(number, JSONMembers.isPlainInteger), "\(number)")
        }
    }
}
