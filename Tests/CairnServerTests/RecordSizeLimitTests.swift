import CairnCore
import Foundation
import Testing

@testable import CairnServer

/// A record's data is measured as the compact JSON text the store writes, and that same text is
/// what the store keeps (`RecordRules.encodedWithinLimit`): a record of exactly
/// `maxRecordBytes` is kept whole, one byte more is refused with nothing written, on create and
/// on update, for records and bookmarks.
@Suite("Record size limit")
struct RecordSizeLimitTests {
    static let limit = Limits().maxRecordBytes

    /// `{"pad":"xxx…"}` of `bytes` bytes of compact JSON.
    static func padded(_ bytes: Int, with character: Character = "x") -> [String: JSONValue] {
        ["pad": .string(String(repeating: character, count: bytes - #"{"pad":""}"#.utf8.count))]
    }

    @Test func aRecordOfExactlyTheLimitIsKeptWholeAndOneByteMoreIsRefused() async throws {
        try await withTestServer { client, components in
            let device = try await Device.register(client, "size-limit@example.com")
            let atLimit = Self.padded(Self.limit)
            #expect(JSONValue.jsonText(atLimit).utf8.count == Self.limit)
            let created = try await device.push([
                SyncOperation(opId: "fits", type: .create, collection: "notes", id: "n1", data: .object(atLimit)),
                SyncOperation(opId: "over", type: .create, collection: "notes", id: "n2", data: .object(Self.padded(Self.limit + 1))),
            ])
            #expect(created.results.map(\.status) == [.applied, .rejected])
            #expect(created.results[1].error?.code == "PAYLOAD_TOO_LARGE")

            // Updated to one byte over: refused, the record unchanged; then to the limit exactly
            let grown = try await device.push([
                SyncOperation(opId: "grow", type: .update, collection: "notes", id: "n1", data: .object(Self.padded(Self.limit + 1, with: "y")))
            ])
            #expect(grown.results.first?.error?.code == "PAYLOAD_TOO_LARGE")
            let store = try #require(components.store as? SQLiteSyncStore)
            let unchanged = try await store.pool.read { db in
                try String.fetchOne(db, sql: "SELECT data FROM records WHERE collection = 'notes' AND id = 'n1'")
            }
            #expect(unchanged == JSONValue.jsonText(atLimit))
            let refilled = try await device.push([
                SyncOperation(opId: "refill", type: .update, collection: "notes", id: "n1", data: .object(Self.padded(Self.limit, with: "z")))
            ])
            #expect(refilled.results.first?.status == .applied)

            // The store holds the text measured, and nothing of the refused ops
            let rows = try await store.pool.read { db in
                try String.fetchAll(db, sql: "SELECT data FROM records WHERE collection = 'notes' ORDER BY id")
            }
            #expect(rows == [JSONValue.jsonText(Self.padded(Self.limit, with: "z"))])
        }
    }

    /// Each bookmark field has its own bound, under the default record limit; a server with a
    /// lower one measures the whole stored bookmark (its server fields too).
    @Test func aBookmarkOverALowerLimitIsRefusedOnCreateAndUpdate() async throws {
        try await withTestServer(configure: { $0.limits.maxRecordBytes = 2048 }) { client, components in
            let device = try await Device.register(client, "size-limit-bookmark@example.com")
            let notes = String(repeating: "n", count: 2000)
            let create = try await device.push([
                .createBookmark("small", id: "b1", title: "Small", url: "https://small.example"),
                .createBookmark("big", id: "b2", title: notes, url: "https://big.example"),
            ])
            #expect(create.results.map(\.status) == [.applied, .rejected])
            #expect(create.results[1].error?.code == "PAYLOAD_TOO_LARGE")
            let update = try await device.push([.updateBookmark("grow", id: "b1", ["notes": .string(notes)], expected: nil)])
            #expect(update.results.first?.error?.code == "PAYLOAD_TOO_LARGE")
            let fits = try await device.push([.updateBookmark("fits", id: "b1", ["notes": .string(String(notes.prefix(1500)))], expected: nil)])
            #expect(fits.results.first?.status == .applied)
            #expect(try await device.bookmark("b1")?.title == "Small")
            #expect(try await device.bookmark("b2") == nil)
            let store = try #require(components.store as? SQLiteSyncStore)
            let stored = try await store.pool.read { db in
                try String.fetchOne(db, sql: "SELECT data FROM records WHERE collection = 'bookmarks' AND id = 'b1'")
            }
            let text = try #require(stored)
            #expect(text.utf8.count <= 2048)
            #expect(try JSONValue.parse(text)["notes"]?.stringValue == String(notes.prefix(1500)))
        }
    }
}
