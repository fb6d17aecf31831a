internal import CRabbitMQ
import Glibc
import Logging

/// Consumers, each on a channel of its own (subscribed again after a reconnect), and the
/// settling of their deliveries.
extension ConnectionWorker {
    // MARK: - Consumers

    /// Opens a channel for the consumer, sets its prefetch and subscribes; returns a channel error.
    func subscribe(_ record: inout ConsumerRecord) throws(ConnectionDown) -> AMQPError? {
        guard let connection else { throw ConnectionDown(description: "not connected") }
        guard let channel = freeChannel() else {
            return AMQPError(.channelClosed, "no free channel for another consumer (channel max \(channelMax))")
        }
        try openChannel(channel)
        let consumer = record.consumer
        _ = amqp_basic_qos(connection, channel, 0, consumer.prefetch, 0)
        if let error = try RabbitMQStatus.channelOutcome(of: amqp_get_rpc_reply(connection), connection: connection, channel: channel, what: "basic.qos") {
            channelSessions[channel] = nil
            return error
        }
        let arena = CArena()
        _ = amqp_basic_consume(
            connection, channel, arena.bytes(consumer.queue), arena.bytes("mq-consumer-\(consumer.id)"),
            0, 0, 0, amqp_table_t(num_entries: 0, entries: nil)
        )
        if let error = try RabbitMQStatus.channelOutcome(of: amqp_get_rpc_reply(connection), connection: connection, channel: channel, what: "basic.consume \(consumer.queue)") {
            channelSessions[channel] = nil
            return error
        }
        record.channel = channel
        consumerByChannel[channel] = consumer.id
        logger.debug("AMQP consumer subscribed", metadata: ["amqp.queue": "\(consumer.queue)", "amqp.channel": "\(channel)"])
        return nil
    }

    func freeChannel() -> UInt16? {
        var channel = Self.firstConsumerChannel
        while channel <= channelMax {
            if channelSessions[channel] == nil { return channel }
            channel += 1
        }
        return nil
    }

    /// basic.cancel; the channel stays open so that messages already handed out can still be
    /// acked, and buffered ones are requeued. A consumer already cancelled (by the broker, when its
    /// queue was deleted) has its channel closed instead: its owner cancels once it settled what it
    /// took (settlements run in order with commands), and a service that replaces such consumers
    /// would otherwise use up the connection's channels.
    func cancel(_ consumer: AMQPConsumer) throws(ConnectionDown) {
        guard var record = consumers[consumer.id] else {
            consumer.finish()
            return
        }
        if record.cancelled {
            consumers[consumer.id] = nil
            consumer.finish()
            if brokerIsNotReading {
                // A channel.close would wait for the RPC timeout on a connection the broker does
                // not read: the channel stays open, and unused, until the connection ends, and
                // what it buffered goes back now.
                for message in consumer.drainBuffered() { try settle(message.deliveryTag, .nack(multiple: false, requeue: true)) }
                return
            }
            // Requeued with the channel's close: handed out now, they would be worked twice.
            _ = consumer.drainBuffered()
            guard let channel = record.channel, let connection else { return }
            consumerByChannel[channel] = nil
            channelSessions[channel] = nil
            incoming[channel] = nil
            let reply = amqp_channel_close(connection, channel, AMQP_REPLY_SUCCESS)
            if let error = try RabbitMQStatus.channelOutcome(of: reply, connection: connection, channel: channel, what: "channel.close") {
                logger.debug("AMQP consumer channel closed on cancel", metadata: ["amqp.error": "\(error.message)"])
            }
            return
        }
        // Marked before the broker is asked: a connection lost during the cancel must not
        // subscribe the consumer again when it comes back.
        record.cancelled = true
        consumers[consumer.id] = record
        if let channel = record.channel, let connection, brokerIsNotReading {
            // Without waiting for the broker: it takes the cancel once it reads this connection
            // again, and deliveries that come before are given back (`record.cancelled`).
            let arena = CArena()
            var method = amqp_basic_cancel_t(consumer_tag: arena.bytes("mq-consumer-\(consumer.id)"), nowait: 1)
            try RabbitMQStatus.check(amqp_send_method(connection, channel, AMQP_BASIC_CANCEL_METHOD, &method), "basic.cancel")
        } else if let channel = record.channel, let connection {
            let arena = CArena()
            _ = amqp_basic_cancel(connection, channel, arena.bytes("mq-consumer-\(consumer.id)"))
            if let error = try RabbitMQStatus.channelOutcome(of: amqp_get_rpc_reply(connection), connection: connection, channel: channel, what: "basic.cancel") {
                logger.debug("AMQP consumer channel closed on cancel", metadata: ["amqp.error": "\(error.message)"])
                channelSessions[channel] = nil
                consumerByChannel[channel] = nil
                incoming[channel] = nil
                record.channel = nil
                consumers[consumer.id] = record
            }
        }
        consumer.finish()
        for message in consumer.drainBuffered() {
            try settle(message.deliveryTag, .nack(multiple: false, requeue: true))
        }
    }

    // MARK: - Settling deliveries

    func settle(_ tag: AMQPDeliveryTag, _ settlement: Settlement) throws(ConnectionDown) {
        guard let connection, tag.session != 0, channelSessions[tag.channel] == tag.session else {
            logger.debug("AMQP settlement of a stale delivery ignored", metadata: ["amqp.deliveryTag": "\(tag.value)"])
            return
        }
        let status: Int32 = switch settlement {
        case .ack(let multiple): amqp_basic_ack(connection, tag.channel, tag.value, multiple ? 1 : 0)
        case .nack(let multiple, let requeue): amqp_basic_nack(connection, tag.channel, tag.value, multiple ? 1 : 0, requeue ? 1 : 0)
        case .reject(let requeue): amqp_basic_reject(connection, tag.channel, tag.value, requeue ? 1 : 0)
        }
        try RabbitMQStatus.check(status, "settling a delivery")
    }
}
