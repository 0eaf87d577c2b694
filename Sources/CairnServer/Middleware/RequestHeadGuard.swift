import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes

/// Bounds on a request head (request line plus header fields), enforced on the raw bytes before
/// the HTTP decoder sees them.
struct RequestHeadLimits: Sendable {
    /// Most bytes of one request head; a larger head is answered `431` and the connection closed.
    var maxHeadBytes: Int = 64 * 1024
    /// A connection must send a complete head within this time: from the moment it connects
    /// (nothing sent at all) and from the first byte of each later head (slowloris). Then `408`
    /// (or nothing, if it never sent a byte) and the connection is closed.
    var headTimeout: TimeAmount = .seconds(60)
}

/// Wraps the HTTP/WebSocket child channel with a ``RequestHeadGuard`` in front of the HTTP decoder,
/// and closes the channel once the inner handler is done with it.
///
/// Why: swift-nio's decoder buffers up to 80 KiB of header before it fails, and a parse error on
/// a connection's first request (while the WebSocket upgrade is still undecided) left the
/// connection open with no answer; Hummingbird's idle timer starts only after the first head, so
/// a connection that sends half a head and then nothing was never closed either.
struct HeadGuardedChannel<Inner: ServerChildChannel>: ServerChildChannel {
    let inner: Inner
    let limits: RequestHeadLimits

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Inner.Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(RequestHeadGuard(limits: self.limits, logger: logger), position: .first)
        }.flatMap {
            self.inner.setup(channel: channel, logger: logger)
        }.flatMapThrowing { value in
            try channel.pipeline.syncOperations.addHandler(FirstRequestParseErrorHandler())
            return value
        }
    }

    func handle(value: Inner.Value, logger: Logger) async {
        await self.inner.handle(value: value, logger: logger)
        // The inner handler closes the connections it finishes normally; one whose upgrade
        // negotiation failed (a parse error in the first head) it leaves open.
        value.channel.close(promise: nil)
    }
}

/// Counts the bytes of each request head as they arrive, answers `431 HEADERS_TOO_LARGE` and
/// closes when a head passes ``RequestHeadLimits/maxHeadBytes``, and closes a connection whose
/// head is not complete within ``RequestHeadLimits/headTimeout``.
///
/// It finds the end of a head itself (an empty line) and stops counting there; the body is not
/// scanned. It starts counting again when the ``RequestHeadWatcher`` behind the decoder sees the
/// request's `.end`. After a WebSocket upgrade no watcher is installed, so it stays out of the way.
final class RequestHeadGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum State {
        /// Between requests, or inside a head: bytes are counted.
        case awaitingHead
        /// Past a head, until the request's end: bytes are not looked at.
        case inMessage
        /// Answered 431 or 408: input is discarded until the connection closes.
        case refused
    }

    let limits: RequestHeadLimits
    let logger: Logger
    private(set) var state = State.awaitingHead
    /// Bytes of the current head so far.
    private var headBytes = 0
    /// Bytes of the current line so far, carriage returns not counted.
    private var lineLength = 0
    /// Whether the current head has a non-empty line yet (leading empty lines are skipped, as
    /// the decoder does).
    private var headStarted = false
    private var deadline: Scheduled<Void>?

    init(limits: RequestHeadLimits, logger: Logger) {
        self.limits = limits
        self.logger = logger
    }

    /// Kept to answer from the front of the pipeline on behalf of ``FirstRequestParseErrorHandler``.
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { self.arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.arm(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.disarm()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.disarm()
        self.context = nil
    }

    /// The decoder failed on a request that no one behind it will answer: 400 and close.
    func refuseMalformedRequest() {
        guard let context = self.context, self.state != .refused else { return }
        self.refuse(context, status: .badRequest, code: "VALIDATION_ERROR", message: "Malformed HTTP request")
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.state {
        case .refused:
            return
        case .inMessage:
            context.fireChannelRead(data)
        case .awaitingHead:
            let buffer = self.unwrapInboundIn(data)
            let (complete, counted) = self.scan(buffer.readableBytesView)
            if self.headBytes + counted > self.limits.maxHeadBytes {
                self.refuse(context, status: .requestHeaderFieldsTooLarge, code: "HEADERS_TOO_LARGE",
                            message: "Request headers larger than \(self.limits.maxHeadBytes / 1024) KiB")
                return
            }
            if complete {
                self.headSeen()
            } else {
                if self.headBytes == 0 && counted > 0 { self.arm(context) }
                self.headBytes += counted
            }
            context.fireChannelRead(data)
        }
    }

    /// Scans for the empty line that ends a head. Returns whether it was found and how many bytes
    /// of `bytes` belong to the head (all of them when it was not found).
    private func scan(_ bytes: ByteBufferView) -> (Bool, Int) {
        var index = 0
        for byte in bytes {
            index += 1
            switch byte {
            case UInt8(ascii: "\r"):
                continue
            case UInt8(ascii: "\n"):
                if self.lineLength == 0 {
                    if self.headStarted { return (true, index) }
                } else {
                    self.lineLength = 0
                    self.headStarted = true
                }
            default:
                self.lineLength += 1
            }
        }
        return (false, index)
    }

    /// A head is complete (found here, or reported by the decoder): stop counting until its end.
    func headSeen() {
        guard self.state != .refused else { return }
        self.state = .inMessage
        self.resetHead()
        self.disarm()
    }

    /// The decoder finished a request: the next bytes are the next head.
    func requestEnded() {
        guard self.state != .refused else { return }
        self.state = .awaitingHead
        self.resetHead()
    }

    private func resetHead() {
        self.headBytes = 0
        self.lineLength = 0
        self.headStarted = false
    }

    private func arm(_ context: ChannelHandlerContext) {
        guard self.deadline == nil, self.state == .awaitingHead else { return }
        self.deadline = context.eventLoop.assumeIsolated().scheduleTask(in: self.limits.headTimeout) {
            self.deadline = nil
            guard self.state == .awaitingHead else { return }
            if self.headBytes > 0 || self.headStarted {
                self.refuse(context, status: .requestTimeout, code: "REQUEST_TIMEOUT", message: "Request headers not received in time")
            } else {
                self.state = .refused
                context.close(promise: nil)
            }
        }
    }

    private func disarm() {
        self.deadline?.cancel()
        self.deadline = nil
    }

    /// Answers with a bare JSON error (the router never sees this request), stops reading what
    /// the client still sends, and closes: the write side at once, the whole connection shortly
    /// after (closing with unread input would reset the connection and could lose the answer).
    private func refuse(_ context: ChannelHandlerContext, status: HTTPResponse.Status, code: String, message: String) {
        self.state = .refused
        self.disarm()
        let requestId = Identifiers.randomToken(bytes: 9)
        let body = #"{"error":{"code":"\#(code)","message":"\#(message)"}}"#
        let head = [
            "HTTP/1.1 \(status.code) \(status.reasonPhrase)",
            "Content-Type: application/json; charset=utf-8",
            "Content-Length: \(body.utf8.count)",
            "Connection: close",
            "X-Content-Type-Options: nosniff",
            "Cache-Control: no-store",
            "Referrer-Policy: no-referrer",
            "X-Request-Id: \(requestId)",
        ].joined(separator: "\r\n")
        self.logger.info(
            "request refused before routing",
            metadata: ["hb.request.id": .string(requestId), "http.status": .string(String(status.code)), "reason": .string(code)]
        )
        let channel = context.channel
        let buffer = channel.allocator.buffer(string: head + "\r\n\r\n" + body)
        context.writeAndFlush(self.wrapOutboundOut(buffer)).whenComplete { _ in
            channel.close(mode: .output, promise: nil)
            channel.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
        }
    }
}

/// Sits behind the HTTP decoder (one of Hummingbird's `additionalChannelHandlers`) and tells the
/// connection's ``RequestHeadGuard`` where each request starts and ends.
final class RequestHeadWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private var headGuard: RequestHeadGuard?

    func handlerAdded(context: ChannelHandlerContext) {
        self.headGuard = try? context.pipeline.syncOperations.handler(type: RequestHeadGuard.self)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head: self.headGuard?.headSeen()
        case .end: self.headGuard?.requestEnded()
        case .body: break
        }
        context.fireChannelRead(data)
    }
}

/// Sits at the end of the pipeline while a connection's first request is still being decoded:
/// NIO's upgrade handler has no error handling, so an HTTP parse error there (garbage, a TLS hello
/// on the plain port, a bad header line) reached the end of the pipeline unhandled and the
/// connection stayed open with no answer. Such an error gets 400 and a close here. Once the first
/// request is through (anything read past the upgrade handler), Hummingbird's HTTP handler answers
/// parse errors itself (and after an upgrade the WebSocket handler its own), and this handler only
/// passes things on. Any error this early is a request no one will answer, so the type is not
/// checked (`HTTPParserError` lives in NIOHTTP1, which this target does not import).
final class FirstRequestParseErrorHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private var firstRequestThrough = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.firstRequestThrough = true
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !self.firstRequestThrough else {
            context.fireErrorCaught(error)
            return
        }
        if let headGuard = try? context.pipeline.syncOperations.handler(type: RequestHeadGuard.self) {
            headGuard.refuseMalformedRequest()
        } else {
            context.close(promise: nil)
        }
    }
}
