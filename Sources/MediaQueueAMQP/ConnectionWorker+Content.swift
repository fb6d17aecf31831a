internal import CRabbitMQ

/// A message arriving frame by frame on one channel: its deliver or return method, then a header
/// with the properties and the body's size, then body frames (other channels' frames may come in
/// between). It is put together as the frames come, so that a body larger than the connection's
/// `maxBodyBytes` is only counted, never held.
struct IncomingContent {
    enum Method {
        /// `session`: the channel's opening the delivery came on, which its tag carries.
        case deliver(tag: UInt64, session: UInt64, redelivered: Bool, exchange: String, routingKey: String)
        case returned(exchange: String, routingKey: String, reason: String)
    }

    let method: Method
    var properties = AMQPProperties()
    /// The body's size, from the header; nil until the header came.
    var size: Int?
    var received = 0
    /// The body so far; nil while the header is awaited, and for a body too large to keep.
    var body: [UInt8]?

    init(_ method: Method) {
        self.method = method
    }

    var isComplete: Bool { size.map { received >= $0 } ?? false }

    /// Adds a body frame; false if it goes past the size the header announced.
    mutating func append(_ fragment: UnsafeRawBufferPointer) -> Bool {
        received += fragment.count
        body?.append(contentsOf: fragment)
        return received <= size ?? 0
    }
}

extension ConnectionWorker {
    // MARK: - Incoming content

    /// Room reserved up front for a body the header announces; a larger one grows as it comes.
    static let largestReservation = 16 << 20

    /// A deliver or return: its content follows on the same channel, and nothing else may come
    /// there in between.
    func contentBegins(_ method: IncomingContent.Method, on channel: UInt16) throws(ConnectionDown) {
        guard isOpen(channel) else { return }
        guard incoming[channel] == nil else {
            throw ConnectionDown(description: "a new message on channel \(channel) before the last one's content ended")
        }
        incoming[channel] = IncomingContent(method)
    }

    /// A content header: the properties and the body's size, which decides whether it is kept.
    func contentHeader(_ frame: amqp_frame_t) throws(ConnectionDown) {
        let channel = frame.channel
        guard isOpen(channel) else { return releaseBuffers(of: channel) }
        guard var content = incoming[channel], content.size == nil else {
            throw ConnectionDown(description: "a content header on channel \(channel) without a deliver or return before it")
        }
        let header = frame.payload.properties
        // Safe: the library decoded the basic properties into the channel's pool, valid until
        // buffers are released; they are copied here.
        if let decoded = header.decoded {
            content.properties = decoded.assumingMemoryBound(to: amqp_basic_properties_t.self).pointee.swiftProperties
        }
        let size = Int(clamping: header.body_size)
        content.size = size
        if size <= configuration.maxBodyBytes ?? .max {
            var body: [UInt8] = []
            body.reserveCapacity(min(size, Self.largestReservation))
            content.body = body
        }
        releaseBuffers(of: channel)
        if content.isComplete {
            incoming[channel] = nil
            try complete(content, on: channel)
        } else {
            incoming[channel] = content
        }
    }

    /// A body frame: copied out of the library's pool, or only counted for a body too large.
    func contentBody(_ frame: amqp_frame_t) throws(ConnectionDown) {
        let channel = frame.channel
        guard isOpen(channel) else { return releaseBuffers(of: channel) }
        guard incoming[channel]?.size != nil else {
            throw ConnectionDown(description: "a content body on channel \(channel) without a header before it")
        }
        let fragment = frame.payload.body_fragment
        // Safe: the fragment lies in the channel's pool until buffers are released; it is copied here.
        guard incoming[channel]?.append(UnsafeRawBufferPointer(start: fragment.bytes, count: fragment.len)) == true else {
            throw ConnectionDown(description: "a message body on channel \(channel) longer than its header announced")
        }
        releaseBuffers(of: channel)
        if let content = incoming[channel], content.isComplete {
            incoming[channel] = nil
            try complete(content, on: channel)
        }
    }

    /// Whether the channel is open. Frames of one this side closed (a consumer's, on cancel) may
    /// still wait in the library's queue, read while it waited for the close to be confirmed;
    /// their message went back to the queue with the channel, so they are dropped.
    private func isOpen(_ channel: UInt16) -> Bool {
        channelSessions[channel] != nil
    }

    /// Gives the channel's frame memory back to the library's pool now rather than at the end of
    /// the loop turn, so that a turn of large bodies does not grow it (the library keeps what it
    /// grew for the connection's life). It does nothing while frames of the channel wait.
    private func releaseBuffers(of channel: UInt16) {
        guard let connection else { return }
        amqp_maybe_release_buffers_on_channel(connection, channel)
    }

    private func complete(_ content: IncomingContent, on channel: UInt16) throws(ConnectionDown) {
        switch content.method {
        case .deliver(let value, let session, let redelivered, let exchange, let routingKey):
            let tag = AMQPDeliveryTag(session: session, channel: channel, value: value)
            var message = AMQPMessage(
                body: content.body ?? [], properties: content.properties, deliveryTag: tag,
                redelivered: redelivered, exchange: exchange, routingKey: routingKey
            )
            if content.body == nil { message.oversizedBodyBytes = content.size }
            if let id = consumerByChannel[channel], let record = consumers[id], !record.cancelled, record.consumer.deliver(message) {
                return
            }
            // Nobody wants it any more (cancelled consumer): give it back at once, unless its
            // channel is gone already (then the broker has it back).
            guard let connection, channelSessions[channel] == session else { return }
            try RabbitMQStatus.check(amqp_basic_nack(connection, channel, value, 0, 1), "basic.nack")
        case .returned(let exchange, let routingKey, let reason):
            markReturned(exchange: exchange, routingKey: routingKey, messageID: content.properties.messageID, reason: reason)
        }
    }
}
