import Testing

@testable import CairnServer

@Suite("Rate-limit keys of client addresses")
struct RateLimiterAddressTests {
    @Test func ipv4AddressesAreTheirOwnKey() {
        #expect(RateLimiter.addressKey("203.0.113.7") == "203.0.113.7")
        #expect(RateLimiter.addressKey(nil) == "unknown")
        #expect(RateLimiter.addressKey("") == "unknown")
    }

    @Test func ipv6AddressesShareTheirSlash64() {
        let a = RateLimiter.addressKey("2001:db8:1:2:aaaa:bbbb:cccc:dddd")
        #expect(a == "2001:db8:1:2::/64")
        #expect(RateLimiter.addressKey("2001:db8:1:2::1") == a)
        #expect(RateLimiter.addressKey("2001:DB8:1:2:0:0:0:9%eth0") == a)
        #expect(RateLimiter.addressKey("2001:db8:1:3::1") != a)
        #expect(RateLimiter.addressKey("::1") == "0:0:0:0::/64")
    }

    @Test func ipv4MappedAddressesAreTheirIPv4Address() {
        #expect(RateLimiter.addressKey("::ffff:198.51.100.4") == "198.51.100.4")
    }

    @Test func malformedAddressesStayDistinct() {
        #expect(RateLimiter.addressKey("1::2::3") == "1::2::3")
        #expect(RateLimiter.addressKey("zz::1") == "zz::1")
    }
}
