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
    ]

    @Test func readsWhatJSONDecoderReads() throws {
        for text in Self.documents {
            let expected = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
            #expect(try JSONValue.parse(text) == expected, "\(text)")
        }
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
        #expect(value.jsonText == String(decoding: try encoder.encode(value), as: UTF8.self))
        #expect(JSONValue.object(["b": 1, "a": 2]).jsonText == #"{"a":2,"b":1}"#)
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
}
