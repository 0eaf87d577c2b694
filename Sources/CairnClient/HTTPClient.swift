import CairnCore
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// JSON over HTTP to one Cairn server.
struct HTTPClient: Sendable {
    let baseURL: URL
    let timeout: TimeInterval
    let session: URLSession
    /// Called with the server's clock (the `Date` header, in ms) of every answer.
    let onServerDate: (@Sendable (Int64) -> Void)?

    init(baseURL: URL, timeout: TimeInterval = 30, onServerDate: (@Sendable (Int64) -> Void)? = nil) {
        self.baseURL = baseURL
        self.timeout = timeout
        self.onServerDate = onServerDate
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.httpShouldSetCookies = false
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        self.session = URLSession(configuration: configuration)
    }

    /// Sends a request and decodes the answer. Non-2xx answers throw ``CairnClientError/server``
    /// with the envelope's code; transport failures throw ``CairnClientError/offline``.
    func send<Response: Decodable>(
        _ method: String, _ path: String, query: [URLQueryItem] = [], body: (any Encodable)? = nil,
        token: String?, headers: [String: String] = [:]
    ) async throws -> Response {
        let data = try await self.raw(method, path, query: query, body: body, token: token, headers: headers)
        do {
            return try JSONDecoder().decode(Response.self, from: data.isEmpty ? Data("{}".utf8) : data)
        } catch {
            throw CairnClientError.server(status: 200, code: "MALFORMED_RESPONSE", message: "\(error)")
        }
    }

    /// Sends a request and returns the body of a 2xx answer.
    func raw(
        _ method: String, _ path: String, query: [URLQueryItem] = [], body: (any Encodable)? = nil,
        token: String?, headers: [String: String] = [:]
    ) async throws -> Data {
        var components = URLComponents(url: self.baseURL.appendingPathComponent(path), resolvingAgainstBaseURL: false)!
        if !query.isEmpty { components.queryItems = query }
        var request = URLRequest(url: components.url!)
        request.httpMethod = method
        request.timeoutInterval = self.timeout
        if let body {
            request.httpBody = try JSONEncoder().encode(body)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await self.session.data(for: request)
        } catch {
            throw CairnClientError.offline((error as? URLError).map { "\($0.code)" } ?? "\(error)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        if let onServerDate, let header = (response as? HTTPURLResponse)?.value(forHTTPHeaderField: "Date"),
            let date = Self.httpDate(header)
        {
            onServerDate(Int64(date.timeIntervalSince1970 * 1000))
        }
        guard (200..<300).contains(status) else {
            let envelope = try? JSONDecoder().decode(ErrorEnvelope.self, from: data)
            if status == 502 || status == 503 || status == 504, envelope == nil {
                throw CairnClientError.offline("HTTP \(status)")
            }
            throw CairnClientError.server(
                status: status, code: envelope?.error.code ?? "HTTP_\(status)",
                message: envelope?.error.message ?? HTTPURLResponse.localizedString(forStatusCode: status))
        }
        return data
    }
}

extension HTTPClient {
    /// Reads an HTTP date (`Sun, 22 Nov 2026 04:10:00 GMT`, RFC 9110 IMF-fixdate).
    static func httpDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }
}

/// An ``HTTPClient`` that authenticates every request and retries once with a refreshed token
/// when the server answers 401.
struct AuthorizedHTTP: Sendable {
    let http: HTTPClient
    let tokens: TokenProvider

    func send<Response: Decodable>(
        _ method: String, _ path: String, query: [URLQueryItem] = [], body: (any Encodable)? = nil,
        headers: [String: String] = [:]
    ) async throws -> Response {
        let data = try await self.raw(method, path, query: query, body: body, headers: headers)
        do {
            return try JSONDecoder().decode(Response.self, from: data.isEmpty ? Data("{}".utf8) : data)
        } catch {
            throw CairnClientError.server(status: 200, code: "MALFORMED_RESPONSE", message: "\(error)")
        }
    }

    func raw(
        _ method: String, _ path: String, query: [URLQueryItem] = [], body: (any Encodable)? = nil,
        headers: [String: String] = [:]
    ) async throws -> Data {
        let token = try await self.tokens.current()
        do {
            return try await self.http.raw(method, path, query: query, body: body, token: token, headers: headers)
        } catch CairnClientError.server(let status, _, _) where status == 401 {
            let fresh = try await self.tokens.refreshed(after: token)
            do {
                return try await self.http.raw(method, path, query: query, body: body, token: fresh, headers: headers)
            } catch CairnClientError.server(let status, _, _) where status == 401 {
                throw CairnClientError.unauthorized
            }
        }
    }
}
