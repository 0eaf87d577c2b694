import CairnCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import CairnServer

@Suite("HTTP behaviour: limits, headers, CORS, probes")
struct HTTPBehaviourTests {
    @Test func authRoutesAreRateLimitedPerIPWithRetryAfter() async throws {
        try await withTestServer(configure: { $0.authBurst = 3; $0.authRatePerMinute = 3 }) { client, _ in
            var statuses: [HTTPResponse.Status] = []
            var last: TestResponse?
            for _ in 0..<5 {
                let response = try await client.post("/api/auth/login", try jsonBody(Credentials(email: "x@example.com", password: "whatever pw")))
                statuses.append(response.status)
                last = response
            }
            #expect(statuses.prefix(3).allSatisfy { $0 == .unauthorized })
            #expect(statuses.suffix(2).allSatisfy { $0 == .tooManyRequests })
            let response = try #require(last)
            #expect(try decode(ErrorEnvelope.self, response).error.code == "RATE_LIMITED")
            let retryAfter = try #require(response.headers[.retryAfter].flatMap { Int($0) })
            #expect(retryAfter >= 1)
        }
    }

    @Test func apiIsRateLimitedPerUser() async throws {
        try await withTestServer(configure: { $0.apiBurst = 5; $0.apiRatePerMinute = 1 }) { client, _ in
            let alice = try await client.register("rl-a@example.com")
            let bob = try await client.register("rl-b@example.com")
            for _ in 0..<5 { #expect(try await client.get("/api/me", token: alice.token).status == .ok) }
            let limited = try await client.get("/api/me", token: alice.token)
            #expect(limited.status == .tooManyRequests)
            #expect(limited.headers[.retryAfter] != nil)
            // Another user is not affected
            #expect(try await client.get("/api/me", token: bob.token).status == .ok)
        }
    }

    @Test func failedLoginsOfAnAttackerDoNotLockTheVictimOut() async throws {
        try await withTestServer(configure: { $0.loginFailureBurst = 3; $0.loginFailuresPerMinute = 1; $0.trustedProxies = [] }) { client, components in
            _ = try await client.register("victim@example.com")
            let limiter = RateLimiter(perMinute: 1, burst: 3)
            // The attacker's failures are keyed by (email, attacker IP)…
            for _ in 0..<10 { _ = limiter.acquire("login:victim@example.com|203.0.113.9") }
            #expect(limiter.wouldAllow("login:victim@example.com|203.0.113.9") == false)
            // …so the victim's own address still may sign in.
            #expect(limiter.wouldAllow("login:victim@example.com|198.51.100.7"))
            // And through the router: failures from one address lock only that address out.
            for _ in 0..<3 {
                _ = try await client.post("/api/auth/login", try jsonBody(Credentials(email: "victim@example.com", password: "wrong password")))
            }
            let blocked = try await client.post("/api/auth/login", try jsonBody(Credentials(email: "victim@example.com", password: "correct horse battery staple")))
            #expect(blocked.status == .tooManyRequests)
            #expect(components.configuration.loginFailureBurst == 3)
        }
    }

    @Test func bodyOverFiveMiBGets413() async throws {
        try await withTestServer { client, _ in
            let big = ByteBuffer(repeating: UInt8(ascii: "a"), count: 6 * 1024 * 1024)
            let response = try await client.post("/api/auth/register", big)
            #expect(response.status == .contentTooLarge)
            #expect(try decode(ErrorEnvelope.self, response).error.code == "PAYLOAD_TOO_LARGE")
            #expect(response.headers[.xContentTypeOptions] == "nosniff")
        }
    }

    @Test func deeplyNestedJSONIsRefusedBeforeDecoding() async throws {
        try await withTestServer { client, _ in
            let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
            let response = try await client.post("/api/auth/register", jsonBody(#"{"email":"a@b.co","password":"longenough","x":\#(deep)}"#))
            #expect(response.status == .badRequest)
            #expect(try decode(ErrorEnvelope.self, response).error.code == "VALIDATION_ERROR")
        }
    }

    @Test func corsEchoesOnlyAllowlistedOrigins() async throws {
        try await withTestServer(configure: { $0.corsOrigins = ["https://app.example.com", "chrome-extension://*"] }) { client, _ in
            let allowed = try await client.get("/api/info", headers: [.origin: "https://app.example.com"])
            #expect(allowed.headers[.accessControlAllowOrigin] == "https://app.example.com")
            let extensionOrigin = try await client.get("/api/info", headers: [.origin: "chrome-extension://abcdefghijkl"])
            #expect(extensionOrigin.headers[.accessControlAllowOrigin] == "chrome-extension://abcdefghijkl")
            for origin in ["https://evil.example.com", "null", "https://app.example.com.evil.com", "moz-extension://abc"] {
                let foreign = try await client.get("/api/info", headers: [.origin: origin])
                #expect(foreign.headers[.accessControlAllowOrigin] == nil, "\(origin)")
            }
            let preflight = try await client.execute(
                uri: "/api/me", method: .options,
                headers: [.origin: "https://app.example.com", .accessControlRequestMethod: "GET"]
            )
            #expect(preflight.status == .noContent)
            #expect(preflight.headers[.accessControlAllowOrigin] == "https://app.example.com")
            #expect(preflight.headers[.accessControlAllowHeaders]?.contains("Authorization") == true)
            let foreignPreflight = try await client.execute(
                uri: "/api/me", method: .options,
                headers: [.origin: "https://evil.example.com", .accessControlRequestMethod: "GET"]
            )
            #expect(foreignPreflight.headers[.accessControlAllowOrigin] == nil)
        }
    }

    @Test func everyResponseCarriesNosniffAndApiResponsesNoStore() async throws {
        try await withTestServer { client, _ in
            let session = try await client.register("headers@example.com")
            let responses = [
                try await client.get("/healthz"),
                try await client.get("/api/info"),
                try await client.get("/api/me", token: session.token),
                try await client.get("/api/me"),
                try await client.get("/api/does-not-exist"),
                try await client.get("/nowhere"),
                try await client.post("/api/auth/login", jsonBody("{")),
            ]
            for response in responses {
                #expect(response.headers[.xContentTypeOptions] == "nosniff")
                #expect(response.headers[.xRequestID] != nil)
            }
            for response in responses[1...4] {
                #expect(response.headers[.cacheControl] == "no-store")
            }
        }
    }

    @Test func unknownRoutesGetTheErrorEnvelope() async throws {
        try await withTestServer { client, _ in
            let response = try await client.get("/api/nothing-here")
            #expect(response.status == .notFound || response.status == .unauthorized)
            let envelope = try decode(ErrorEnvelope.self, response)
            #expect(["NOT_FOUND", "UNAUTHORIZED"].contains(envelope.error.code))
            let root = try await client.get("/nothing-here")
            #expect(root.status == .notFound)
            #expect(try decode(ErrorEnvelope.self, root).error.code == "NOT_FOUND")
        }
    }

    @Test func aWrongMethodOnAServedPathIs405WithAllow() async throws {
        try await withTestServer { client, _ in
            let info = try await client.execute(uri: "/api/info", method: .delete)
            #expect(info.status == .methodNotAllowed)
            #expect(info.headers[.allow] == "GET")
            #expect(try decode(ErrorEnvelope.self, info).error.code == "METHOD_NOT_ALLOWED")
            // a parameterised path, before any authentication
            let record = try await client.execute(uri: "/api/records/notes/n1", method: .post)
            #expect(record.status == .methodNotAllowed)
            #expect(record.headers[.allow] == "DELETE, GET, PATCH, PUT")
            let push = try await client.execute(uri: "/api/sync/push", method: .put)
            #expect(push.status == .methodNotAllowed)
            #expect(push.headers[.allow] == "POST")
            // a path nobody serves stays 404
            #expect(try await client.execute(uri: "/api/records", method: .delete).status == .notFound)
        }
    }

    @Test func infoAdvertisesLimitsAndRegistration() async throws {
        try await withTestServer { client, _ in
            let response = try await client.get("/api/info")
            #expect(response.status == .ok)
            let info = try decode(JSONValue.self, response)
            #expect(info["registrationOpen"] == .bool(true))
            #expect(info["storage"] == .string("sqlite"))
            #expect(info["limits"]?["maxBodyBytes"] == .number(Double(5 * 1024 * 1024)))
            #expect(info["limits"]?["maxOpsPerPush"] == .number(1000))
        }
    }

    @Test func probesAnswer() async throws {
        try await withTestServer { client, _ in
            let health = try await client.get("/healthz")
            #expect(health.status == .ok)
            let ready = try decode(JSONValue.self, try await client.get("/readyz"))
            #expect(ready["status"] == .string("ready"))
        }
    }

    @Test func metricsCountRequestsByRouteAndAuthFailures() async throws {
        try await withTestServer { client, _ in
            _ = try await client.get("/api/me")
            _ = try await client.get("/healthz")
            let metrics = try await client.get("/metrics")
            #expect(metrics.status == .ok)
            let text = String(buffer: metrics.body)
            #expect(text.contains("cairn_http_requests_total"))
            #expect(text.contains(#"route="/healthz""#))
            #expect(text.contains("cairn_auth_failures_total 1"))
            #expect(text.contains("cairn_http_request_duration_seconds_bucket"))
        }
    }

    @Test func openAPIDocumentDescribesEveryRegisteredRoute() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let components = try await makeServer(configuration: testConfiguration(directory: directory.url))
        let router = buildRouter(components)
        let document = OpenAPIDocument.document(limits: Limits())
        let paths = try #require(document["paths"]?.objectValue)
        #expect(document["openapi"] == .string("3.1.0"))
        #expect(router.routes.count >= 12)
        for route in router.routes {
            let path = "/" + route.path.description.split(separator: "/").map { segment in
                segment.hasPrefix(":") ? "{\(segment.dropFirst())}" : String(segment)
            }.joined(separator: "/")
            let method = route.method.rawValue.lowercased()
            #expect(paths[path]?[method] != nil, "\(route.method) \(path) is missing from the OpenAPI document")
        }
        // and the document mentions nothing the router does not serve
        let served = Set(router.routes.map { route in
            "/" + route.path.description.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
        })
        for path in paths.keys { #expect(served.contains(path), "\(path) is documented but not routed") }
    }

    @Test func openAPIDocumentIsServed() async throws {
        try await withTestServer { client, _ in
            let response = try await client.get("/openapi.json")
            #expect(response.status == .ok)
            let document = try decode(JSONValue.self, response)
            #expect(document["paths"]?["/api/auth/login"]?["post"] != nil)
        }
    }

    @Test func theRequestLogWritesDurationsInMillisecondsWithTwoDecimals() {
        #expect(RequestLogMiddleware<CairnRequestContext>.milliseconds(.zero) == "0.00")
        #expect(RequestLogMiddleware<CairnRequestContext>.milliseconds(.nanoseconds(4_999)) == "0.00")
        #expect(RequestLogMiddleware<CairnRequestContext>.milliseconds(.nanoseconds(5_000)) == "0.01")
        #expect(RequestLogMiddleware<CairnRequestContext>.milliseconds(.microseconds(1_500)) == "1.50")
        #expect(RequestLogMiddleware<CairnRequestContext>.milliseconds(.microseconds(12_345)) == "12.35")
        #expect(RequestLogMiddleware<CairnRequestContext>.milliseconds(.microseconds(99_996)) == "100.00")
        #expect(RequestLogMiddleware<CairnRequestContext>.milliseconds(.seconds(3) + .microseconds(70)) == "3000.07")
    }
}
