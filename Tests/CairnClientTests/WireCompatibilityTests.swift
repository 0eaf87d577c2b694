import CairnClient
import CairnCore
import Foundation
import Testing

/// The wire types the SDK sends and reads, checked from the client's side.
@Suite("Client wire compatibility")
struct WireCompatibilityTests {
    @Test(arguments: [
        ClientMessage.auth(token: "t", clientId: "phone", profile: "default"),
        .syncRequest(lastSyncVersion: 42, collections: ["bookmarks", "notes"]),
        .bookmarkCreate(id: "b1", data: ["title": "T", "url": "https://a.example"], opId: "op-1", hlc: HLC(wall: 5, node: "phone")),
        .bookmarkUpdate(id: "b1", data: ["title": "U"], expectedVersion: 7, opId: "op-2", hlc: nil),
        .bookmarkDelete(id: "b1", expectedVersion: 8, opId: "op-3"),
        .bookmarkMove(id: "b1", newParentId: "toolbar", newIndex: 2, expectedVersion: 9, opId: "op-4", hlc: nil, afterId: nil, beforeId: nil),
        .push(operations: [SyncOperation(opId: "op-5", type: .upsert, collection: "notes", id: "n1", data: ["x": 1])], atomic: true, strategy: .lww),
        .ping,
    ])
    func clientMessagesRoundTripThroughJSON(message: ClientMessage) throws {
        let data = try JSONEncoder().encode(message)
        let object = try JSONDecoder().decode(JSONValue.self, from: data)
        #expect(object["type"]?.stringValue == message.type)
        #expect(try JSONDecoder().decode(ClientMessage.self, from: data) == message)
    }

    @Test func decodesTheServersBookmarkShapeWithExplicitNulls() throws {
        let json = #"{"id":"b1","parentId":null,"title":"T","url":null,"favicon":null,"isFolder":true,"position":"V","sortOrder":0,"tags":[],"notes":null,"dateAdded":1,"dateModified":2,"syncVersion":3,"isDeleted":false,"deletedAt":null}"#
        let bookmark = try JSONDecoder().decode(Bookmark.self, from: Data(json.utf8))
        #expect(bookmark.parentId == nil)
        #expect(bookmark.isFolder)
        #expect(bookmark.syncVersion == 3)
    }

    @Test func refusesUnknownMessageTypes() {
        #expect(throws: ClientMessage.Malformed.self) {
            try JSONDecoder().decode(ClientMessage.self, from: Data(#"{"type":"teleport"}"#.utf8))
        }
    }
}
