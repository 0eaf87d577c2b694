import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One keep-alive HTTP/1.1 connection to `127.0.0.1:port` over a blocking POSIX socket.
///
/// URLSession on Linux was measured burning more CPU than the server while it waited for an
/// answer (libdispatch sources around libcurl), which on a small machine takes the CPU the server
/// is being measured on. This client does nothing between sending and reading. Every use of the
/// socket runs on the connection's serial queue, off Swift's cooperative threads (hence
/// `@unchecked Sendable`: the mutable state is confined to that queue).
final class HTTPConnection: @unchecked Sendable {
    /// Longest wait for one send or receive on the socket.
    static let socketTimeoutSeconds = 120

    private let port: UInt16
    private let queue: DispatchQueue
    private var socket: Int32 = -1
    /// Bytes received and not consumed yet.
    private var buffer: [UInt8] = []
    /// Where `recv` writes, reused.
    private var chunk = [UInt8](repeating: 0, count: 1 << 16)

    init(port: UInt16) {
        self.port = port
        self.queue = DispatchQueue(label: "cairn-bench.http")
    }

    deinit {
        if self.socket >= 0 { close(self.socket) }
    }

    /// Sends one complete request and reads its answer.
    func exchange(_ request: [UInt8]) async throws -> HTTPAnswer {
        try await self.onQueue { try self.exchangeNow(request) }
    }

    /// Sends `requests` one after the other, each once the answer of the one before has come,
    /// all on the connection's queue in one turn. Stops early, with the answers so far, once
    /// `deadline` has passed or after an answer whose status is not `status`.
    func exchange(_ requests: [[UInt8]], expecting status: Int, deadline: ContinuousClock.Instant) async throws -> [HTTPAnswer] {
        try await self.onQueue {
            var answers: [HTTPAnswer] = []
            answers.reserveCapacity(requests.count)
            for request in requests {
                if ContinuousClock.now > deadline { break }
                let answer = try self.exchangeNow(request)
                answers.append(answer)
                if answer.status != status { break }
            }
            return answers
        }
    }

    /// Runs `work` on the connection's queue (where every use of the socket runs) and returns
    /// its value to the caller's task.
    private func onQueue<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            self.queue.async { continuation.resume(with: Result { try work() }) }
        }
    }

    private func exchangeNow(_ request: [UInt8]) throws -> HTTPAnswer {
        // Between requests the socket has nothing to read, unless the server closed it (idle timeout).
        if self.socket >= 0, self.isReadable { self.disconnect() }
        if self.socket < 0 { try self.connect() }
        do {
            try self.writeAll(request)
            return try self.readAnswer()
        } catch {
            self.disconnect()
            throw error
        }
    }

    private func connect() throws {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError.server("socket() failed: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: Self.socketTimeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(self.port.bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw BenchError.server("cannot connect to 127.0.0.1:\(self.port): errno \(errno)")
        }
        self.socket = fd
        self.buffer = []
    }

    private func disconnect() {
        if self.socket >= 0 { close(self.socket) }
        self.socket = -1
        self.buffer = []
    }

    /// Whether a read would not block: on an idle keep-alive connection, the server closed it.
    private var isReadable: Bool {
        var descriptor = pollfd(fd: self.socket, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) > 0
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { send(self.socket, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw BenchError.server("send failed: errno \(errno)") }
            offset += written
        }
    }

    /// Receives more bytes into `buffer`; throws when the server closed the connection.
    private func receive() throws {
        let count = self.chunk.withUnsafeMutableBytes { recv(self.socket, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { throw BenchError.server(count == 0 ? "the server closed the connection" : "recv failed: errno \(errno)") }
        self.buffer.append(contentsOf: self.chunk[0..<count])
    }

    /// Removes and returns the first `count` buffered bytes, receiving until there are that many.
    private func take(_ count: Int) throws -> [UInt8] {
        while self.buffer.count < count { try self.receive() }
        defer { self.buffer.removeFirst(count) }
        return Array(self.buffer[0..<count])
    }

    /// Removes and returns buffered bytes up to `delimiter` (which is consumed, not returned).
    private func take(until delimiter: [UInt8]) throws -> [UInt8] {
        var searchFrom = 0
        while true {
            if let end = self.firstIndex(of: delimiter, from: searchFrom) {
                let bytes = Array(self.buffer[0..<end])
                self.buffer.removeFirst(end + delimiter.count)
                return bytes
            }
            searchFrom = max(0, self.buffer.count - delimiter.count + 1)
            try self.receive()
        }
    }

    private func firstIndex(of delimiter: [UInt8], from start: Int) -> Int? {
        guard self.buffer.count >= delimiter.count, start <= self.buffer.count - delimiter.count else { return nil }
        for index in start...(self.buffer.count - delimiter.count) where self.buffer[index] == delimiter[0] {
            if self.buffer[index..<(index + delimiter.count)].elementsEqual(delimiter) { return index }
        }
        return nil
    }

    /// Reads one answer: the status line and headers, then a body framed by `Content-Length` or
    /// chunked transfer encoding.
    private func readAnswer() throws -> HTTPAnswer {
        let crlf: [UInt8] = [13, 10]
        let head = String(decoding: try self.take(until: crlf + crlf), as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw BenchError.unexpected("HTTP status line '\(head.prefix(80))'") }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body: [UInt8] = []
        if let length = headers["content-length"].flatMap(Int.init) {
            body = try self.take(length)
        } else if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            while true {
                let sizeLine = String(decoding: try self.take(until: crlf), as: UTF8.self)
                guard let size = Int(sizeLine.split(separator: ";")[0].trimmingCharacters(in: .whitespaces), radix: 16) else {
                    throw BenchError.unexpected("chunk size '\(sizeLine.prefix(40))'")
                }
                if size == 0 {
                    while !(try self.take(until: crlf)).isEmpty {}  // trailers, then the empty line
                    break
                }
                body += try self.take(size)
                _ = try self.take(2)
            }
        } else if status != 204 && status != 304 {
            throw BenchError.unexpected("an answer without Content-Length or chunked encoding (HTTP \(status))")
        }
        if headers["connection"]?.lowercased() == "close" { self.disconnect() }
        return HTTPAnswer(status: status, body: Data(body))
    }
}
