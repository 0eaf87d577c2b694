import CairnCore
import CairnTestFixtures
import Foundation
import Testing

@testable import CairnServer

/// A pull page copies each record's stored data text into its answer instead of parsing it and
/// writing it back (`SyncEngine.writeChange`). These tests hold that copy to the parsed way
/// (`SyncEngine.change(_:sortOrder:)`): the same JSON for every stored text, ordinary or odd.
@Suite("Pull entries written from stored text")
struct PullEncodingTests {
    static func row(_ collection: String, _ dataText: String, deleted: Bool = false, parentId: String? = "toolbar", position: String? = "a0") -> ChangedRow {
        ChangedRow(
            profileId: "p", collection: collection, id: "id-1", version: 42, dataText: dataText,
            parentId: parentId, position: position, createdAt: 1_700_000_000_000, updatedAt: 1_700_000_000_500,
            deleted: deleted, deletedAt: deleted ? 1_700_000_000_900 : nil, createdSeq: 7
        )
    }

    /// The entry as written from the text, and as the parsed way builds it.
    static func both(_ row: ChangedRow, sortOrder: Int = 3) throws -> (copied: JSONValue, parsed: JSONValue) {
        var bytes: [UInt8] = []
        SyncEngine.writeChange(row, sortOrder: sortOrder, to: &bytes)
        let copied = try JSONValue.parse(bytes: bytes)
        return (copied, SyncEngine.change(row.record, sortOrder: sortOrder).jsonValue)
    }

    /// Stored texts a JSON writer produces, and texts it never would (other types in the
    /// seed-shape fields, whitespace, escapes, duplicate keys, text that is not an object).
    static let texts = [
        #"{"title":"Docs","url":"https://example.com/a?b=1&c=\"d\"","isFolder":false,"tags":["x","y\u00e9"],"notes":"line\nnext","dateAdded":1699999999000,"dateModified":1700000000100}"#,
        #"{"title":"Folder","isFolder":true}"#,
        "{}",
        #" { "title" : "spaced" , "tags" : [ "a" , "b" ] , "isFolder" : true } "#,
        #"{"title":7,"url":null,"favicon":false,"notes":["n"],"isFolder":1,"tags":"x"}"#,
        #"{"tags":[1,"a",null,"b",{"c":"d"}],"dateAdded":1.5e3,"dateModified":"soon"}"#,
        #"{"dateAdded":12345678901234567,"dateModified":-5,"title":"🏔️ 山","url":"\/slash"}"#,
        #"{"dateAdded":1.25,"dateModified":0,"favicon":"data:image/png;base64,AAA="}"#,
        #"{"title":"first","title":"second"}"#,
        #"{"ti\u0074le":"escaped key","extra":{"nested":[1,2,{"deep":"}]"}]}}"#,
        #"{"title":"a\"b\\c\/d\u0001"}"#,
        "[1,2]",
        "",
        #"{"title":"unterminated}"#,
        #"{"title":"x"} trailing"#,
        // Malformed inside a value (only a damaged database holds such text): the parsed way
        // reads `{}`, and so must the copy, never an answer that is not JSON.
        #"{"title":"Docs","junk":tru}"#,
        #"{"title":"x\q"}"#,
        #"{"a":[1,}}"#,
        #"{"tags":["a","\ud800"]}"#,
    ]

    @Test func bookmarkEntriesMatchTheParsedWay() throws {
        for text in Self.texts {
            for row in [Self.row("bookmarks", text), Self.row("bookmarks", text, deleted: true), Self.row("bookmarks", text, parentId: nil, position: nil)] {
                let (copied, parsed) = try Self.both(row)
                #expect(copied == parsed, "\(text)")
            }
        }
    }

    @Test func recordEntriesMatchTheParsedWay() throws {
        for text in Self.texts + [#"{"a":{"b":[1,2.5,"c"]},"d":null,"e":"\ud83d\ude00"}"#] {
            for row in [Self.row("notes", text), Self.row("notes", text, deleted: true)] {
                let (copied, parsed) = try Self.both(row)
                #expect(copied == parsed, "\(text)")
            }
        }
    }

    /// Random data objects as the store writes them: the copy and the parsed way agree on each.
    @Test func randomStoredDataMatchesTheParsedWay() throws {
        var random = SeededRandom(state: 20_261_122)
        let keys = ["title", "url", "favicon", "isFolder", "tags", "notes", "dateAdded", "dateModified", "other", "x"]
        for _ in 0..<500 {
            var object: [String: JSONValue] = [:]
            for key in keys where Int.random(in: 0..<3, using: &random) > 0 {
                object[key] = Self.value(&random, depth: 0)
            }
            let text = JSONValue.object(object).jsonText
            for collection in ["bookmarks", "notes"] {
                let (copied, parsed) = try Self.both(Self.row(collection, text), sortOrder: Int.random(in: 0..<1000, using: &random))
                #expect(copied == parsed, "\(text)")
            }
        }
    }

    static func value(_ random: inout SeededRandom, depth: Int) -> JSONValue {
        switch Int.random(in: 0..<(depth < 2 ? 9 : 6), using: &random) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &random))
        case 2: return .number(Double(Int64.random(in: -2_000_000_000_000...2_000_000_000_000, using: &random)))
        case 3: return .number(Double.random(in: -1e6...1e6, using: &random))
        case 4, 5:
            let pieces = ["a", "é", "\"", "\\", "\n", "/", "🏔️", " ", "\u{1}", "山"]
            return .string((0..<Int.random(in: 0..<8, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined())
        case 6: return .array((0..<Int.random(in: 0..<4, using: &random)).map { _ in Self.value(&random, depth: depth + 1) })
        case 7: return .array((0..<Int.random(in: 0..<4, using: &random)).map { _ in .string("t\(Int.random(in: 0..<9, using: &random))") })
        default: return .object(["k": Self.value(&random, depth: depth + 1)])
        }
    }
}
