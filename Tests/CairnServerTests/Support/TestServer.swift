import CairnCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import CairnServer

/// A fresh data directory per test, removed afterwards.
struct TemporaryDirectory {
    let url: URL

    init() throws {
        self.url = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.url, withIntermediateDirectories: true)
    }

    func remove() {
        try? FileManager.default.removeItem(at: self.url)
    }
}

/// A test configuration: a temporary data directory, fast bcrypt, the given clock.
func testConfiguration(directory: URL, clock: ServerClock = .system) -> ServerConfiguration {
    var configuration = ServerConfiguration()
    configuration.host = "127.0.0.1"
    configuration.port = 0
    configuration.dataDirectory = directory
    configuration.bcryptCost = 4
    configuration.logLevel = .error
    configuration.clock = clock
    return configuration
}

/// Builds a server on a fresh directory and runs `body` against the real router.
func withTestServer<T: Sendable>(
    configure: (inout ServerConfiguration) -> Void = { _ in },
    clock: ServerClock = .system,
    _ body: @Sendable (any TestClientProtocol, CairnServerComponents) async throws -> T
) async throws -> T {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    let app = try await makeTestApplication(directory: directory, configure: configure, clock: clock)
    let components = app.components
    return try await app.application.test(.router) { client in
        try await body(client, components)
    }
}

/// Components and the application for a test, on `directory`.
func makeTestApplication(
    directory: TemporaryDirectory, configure: (inout ServerConfiguration) -> Void, clock: ServerClock
) async throws -> (application: some ApplicationProtocol, components: CairnServerComponents) {
    var configuration = testConfiguration(directory: directory.url, clock: clock)
    configure(&configuration)
    let components = try await makeServer(configuration: configuration)
    return (buildApplication(components), components)
}

let jsonHeaders: HTTPFields = [.contentType: "application/json"]

func bearer(_ token: String) -> HTTPFields {
    [.contentType: "application/json", .authorization: "Bearer \(token)"]
}

func jsonBody(_ object: some Encodable) throws -> ByteBuffer {
    ByteBuffer(bytes: try JSONEncoder().encode(object))
}

func jsonBody(_ string: String) -> ByteBuffer {
    ByteBuffer(string: string)
}

func decode<T: Decodable>(_ type: T.Type, _ response: TestResponse) throws -> T {
    try JSONDecoder().decode(T.self, from: Data(buffer: response.body))
}

extension Data {
    init(buffer: ByteBuffer) {
        self.init(buffer.readableBytesView)
    }
}

extension TestClientProtocol {
    /// Registers an account and returns the auth answer.
    func register(_ email: String, password: String = "correct horse battery staple") async throws -> AuthResponse {
        try await self.execute(
            uri: "/api/auth/register", method: .post, headers: jsonHeaders,
            body: try jsonBody(Credentials(email: email, password: password))
        ) { response in
            #expect(response.status == .created)
            return try decode(AuthResponse.self, response)
        }
    }

    /// POSTs JSON and returns the response.
    func post(_ uri: String, _ body: ByteBuffer, token: String? = nil, headers extra: HTTPFields = [:]) async throws -> TestResponse {
        var headers = token.map(bearer) ?? jsonHeaders
        headers.append(contentsOf: extra)
        return try await self.execute(uri: uri, method: .post, headers: headers, body: body)
    }

    /// GETs with an optional bearer credential.
    func get(_ uri: String, token: String? = nil, headers extra: HTTPFields = [:]) async throws -> TestResponse {
        var headers: HTTPFields = token.map { [.authorization: "Bearer \($0)"] } ?? [:]
        headers.append(contentsOf: extra)
        return try await self.execute(uri: uri, method: .get, headers: headers)
    }
}

/// The exact body every authentication failure must have.
let uniformUnauthorizedBody = #"{"error":{"code":"UNAUTHORIZED","message":"Authentication required"}}"#
