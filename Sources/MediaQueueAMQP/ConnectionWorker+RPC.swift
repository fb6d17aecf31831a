internal import CRabbitMQ
import Glibc
import Logging

/// The synchronous methods, run one at a time on the RPC channel (declare, get, delete, status),
/// and the topology remembered for redeclaration after a reconnect.
extension ConnectionWorker {
    // MARK: - Synchronous methods on the RPC channel

    /// Runs one synchronous method on the RPC channel; a channel error becomes a failure (and the
    /// channel is opened again), a connection error is thrown.
    func rpc(_ what: @autoclosure () -> String, _ body: (amqp_connection_state_t, CArena) -> Void) throws(ConnectionDown) -> Result<Void, AMQPError> {
        guard let connection else { throw ConnectionDown(description: "not connected") }
        let arena = CArena()
        body(connection, arena)
        if let error = try RabbitMQStatus.channelOutcome(of: amqp_get_rpc_reply(connection), connection: connection, channel: Self.rpcChannel, what: what()) {
            channelSessions[Self.rpcChannel] = nil
            try openChannel(Self.rpcChannel)
            return .failure(error)
        }
        return .success(())
    }

    /// Declares exchanges, queues and bindings in order; returns the first channel error.
    func declareNow(_ topology: AMQPTopology) throws(ConnectionDown) -> AMQPError? {
        for exchange in topology.exchanges {
            let result = try rpc("exchange.declare \(exchange.name)") { connection, arena in
                _ = amqp_exchange_declare(
                    connection, Self.rpcChannel, arena.bytes(exchange.name), arena.bytes(exchange.type), 0,
                    exchange.durable ? 1 : 0, exchange.autoDelete ? 1 : 0, 0, arena.table(exchange.arguments)
                )
            }
            if case .failure(let error) = result { return error }
        }
        for queue in topology.queues {
            if case .failure(let error) = try declareQueueNow(queue, passive: false) { return error }
        }
        for binding in topology.bindings {
            let result = try rpc("queue.bind \(binding.queue) to \(binding.exchange)") { connection, arena in
                _ = amqp_queue_bind(
                    connection, Self.rpcChannel, arena.bytes(binding.queue), arena.bytes(binding.exchange),
                    arena.bytes(binding.routingKey), arena.table(binding.arguments)
                )
            }
            if case .failure(let error) = result { return error }
        }
        return nil
    }

    struct DeclareOK {
        var name: String
        var messages: UInt32
        var consumers: UInt32
    }

    func declareQueueNow(_ queue: AMQPQueue, passive: Bool) throws(ConnectionDown) -> Result<DeclareOK, AMQPError> {
        var ok: DeclareOK?
        let result = try rpc("queue.declare \(queue.name)") { connection, arena in
            let reply = amqp_queue_declare(
                connection, Self.rpcChannel, arena.bytes(queue.name), passive ? 1 : 0, queue.durable ? 1 : 0,
                queue.exclusive ? 1 : 0, queue.autoDelete ? 1 : 0, arena.table(queue.arguments)
            )
            // Safe: a non-nil reply is the library's decoded declare-ok, valid until buffers are
            // released; its fields are copied here.
            if let reply {
                ok = DeclareOK(name: reply.pointee.queue.string, messages: reply.pointee.message_count, consumers: reply.pointee.consumer_count)
            }
        }
        return result.flatMap { _ in
            ok.map { .success($0) } ?? .failure(AMQPError(.connectionLost, "queue.declare \(queue.name): no reply"))
        }
    }

    func getNow(_ queue: String) throws(ConnectionDown) -> Result<AMQPMessage?, AMQPError> {
        guard let connection else { throw ConnectionDown(description: "not connected") }
        let arena = CArena()
        let reply = amqp_basic_get(connection, Self.rpcChannel, arena.bytes(queue), 1)
        if let error = try RabbitMQStatus.channelOutcome(of: reply, connection: connection, channel: Self.rpcChannel, what: "basic.get \(queue)") {
            channelSessions[Self.rpcChannel] = nil
            try openChannel(Self.rpcChannel)
            return .failure(error)
        }
        guard reply.reply.id == AMQP_BASIC_GET_OK_METHOD, let decoded = reply.reply.decoded else { return .success(nil) }
        // Safe: for get-ok the library decoded an amqp_basic_get_ok_t; copied before the next read.
        let ok = decoded.assumingMemoryBound(to: amqp_basic_get_ok_t.self).pointee
        let exchange = ok.exchange.string
        let routingKey = ok.routing_key.string
        let redelivered = ok.redelivered != 0
        let content = try readContent(on: Self.rpcChannel)
        return .success(AMQPMessage(
            body: content.body, properties: content.properties, deliveryTag: .none,
            redelivered: redelivered, exchange: exchange, routingKey: routingKey
        ))
    }

    /// Reads the header and body frames that follow a deliver, get-ok or return on `channel`.
    func readContent(on channel: UInt16) throws(ConnectionDown) -> (body: [UInt8], properties: AMQPProperties) {
        guard let connection else { throw ConnectionDown(description: "not connected") }
        var message = amqp_message_t()
        let reply = amqp_read_message(connection, channel, &message, 0)
        guard reply.reply_type == AMQP_RESPONSE_NORMAL else {
            if reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION {
                throw ConnectionDown(description: "reading message content: \(RabbitMQStatus.text(reply.library_error))")
            }
            throw ConnectionDown(description: "reading message content: unexpected reply")
        }
        // Copy before the message's memory goes back to the library.
        let result = (message.body.array, message.properties.swiftProperties)
        amqp_destroy_message(&message)
        return result
    }

    // MARK: - Topology memory

    func forgetQueue(_ name: String) {
        for index in topologies.indices {
            topologies[index].queues.removeAll { $0.name == name }
            topologies[index].bindings.removeAll { $0.queue == name }
        }
    }

    func forgetExchange(_ name: String) {
        for index in topologies.indices {
            topologies[index].exchanges.removeAll { $0.name == name }
            topologies[index].bindings.removeAll { $0.exchange == name }
        }
    }
}
