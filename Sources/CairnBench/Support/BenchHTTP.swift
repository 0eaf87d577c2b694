import Foundation

/// One HTTP answer: the status and the raw body (decoded later, outside the timed section).
struct HTTPAnswer: Sendable {
    let status: Int
    let body: Data

    /// Decodes the body as `T`, or throws ``BenchError/unexpected(_:)`` with the body's start.
    func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: self.body)
        } catch {
            throw BenchError.unexpected("\(T.self) from HTTP \(self.status): \(String(decoding: self.body.prefix(300), as: UTF8.self))")
        }
    }
}

/// A client of the server under test: one keep-alive loopback connection and, once signed in,
/// a bearer token. Requests of one client go one at a time; concurrent clients are separate
/// instances.
struct BenchHTTP: Sendable {
    let baseURL: URL
    let token: String?
    private let connection: HTTPConnection

    init(baseURL: URL) {
        self.init(baseURL: baseURL, token: nil, connection: HTTPConnection(port: UInt16(baseURL.port ?? 80)))
    }

    private init(baseURL: URL, token: String?, connection: HTTPConnection) {
        self.baseURL = baseURL
        self.token = token
        self.connection = connection
    }

    /// The same client (and connection) sending `Authorization: Bearer token`.
    func signedIn(_ token: String) -> BenchHTTP {
        BenchHTTP(baseURL: self.baseURL, token: token, connection: self.connection)
    }

    /// Sends one request; any status is returned, transport failures throw.
    func send(
        _ method: String, _ path: String, query: [URLQueryItem] = [], body: Data? = nil,
        contentType: String = "application/json", headers: [String: String] = [:]
    ) async throws -> HTTPAnswer {
        try await self.connection.exchange(self.request(method, path, query: query, body: body, contentType: contentType, headers: headers))
    }

    /// The bytes of one request, for ``send(_:)``.
    func request(
        _ method: String, _ path: String, query: [URLQueryItem] = [], body: Data? = nil,
        contentType: String = "application/json", headers: [String: String] = [:]
    ) -> [UInt8] {
        var target = "/" + path
        if !query.isEmpty {
            var components = URLComponents()
            components.queryItems = query
            target += "?" + (components.percentEncodedQuery ?? "")
        }
        var head = "\(method) \(target) HTTP/1.1\r\nHost: \(self.baseURL.host ?? "127.0.0.1"):\(self.baseURL.port ?? 80)\r\n"
        if let token = self.token { head += "Authorization: Bearer \(token)\r\n" }
        if let body { head += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n" }
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        return Array(head.utf8) + (body.map(Array.init) ?? [])
    }

    /// Sends requests built by ``request(_:_:query:body:contentType:headers:)`` one after the
    /// other, each once the answer of the one before has come, and requires `status` of each:
    /// the sequence stops at the first answer of another status, reported with its place. They
    /// go from one thread in one loop, as a device's sync loop sends its batches: no hop between
    /// threads per request, which on this 2-core machine cost the client about a tenth of a
    /// millisecond per exchange, counted into the server's time (docs/benchmarks.md, session 23).
    func send(_ requests: [[UInt8]], expecting status: Int, budget: Budget) async throws -> [HTTPAnswer] {
        let answers = try await self.connection.exchange(requests, expecting: status, deadline: budget.deadline)
        if let last = answers.last, last.status != status {
            let start = String(decoding: last.body.prefix(300), as: UTF8.self)
            throw BenchError.unexpected("request \(answers.count) of \(requests.count) answered \(last.status), expected \(status): \(start)")
        }
        guard answers.count == requests.count else { throw BenchError.overBudget(budget.workload) }
        return answers
    }

    /// Sends one request and requires `status`; otherwise throws with the answer's start.
    func expect(
        _ status: Int, _ method: String, _ path: String, query: [URLQueryItem] = [], body: Data? = nil,
        contentType: String = "application/json", headers: [String: String] = [:]
    ) async throws -> HTTPAnswer {
        let answer = try await self.send(method, path, query: query, body: body, contentType: contentType, headers: headers)
        guard answer.status == status else {
            let start = String(decoding: answer.body.prefix(300), as: UTF8.self)
            throw BenchError.unexpected("\(method) /\(path) answered \(answer.status), expected \(status): \(start)")
        }
        return answer
    }

    /// Registers a fresh account and returns this client signed in as it.
    func registerAccount(_ name: String) async throws -> BenchHTTP {
        let email = "\(name)-\(UUID().uuidString.prefix(8).lowercased())@bench.example"
        let body = try JSONEncoder().encode(["email": email, "password": "bench-password-123"])
        let answer = try await self.expect(201, "POST", "api/auth/register", body: body)
        return self.signedIn(try answer.decode(Wire.SignedIn.self).token)
    }
}
