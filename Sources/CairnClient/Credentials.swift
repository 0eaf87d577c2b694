import CairnCore
import Foundation
import Synchronization

/// The credentials a client holds: an API key, or a session (refresh token and the last access token).
public struct StoredCredentials: Codable, Sendable, Equatable {
    /// A long-lived API key (`cairn_…`), used as the bearer token as is.
    public var apiKey: String?
    /// The rotating refresh token of a login session.
    public var refreshToken: String?
    /// The last access token issued for the session.
    public var accessToken: String?

    public init(apiKey: String? = nil, refreshToken: String? = nil, accessToken: String? = nil) {
        self.apiKey = apiKey
        self.refreshToken = refreshToken
        self.accessToken = accessToken
    }
}

/// Where credentials are kept. Every refresh rotates the refresh token, so the new one must be
/// saved before it is used; a store shared by several processes must also serialize refreshes
/// (``lock()``), or two processes would spend the same refresh token and the server would revoke
/// the session.
public protocol CredentialStore: Sendable {
    /// The stored credentials, if any.
    func load() throws -> StoredCredentials?
    /// Replaces the stored credentials.
    func save(_ credentials: StoredCredentials) throws
    /// Takes the store's exclusive lock (for a refresh) and returns the function that releases it.
    func lock() async throws -> @Sendable () -> Void
}

/// How a client authenticates.
public struct ClientCredentials: Sendable {
    let store: any CredentialStore

    /// An API key (never refreshed).
    public static func apiKey(_ key: String) -> ClientCredentials {
        ClientCredentials(store: MemoryCredentialStore(StoredCredentials(apiKey: key)))
    }

    /// A login session: the refresh token from `POST /api/auth/login`, and its access token if at
    /// hand. Rotated tokens are kept in memory only.
    public static func session(refreshToken: String, accessToken: String? = nil) -> ClientCredentials {
        ClientCredentials(store: MemoryCredentialStore(StoredCredentials(refreshToken: refreshToken, accessToken: accessToken)))
    }

    /// ClientCredentials kept in a store of your own (a keychain, or a ``FileCredentialStore``).
    public static func stored(in store: any CredentialStore) -> ClientCredentials {
        ClientCredentials(store: store)
    }
}

/// ClientCredentials in memory, for one process.
public final class MemoryCredentialStore: CredentialStore {
    private let value: Mutex<StoredCredentials?>
    private let gate = AsyncGate()

    public init(_ credentials: StoredCredentials?) {
        self.value = Mutex(credentials)
    }

    public func load() throws -> StoredCredentials? { self.value.withLock { $0 } }
    public func save(_ credentials: StoredCredentials) throws { self.value.withLock { $0 = credentials } }
    public func lock() async throws -> @Sendable () -> Void { await self.gate.enter() }
}

/// ClientCredentials in a JSON file with mode 0600, shared safely by several processes (the `cairn`
/// CLI): refreshes take an exclusive `flock` on a sibling `.lock` file.
public final class FileCredentialStore: CredentialStore {
    /// The JSON file.
    public let url: URL
    private let gate = AsyncGate()

    public init(url: URL) {
        self.url = url
    }

    public func load() throws -> StoredCredentials? {
        guard let data = FileManager.default.contents(atPath: self.url.path), !data.isEmpty else { return nil }
        return try JSONDecoder().decode(StoredCredentials.self, from: data)
    }

    public func save(_ credentials: StoredCredentials) throws {
        try FileCredentialStore.writePrivately(try JSONEncoder().encode(credentials), to: self.url)
    }

    public func lock() async throws -> @Sendable () -> Void {
        let release = await self.gate.enter()
        do {
            let file = try await FileLock.acquire(path: self.url.path + ".lock", wait: .seconds(30))
            return { file.release(); release() }
        } catch {
            release()
            throw error
        }
    }

    /// Writes `data` to a temporary file created with mode 0600, fsyncs it and renames it over `url`.
    public static func writePrivately(_ data: Data, to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let temporary = url.path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw CairnClientError.invalid("cannot write \(url.path): \(String(cString: strerror(errno)))") }
        _ = fchmod(fd, 0o600)
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        fsync(fd)
        close(fd)
        guard written == data.count, rename(temporary, url.path) == 0 else {
            unlink(temporary)
            throw CairnClientError.invalid("cannot write \(url.path)")
        }
    }
}

/// An exclusive advisory lock on a file (`flock`), released when the process dies.
public final class FileLock: Sendable {
    private let fd: Int32

    private init(fd: Int32) {
        self.fd = fd
    }

    /// Takes the lock if it is free, else `nil`.
    public static func tryAcquire(path: String) throws -> FileLock? {
        try FileManager.default.createDirectory(
            at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
        let fd = open(path, O_RDWR | O_CREAT, 0o600)
        guard fd >= 0 else { throw CairnClientError.invalid("cannot open \(path): \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 { return FileLock(fd: fd) }
        close(fd)
        return nil
    }

    /// Waits (without blocking a thread) up to `wait` for the lock.
    public static func acquire(path: String, wait: Duration) async throws -> FileLock {
        let deadline = ContinuousClock.now + wait
        while true {
            if let lock = try tryAcquire(path: path) { return lock }
            if ContinuousClock.now >= deadline { throw CairnClientError.replicaLocked }
            try await Task.sleep(for: .milliseconds(25))
        }
    }

    /// Releases the lock.
    public func release() {
        flock(self.fd, LOCK_UN)
        close(self.fd)
    }
}

/// A FIFO async mutex: `enter()` suspends until the gate is free and returns its release.
final class AsyncGate: Sendable {
    private struct State {
        var busy = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func enter() async -> @Sendable () -> Void {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let admitted = self.state.withLock { state -> Bool in
                if state.busy {
                    state.waiters.append(continuation)
                    return false
                }
                state.busy = true
                return true
            }
            if admitted { continuation.resume() }
        }
        let released = Mutex(false)
        return { [self] in
            guard released.withLock({ done in defer { done = true }; return !done }) else { return }
            let next = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
                if state.waiters.isEmpty {
                    state.busy = false
                    return nil
                }
                return state.waiters.removeFirst()
            }
            next?.resume()
        }
    }
}

/// Hands out the bearer token and refreshes it when the server refuses it: one refresh in flight,
/// triggered by the server's 401 (never by the local clock alone), the rotated refresh token saved
/// before the new access token is used.
actor TokenProvider {
    private let store: any CredentialStore
    private let http: HTTPClient
    private var refreshing: Task<String, any Error>?

    init(store: any CredentialStore, http: HTTPClient) {
        self.store = store
        self.http = http
    }

    /// The token to send now.
    func current() async throws -> String {
        if let refreshing { return try await refreshing.value }
        guard let stored = try self.store.load() else { throw CairnClientError.unauthorized }
        if let key = stored.apiKey { return key }
        if let token = stored.accessToken { return token }
        return try await self.refreshed(after: nil)
    }

    /// A new token after the server refused `failed`. Concurrent callers share one refresh; a token
    /// another process already refreshed is picked up from the store instead of refreshing again.
    func refreshed(after failed: String?) async throws -> String {
        if let refreshing { return try await refreshing.value }
        let task = Task { [store, http] () throws -> String in
            let release = try await store.lock()
            defer { release() }
            guard let stored = try store.load() else { throw CairnClientError.unauthorized }
            if stored.apiKey != nil { throw CairnClientError.unauthorized }
            if let token = stored.accessToken, token != failed { return token }
            guard let refreshToken = stored.refreshToken else { throw CairnClientError.unauthorized }
            let response: AuthResponse
            do {
                response = try await http.send("POST", "api/auth/refresh", body: RefreshRequest(refreshToken: refreshToken), token: nil)
            } catch CairnClientError.server(let status, _, _) where status == 401 {
                throw CairnClientError.unauthorized
            }
            try store.save(StoredCredentials(refreshToken: response.refreshToken, accessToken: response.token))
            return response.token
        }
        self.refreshing = task
        defer { self.refreshing = nil }
        return try await task.value
    }
}
