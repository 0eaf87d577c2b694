import Foundation
import HummingbirdWSClient
import Logging
import Synchronization

/// `cairn-bench --idle-client URL`: the child side of the idle-connections workload. Reads one
/// token per line from stdin up to `end`, opens one authenticated WebSocket per token (64
/// handshakes at a time), prints `ready` once all are authenticated (or `failed <reason>`), holds
/// them idle until stdin closes, then closes them and exits.
enum IdleClient {
    /// Counts and failures shared by the socket tasks.
    final class Progress: Sendable {
        let authenticated = Atomic<Int>(0)
        let failures = Mutex<[String]>([])
    }

    /// Lets one waiting handshake start, once per socket.
    final class Slot: Sendable {
        let released = Atomic<Bool>(false)
        let gate: AsyncStream<Void>.Continuation

        init(gate: AsyncStream<Void>.Continuation) { self.gate = gate }

        func release() {
            if !self.released.exchange(true, ordering: .relaxed) { self.gate.yield() }
        }
    }

    static func run(url: String) async throws {
        let tokens = await Self.readTokens()
        let progress = Progress()
        let logger: Logger = {
            var logger = Logger(label: "cairn-bench.idle")
            logger.logLevel = .critical
            return logger
        }()

        await withTaskGroup(of: Void.self) { group in
            let (slots, gate) = AsyncStream<Void>.makeStream()
            for _ in 0..<64 { gate.yield() }
            var free = slots.makeAsyncIterator()
            for (index, token) in tokens.enumerated() {
                _ = await free.next()
                let slot = Slot(gate: gate)
                group.addTask {
                    await Self.hold(url: "\(url)?clientId=idle-\(index)", token: token, slot: slot, progress: progress, logger: logger)
                    if !slot.released.load(ordering: .relaxed) {
                        progress.failures.withLock { $0.append("socket \(index) closed before it was authenticated") }
                    }
                    slot.release()
                }
            }
            let deadline = ContinuousClock.now + .seconds(280)
            while progress.authenticated.load(ordering: .relaxed) < tokens.count, progress.failures.withLock({ $0.isEmpty }),
                ContinuousClock.now < deadline
            {
                try? await Task.sleep(for: .milliseconds(50))
            }
            let verdict: String
            if let failure = progress.failures.withLock({ $0.first }) {
                verdict = "failed \(failure)"
            } else if progress.authenticated.load(ordering: .relaxed) < tokens.count {
                verdict = "failed \(progress.authenticated.load(ordering: .relaxed)) of \(tokens.count) sockets authenticated in time"
            } else {
                verdict = "ready"
            }
            FileHandle.standardOutput.write(Data((verdict + "\n").utf8))
            await Self.waitForEndOfInput()
            group.cancelAll()
        }
    }

    /// One socket: connects, counts its `auth_success`, and stays open until cancelled (then
    /// closes it: the client library does not on cancellation).
    static func hold(url: String, token: String, slot: Slot, progress: Progress, logger: Logger) async {
        do {
            _ = try await WebSocketClient.connect(
                url: url, configuration: .init(maxFrameSize: 1 << 20, additionalHeaders: [.authorization: "Bearer \(token)"]), logger: logger
            ) { inbound, outbound, _ in
                await withTaskGroup(of: Void.self) { inner in
                    inner.addTask {
                        do {
                            for try await message in inbound.messages(maxSize: 1 << 21) {
                                if case .text(let text) = message, text.contains(#""type":"auth_success""#) {
                                    progress.authenticated.add(1, ordering: .relaxed)
                                    slot.release()
                                }
                            }
                        } catch {}
                    }
                    inner.addTask {
                        while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
                    }
                    _ = await inner.next()
                    inner.cancelAll()
                    try? await outbound.close(.normalClosure, reason: nil)
                }
            }
        } catch {
            progress.failures.withLock { $0.append("\(error)") }
        }
    }

    /// Tokens from stdin up to the line `end` (read on a thread of its own, off the cooperative pool).
    static func readTokens() async -> [String] {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var tokens: [String] = []
                while let line = readLine(), line != "end" { tokens.append(line) }
                continuation.resume(returning: tokens)
            }
        }
    }

    /// Returns when stdin reaches its end (the parent closed it).
    static func waitForEndOfInput() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                while readLine() != nil {}
                continuation.resume()
            }
        }
    }
}
