import CairnCore
import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// The per-request state: the authenticated identity, the client address and the body limit.
public struct CairnRequestContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by the authenticator on protected routes.
    public var identity: AuthIdentity?
    /// The TCP peer's address (before any trusted-proxy rewrite).
    public var peerAddress: String?
    /// The client address used for rate limits and the audit log.
    public var clientIP: String?
    /// The WebSocket handler chosen by the upgrade route.
    public let webSocket: WebSocketHandlerReference<CairnRequestContext>
    /// The profile a WebSocket upgrade was authenticated for.
    public var webSocketProfile: ProfileRef?
    /// Largest body accepted; set from the configuration by the body-limit middleware.
    public var maxUploadSize: Int = Limits().maxBodyBytes

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.webSocket = .init()
        self.peerAddress = source.channel.remoteAddress?.ipAddress
        self.clientIP = self.peerAddress
    }

    /// The identity, or the uniform `401`.
    public func requireIdentity() throws -> AuthIdentity {
        guard let identity = self.identity else { throw CairnError.unauthorized }
        return identity
    }
}
