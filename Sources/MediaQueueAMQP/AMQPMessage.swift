/// Identifies a delivery for ack, nack and reject.
///
/// Opaque: it carries the channel session the message came on, so that an ack for a message of an
/// earlier connection (or a channel the broker has since closed) is silently ignored; the broker
/// redelivers such messages.
public struct AMQPDeliveryTag: Sendable, Hashable {
    /// Unique per channel opening within one `AMQPConnection`.
    let session: UInt64
    let channel: UInt16
    let value: UInt64

    init(session: UInt64, channel: UInt16, value: UInt64) {
        self.session = session
        self.channel = channel
        self.value = value
    }
}

/// A message received from a consumer or `get`.
public struct AMQPMessage: Sendable {
    /// The body, copied out of the library.
    public var body: [UInt8]
    /// Basic properties, headers included.
    public var properties: AMQPProperties
    /// Tag to ack, nack or reject with; meaningless for messages from `get` (no-ack).
    public var deliveryTag: AMQPDeliveryTag
    /// The broker delivered this message before (it was requeued or its channel died unacked).
    public var redelivered: Bool
    /// Exchange it was published to.
    public var exchange: String
    /// Routing key it was published with.
    public var routingKey: String
    /// Set when the body was larger than the connection's `maxBodyBytes`: its size. The body was
    /// not kept (`body` is empty).
    public var oversizedBodyBytes: Int?

    /// Creates a message (the client creates these; public for tests of code that consumes them).
    public init(body: [UInt8], properties: AMQPProperties, deliveryTag: AMQPDeliveryTag, redelivered: Bool, exchange: String, routingKey: String) {
        self.body = body
        self.properties = properties
        self.deliveryTag = deliveryTag
        self.redelivered = redelivered
        self.exchange = exchange
        self.routingKey = routingKey
    }
}

extension AMQPDeliveryTag {
    /// A tag that matches no delivery; acks with it are ignored. For messages built in tests.
    public static let none = AMQPDeliveryTag(session: 0, channel: 0, value: 0)
}

/// A message to publish.
public struct AMQPOutgoingMessage: Sendable {
    /// Exchange name; empty for the default exchange (routing key = queue name).
    public var exchange: String
    /// Routing key.
    public var routingKey: String
    /// Body bytes.
    public var body: [UInt8]
    /// Basic properties.
    public var properties: AMQPProperties
    /// Ask the broker to return the message if no queue receives it (publish then throws `.returned`).
    public var mandatory: Bool

    /// Creates an outgoing message.
    public init(exchange: String = "", routingKey: String, body: [UInt8], properties: AMQPProperties = .init(), mandatory: Bool = false) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.body = body
        self.properties = properties
        self.mandatory = mandatory
    }
}
