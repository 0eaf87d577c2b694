/// Size and count limits, advertised by `GET /api/info` and enforced while decoding.
public struct Limits: Codable, Sendable, Equatable {
    /// Largest request body in bytes (5 MiB).
    public var maxBodyBytes: Int
    /// Most operations in one push.
    public var maxOpsPerPush: Int
    /// Largest record in bytes, as JSON.
    public var maxRecordBytes: Int
    /// Longest bookmark title in characters.
    public var maxTitleLength: Int
    /// Longest URL in bytes.
    public var maxURLBytes: Int
    /// Largest favicon in bytes (URL or data URI).
    public var maxFaviconBytes: Int
    /// Deepest JSON nesting accepted.
    public var maxJSONDepth: Int
    /// Largest WebSocket message in bytes.
    public var maxWebSocketMessageBytes: Int

    /// The defaults of DESIGN §3.
    public init(
        maxBodyBytes: Int = 5 * 1024 * 1024,
        maxOpsPerPush: Int = 1000,
        maxRecordBytes: Int = 256 * 1024,
        maxTitleLength: Int = 4096,
        maxURLBytes: Int = 16 * 1024,
        maxFaviconBytes: Int = 64 * 1024,
        maxJSONDepth: Int = 32,
        maxWebSocketMessageBytes: Int = 1024 * 1024
    ) {
        self.maxBodyBytes = maxBodyBytes
        self.maxOpsPerPush = maxOpsPerPush
        self.maxRecordBytes = maxRecordBytes
        self.maxTitleLength = maxTitleLength
        self.maxURLBytes = maxURLBytes
        self.maxFaviconBytes = maxFaviconBytes
        self.maxJSONDepth = maxJSONDepth
        self.maxWebSocketMessageBytes = maxWebSocketMessageBytes
    }
}
