/// The basic properties of a message.
public struct AMQPProperties: Sendable, Hashable {
    /// MIME type of the body.
    public var contentType: String?
    /// Encoding of the body (e.g. `gzip`).
    public var contentEncoding: String?
    /// Application message identifier.
    public var messageID: String?
    /// Application correlation identifier.
    public var correlationID: String?
    /// Address to reply to.
    public var replyTo: String?
    /// Delivery mode 2: the broker writes the message to disk on durable queues.
    public var persistent: Bool
    /// Message priority (effective on queues with `x-max-priority`).
    public var priority: UInt8?
    /// Seconds since the Unix epoch.
    public var timestamp: UInt64?
    /// Message type name.
    public var type: String?
    /// Creating application.
    public var appID: String?
    /// Per-message TTL in milliseconds, as a decimal string.
    public var expiration: String?
    /// Application headers.
    public var headers: AMQPTable

    /// Creates properties; everything is optional and non-persistent by default.
    public init(
        contentType: String? = nil,
        contentEncoding: String? = nil,
        messageID: String? = nil,
        correlationID: String? = nil,
        replyTo: String? = nil,
        persistent: Bool = false,
        priority: UInt8? = nil,
        timestamp: UInt64? = nil,
        type: String? = nil,
        appID: String? = nil,
        expiration: String? = nil,
        headers: AMQPTable = [:]
    ) {
        self.contentType = contentType
        self.contentEncoding = contentEncoding
        self.messageID = messageID
        self.correlationID = correlationID
        self.replyTo = replyTo
        self.persistent = persistent
        self.priority = priority
        self.timestamp = timestamp
        self.type = type
        self.appID = appID
        self.expiration = expiration
        self.headers = headers
    }
}
