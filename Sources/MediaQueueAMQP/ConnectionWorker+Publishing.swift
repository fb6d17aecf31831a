internal import CRabbitMQ
import Glibc
import Logging

/// Publishing on the publish channel with confirms (`PublisherConfirms` keeps the book), and
/// the frames the broker sends back: confirms, returns, deliveries, channel and connection closes.
extension ConnectionWorker {
    // MARK: - Publishing

    /// Sends queued publishes while the confirm window has room. A publish whose send fails is in
    /// flight (it fails with `.connectionLost`); those not sent yet wait for the next connection.
    func sendPublishes() throws(ConnectionDown) {
        let room = configuration.confirmWindow - inFlight.count
        guard room > 0 else { return }
        if unsent.isEmpty {
            // With the commands queued before them, which go first: an ack must not wait behind
            // a publish the broker may hold (under a resource alarm it stops reading the
            // connection at a publish).
            let taken = mailbox.takeCommandsAndPublishes(limit: room)
            deferred += taken.commands
            try executeCommands()
            unsent = taken.publishes
        }
        var sent = 0
        // rabbitmq-c writes each publish as three frames, three send calls, and pushes a TCP
        // segment after the last; corked, a batch goes out in full segments when it is uncorked,
        // which saves this process and the broker a segment per publish.
        let corked = unsent.count > 1 && setCork(true)
        defer {
            unsent.removeFirst(sent)
            if corked { _ = setCork(false) }
        }
        while sent < unsent.count, inFlight.count < configuration.confirmWindow {
            sent += 1
            try send(unsent[sent - 1])
        }
    }

    /// Sets TCP_CORK on the connection's socket; false if it could not be set.
    func setCork(_ on: Bool) -> Bool {
        guard let connection else { return false }
        var value: Int32 = on ? 1 : 0
        return setsockopt(amqp_get_sockfd(connection), Int32(IPPROTO_TCP), TCP_CORK, &value, socklen_t(MemoryLayout<Int32>.size)) == 0
    }

    func send(_ publish: PendingPublish) throws(ConnectionDown) {
        guard let connection else { throw ConnectionDown(description: "not connected") }
        if publish.abandoned?.isSet == true { return publish.reply(.failure(.publisherStoppedWaiting)) }
        let message = publish.message
        // Refused here, not sent: rabbitmq-c would find it while the publish's first frame is out.
        if let error = message.encodingError(frameMax: Int(amqp_get_frame_max(connection))) { return publish.reply(.failure(error)) }
        // Registered before sending: if the send fails the publish fails with `.connectionLost`
        // in tearDown, since the broker may or may not have received it.
        _ = inFlight.register(
            publish.reply, mandatory: message.mandatory, exchange: message.exchange,
            routingKey: message.routingKey, messageID: message.properties.messageID
        )
        let arena = CArena()
        var properties = arena.properties(message.properties)
        let status = message.body.withUnsafeBufferPointer { body in
            // Safe: the library only reads the body during this call (it copies it into frames), and
            // `mutating:` is only there because amqp_bytes_t has a mutable pointer type.
            let bodyBytes = amqp_bytes_t(len: body.count, bytes: body.baseAddress.map { UnsafeMutableRawPointer(mutating: $0) })
            return amqp_basic_publish(
                connection, Self.publishChannel, arena.bytes(message.exchange), arena.bytes(message.routingKey),
                message.mandatory ? 1 : 0, 0, &properties, bodyBytes
            )
        }
        try RabbitMQStatus.check(status, "basic.publish")
    }

    func confirm(upTo tag: UInt64, multiple: Bool, acked: Bool) {
        for (reply, result) in inFlight.confirm(upTo: tag, multiple: multiple, acked: acked) { reply(result) }
    }

    // MARK: - Incoming frames

    func handle(_ frame: amqp_frame_t) throws(ConnectionDown) {
        if frame.frame_type == UInt8(AMQP_FRAME_HEADER) { return try contentHeader(frame) }
        if frame.frame_type == UInt8(AMQP_FRAME_BODY) { return try contentBody(frame) }
        guard let connection, frame.frame_type == UInt8(AMQP_FRAME_METHOD) else { return }
        let channel = frame.channel
        let method = frame.payload.method
        guard let decoded = method.decoded else { return }
        // Safe for every case below: the library decoded the method named by `method.id` into its
        // channel pool, valid until that channel's buffers are released (a later frame of the same
        // channel, or the end of this loop turn); every field used later is copied into a Swift
        // value first.
        switch method.id {
        case AMQP_BASIC_DELIVER_METHOD:
            // Its header and body follow (`ConnectionWorker+Content`).
            let deliver = decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            try contentBegins(.deliver(
                tag: deliver.delivery_tag, session: channelSessions[channel] ?? 0, redelivered: deliver.redelivered != 0,
                exchange: deliver.exchange.string, routingKey: deliver.routing_key.string
            ), on: channel)
        case AMQP_BASIC_ACK_METHOD where channel == Self.publishChannel:
            let ack = decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            confirm(upTo: ack.delivery_tag, multiple: ack.multiple != 0, acked: true)
        case AMQP_BASIC_NACK_METHOD where channel == Self.publishChannel:
            let nack = decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            confirm(upTo: nack.delivery_tag, multiple: nack.multiple != 0, acked: false)
        case AMQP_BASIC_RETURN_METHOD:
            let returned = decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            let reason = "\(returned.reply_code) \(returned.reply_text.string)"
            try contentBegins(.returned(exchange: returned.exchange.string, routingKey: returned.routing_key.string, reason: reason), on: channel)
        case AMQP_BASIC_CANCEL_METHOD:
            // The broker cancelled a consumer (its queue was deleted, or a node went away).
            let cancel = decoded.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee
            let consumerTag = cancel.consumer_tag.string
            if let id = consumerByChannel[channel], var record = consumers[id] {
                logger.warning("AMQP consumer cancelled by the broker", metadata: ["amqp.queue": "\(record.consumer.queue)", "amqp.consumerTag": "\(consumerTag)"])
                record.cancelled = true
                consumers[id] = record
                record.consumer.finish()
            }
        case AMQP_CHANNEL_CLOSE_METHOD:
            let close = decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            let reason = "\(close.reply_code) \(close.reply_text.string)"
            var ok = amqp_channel_close_ok_t()
            try RabbitMQStatus.check(amqp_send_method(connection, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok), "channel.close-ok")
            try channelClosed(channel, code: close.reply_code, reason: reason)
        case AMQP_CONNECTION_CLOSE_METHOD:
            throw RabbitMQStatus.connectionClosed(decoded, connection: connection, what: "connection")
        case AMQP_CONNECTION_BLOCKED_METHOD:
            blockedByBroker = true
            logger.warning("AMQP connection blocked by the broker (resource alarm)")
        case AMQP_CONNECTION_UNBLOCKED_METHOD:
            blockedByBroker = false
            logger.info("AMQP connection unblocked")
        default:
            logger.debug("AMQP frame ignored", metadata: ["amqp.method": "\(method.id)", "amqp.channel": "\(channel)"])
        }
    }

    func markReturned(exchange: String, routingKey: String, messageID: String?, reason: String) {
        if !inFlight.markReturned(exchange: exchange, routingKey: routingKey, messageID: messageID, reason: reason) {
            logger.debug("AMQP basic.return without a matching publish", metadata: ["amqp.routingKey": "\(routingKey)"])
        }
    }

    /// The broker closed `channel` (close-ok already sent): fail or resume what used it.
    func channelClosed(_ channel: UInt16, code: UInt16, reason: String) throws(ConnectionDown) {
        channelSessions[channel] = nil
        incoming[channel] = nil
        logger.warning("AMQP channel closed by the broker", metadata: ["amqp.channel": "\(channel)", "amqp.reason": "\(reason)"])
        switch channel {
        case Self.publishChannel:
            // Which publish caused it is unknown (e.g. one to a missing exchange): every unconfirmed
            // publish fails, since the broker drops confirms of a closed channel.
            for reply in inFlight.abandonAll() {
                reply(.failure(AMQPError(.channelClosed, "publishing: broker closed the channel: \(reason)", replyCode: code)))
            }
            try openPublishChannel()
        case Self.rpcChannel:
            try openChannel(Self.rpcChannel)
        default:
            guard let id = consumerByChannel.removeValue(forKey: channel), var record = consumers[id] else { return }
            // Its unacked messages go back to the queue; buffered ones are stale now.
            _ = record.consumer.drainBuffered()
            record.channel = nil
            if record.cancelled {
                consumers[id] = nil
            } else if let error = try subscribe(&record) {
                logger.error("AMQP consumer could not be resumed", metadata: ["amqp.queue": "\(record.consumer.queue)", "amqp.error": "\(error.message)"])
                record.consumer.finish()
                consumers[id] = nil
            } else {
                consumers[id] = record
            }
        }
    }
}
