import Testing

@testable import CairnServer

@Suite("Sibling orders kept between pull pages")
struct SiblingOrderCacheTests {
    static func order(_ count: Int, prefix: String = "id") -> [String: Int] {
        Dictionary(uniqueKeysWithValues: (0..<count).map { ("\(prefix)\($0)", $0) })
    }

    @Test func anOrderIsHandedOutOnlyAtItsOwnSequence() {
        let cache = SiblingOrderCache(capacity: 100)
        cache.keep(Self.order(10), profileId: "p", parentId: "toolbar", sequence: 7)
        #expect(cache.order(profileId: "p", parentId: "toolbar", sequence: 7)?["id3"] == 3)
        #expect(cache.order(profileId: "p", parentId: "toolbar", sequence: 8) == nil)
        #expect(cache.order(profileId: "p", parentId: "menu", sequence: 7) == nil)
        #expect(cache.order(profileId: "q", parentId: "toolbar", sequence: 7) == nil)
        #expect(cache.order(profileId: "p", parentId: nil, sequence: 7) == nil)
        // A newer read of the same folder replaces the old one; an older one does not.
        cache.keep(Self.order(4), profileId: "p", parentId: "toolbar", sequence: 9)
        #expect(cache.order(profileId: "p", parentId: "toolbar", sequence: 7) == nil)
        #expect(cache.order(profileId: "p", parentId: "toolbar", sequence: 9)?.count == 4)
        #expect(cache.held == 4)
        cache.keep(Self.order(6), profileId: "p", parentId: "toolbar", sequence: 8)
        #expect(cache.order(profileId: "p", parentId: "toolbar", sequence: 8) == nil)
        #expect(cache.order(profileId: "p", parentId: "toolbar", sequence: 9)?.count == 4)
        #expect(cache.held == 4)
    }

    @Test func theLeastRecentlyUsedOrdersMakeRoomAndAnOversizedOneIsNotKept() {
        let cache = SiblingOrderCache(capacity: 100)
        cache.keep(Self.order(40), profileId: "p", parentId: "a", sequence: 1)
        cache.keep(Self.order(40), profileId: "p", parentId: "b", sequence: 1)
        _ = cache.order(profileId: "p", parentId: "a", sequence: 1)
        cache.keep(Self.order(40), profileId: "p", parentId: "c", sequence: 1)
        #expect(cache.order(profileId: "p", parentId: "b", sequence: 1) == nil, "b was used least recently")
        #expect(cache.order(profileId: "p", parentId: "a", sequence: 1) != nil)
        #expect(cache.order(profileId: "p", parentId: "c", sequence: 1) != nil)
        #expect(cache.held == 80)
        cache.keep(Self.order(101), profileId: "p", parentId: "d", sequence: 1)
        #expect(cache.order(profileId: "p", parentId: "d", sequence: 1) == nil)
        #expect(cache.held == 80)
    }
}
