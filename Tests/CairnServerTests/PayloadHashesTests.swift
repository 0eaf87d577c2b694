import CairnCore
import Foundation
import Testing

@testable import CairnServer

/// A push's payload hashes are taken by a helper thread and by the transaction, whichever claims
/// an op first (`PayloadHashes`): every op gets its own hash, once, in any order of asking.
@Suite("Payload hashes")
struct PayloadHashesTests {
    static func ops(_ count: Int, _ tag: String) -> [SyncOperation] {
        (0..<count).map { index in
            .createBookmark("\(tag)-op-\(index)", id: "\(tag)-\(index)", title: "Bookmark \(index) \(tag)", url: "https://example.com/\(tag)/\(index)")
        }
    }

    @Test func everyOpGetsItsOwnHashWhileTheHelperRaces() async throws {
        for round in 0..<40 {
            let ops = Self.ops(round % 2 == 0 ? 300 : 17, "r\(round)")
            let expected = ops.map(BatchApplier.payloadHash)
            #expect(Set(expected).count == ops.count)
            let hashes = PayloadHashes(ops)
            hashes.start()
            // In order, as the engine asks; backwards (the transaction claims all up to the last
            // at once); or from the middle
            let order: [Int] =
                switch round % 3 {
                case 0: Array(ops.indices)
                case 1: Array(ops.indices.reversed())
                default: Array(ops.indices.dropFirst(ops.count / 2)) + Array(ops.indices.prefix(ops.count / 2))
                }
            for index in order { #expect(hashes.hash(index) == expected[index]) }
        }
    }

    @Test func aSmallPushIsHashedBeforeItsTransaction() {
        let ops = Self.ops(PayloadHashes.helperOperations - 1, "small")
        let hashes = PayloadHashes(ops)
        hashes.start()
        #expect(hashes.claimed == ops.count)
        #expect(ops.indices.map(hashes.hash) == ops.map(BatchApplier.payloadHash))
        // Without its helper, a larger push's transaction claims the ops up to the one it asks for
        let large = PayloadHashes(Self.ops(PayloadHashes.helperOperations, "large"))
        #expect(large.claimed == 0)
        #expect(large.hash(3) == BatchApplier.payloadHash(Self.ops(PayloadHashes.helperOperations, "large")[3]))
        #expect(large.claimed == 4)
        // After `cancel`, nothing more is claimed, and an op asked for is hashed all the same
        large.cancel()
        #expect(large.hash(9) == BatchApplier.payloadHash(Self.ops(PayloadHashes.helperOperations, "large")[9]))
    }

    /// Through the router: pushes of many ops (hashed by the helper) replay as duplicates, and an
    /// op id reused with another payload among them is refused.
    @Test func replaysOfLargePushesAreDuplicatesAndAReusedOpIdIsRefused() async throws {
        try await withTestServer { client, _ in
            let device = try await Device.register(client, "helper-hashes@example.com")
            let ops = Self.ops(60, "big")
            let first = try await device.push(ops)
            #expect(first.results.allSatisfy { $0.status == .applied })
            let replay = try await device.push(ops)
            #expect(replay.results.allSatisfy { $0.status == .duplicate })
            #expect(replay.results.map(\.version) == first.results.map(\.version))
            var changed = ops
            changed[41].data = .object(["title": .string("Another title"), "url": .string("https://example.com/big/41")])
            let mixed = try await device.push(changed)
            #expect(mixed.results.enumerated().allSatisfy { $0.offset == 41 || $0.element.status == .duplicate })
            #expect(mixed.results[41].error?.code == "IDEMPOTENCY_MISMATCH")
            #expect(try await device.bookmark("big-41")?.title == "Bookmark 41 big")
        }
    }
}
