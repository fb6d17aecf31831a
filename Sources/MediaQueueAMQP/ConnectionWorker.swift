internal import CRabbitMQ
import Glibc
import Logging

/// Owns one rabbitmq-c connection at a time and runs on the connection's dedicated thread for the
/// whole of `run()`. Nothing here is touched from any other thread; Swift tasks talk to it only
/// through the `Mailbox` and get answers through `Reply` closures.
final class ConnectionWorker {
    private static let rpcChannel: UInt16 = 1
    private static let publishChannel: UInt16 = 2
    private static let firstConsumerChannel: UInt16 = 3
    private static let frameMax: Int32 = 131_072
    /// Frames read per loop turn before the mailbox gets another look.
    private static let framesPerTurn = 256

    private let configuration: AMQPConfiguration
    private let endpoint: AMQPEndpoint
    private var logger: Logger
    private let mailbox: Mailbox
    private let wakeReadFD: Int32
    private let wakeWriteFD: Int32

    /// The live connection, nil between connections.
    private var connection: amqp_connection_state_t?
    private var channelMax: UInt16 = 2047
    /// Open channels and the session id of their current opening (delivery tags carry it).
    private var channelSessions: [UInt16: UInt64] = [:]
    private var nextSession: UInt64 = 0

    /// Publishes sent on the publish channel and not confirmed yet.
    private var inFlight = PublisherConfirms<Reply<Void>>()

    private struct ConsumerRecord {
        var consumer: AMQPConsumer
        var channel: UInt16?
        var cancelled = false
    }

    private var topologies: [AMQPTopology] = []
    private var consumers: [UInt64: ConsumerRecord] = [:]
    private var consumerByChannel: [UInt16: UInt64] = [:]
    /// Commands taken from the mailbox but not run yet (taken while disconnected, or left over
    /// when the connection dropped), run once connected again.
    private var deferred: [Command] = []
    /// Publishes taken from the mailbox but not sent yet (left over when the connection dropped).
    private var unsent: [PendingPublish] = []

    init(configuration: AMQPConfiguration, endpoint: AMQPEndpoint, logger: Logger, mailbox: Mailbox, wakeReadFD: Int32, wakeWriteFD: Int32) {
        self.configuration = configuration
        self.endpoint = endpoint
        self.logger = logger
        self.logger[metadataKey: "amqp.url"] = "\(endpoint.redactedURL)"
        self.mailbox = mailbox
        self.wakeReadFD = wakeReadFD
        self.wakeWriteFD = wakeWriteFD
    }

    // MARK: - Thread entry

    /// The thread's body: connect, serve, reconnect with backoff, until a stop is requested.
    func main() {
        var delay = configuration.reconnectDelay.lowerBound
        var attempt = 0
        while !mailbox.isStopRequested {
            do throws(ConnectionDown) {
                attempt += 1
                try connect()
                logger.info("AMQP connection established", metadata: ["amqp.attempt": "\(attempt)"])
                attempt = 0
                delay = configuration.reconnectDelay.lowerBound
                try serve()
                closeCleanly()
                break
            } catch {
                let wasConnected = attempt == 0
                tearDown(reason: error.description)
                if wasConnected {
                    logger.warning("AMQP connection lost", metadata: ["amqp.reason": "\(error.description)"])
                } else {
                    logger.warning(
                        "AMQP connect attempt failed",
                        metadata: ["amqp.reason": "\(error.description)", "amqp.attempt": "\(attempt)", "amqp.retryIn": "\(delay)"]
                    )
                }
                sleepInterruptibly(delay)
                if !wasConnected {
                    delay = min(delay * 2, configuration.reconnectDelay.upperBound)
                }
            }
        }
        shutDown()
    }

    // MARK: - Connecting

    private func connect() throws(ConnectionDown) {
        guard let connection = amqp_new_connection() else { throw ConnectionDown(description: "out of memory") }
        self.connection = connection

        let socket: OpaquePointer?
        if endpoint.tls {
            socket = amqp_ssl_socket_new(connection)
            if let socket {
                if let path = configuration.caCertificatePath {
                    try RabbitMQStatus.check(amqp_ssl_socket_set_cacert(socket, path), "loading the CA certificate")
                }
                amqp_ssl_socket_set_verify_peer(socket, configuration.verifyPeer ? 1 : 0)
                amqp_ssl_socket_set_verify_hostname(socket, configuration.verifyPeer ? 1 : 0)
            }
        } else {
            socket = amqp_tcp_socket_new(connection)
        }
        guard let socket else { throw ConnectionDown(description: "cannot create a socket") }

        var connectTimeout = Self.cTimeval(configuration.connectTimeout)
        try RabbitMQStatus.check(
            amqp_socket_open_noblock(socket, endpoint.host, Int32(endpoint.port), &connectTimeout),
            "opening the socket"
        )
        try RabbitMQStatus.check(amqp_set_handshake_timeout(connection, &connectTimeout), "setting the handshake timeout")
        // Synchronous methods (declare, consume, …) give up after this long; a broker that hangs
        // this long is treated as lost. Heartbeats are still serviced while waiting.
        var rpcTimeout = Self.cTimeval(max(configuration.connectTimeout * 3, .seconds(30)))
        try RabbitMQStatus.check(amqp_set_rpc_timeout(connection, &rpcTimeout), "setting the RPC timeout")

        let arena = CArena()
        var properties = arena.table([
            "connection_name": .string(configuration.connectionName),
            "product": "MediaQueue",
            "capabilities": .table([
                "consumer_cancel_notify": true,
                "publisher_confirms": true,
                "basic.nack": true,
                "exchange_exchange_bindings": true,
            ]),
        ])
        let login = CRabbitMQ_login_plain(
            connection, endpoint.vhost, 0, Self.frameMax, Int32(Self.seconds(configuration.heartbeat)),
            &properties, endpoint.user, endpoint.password
        )
        if login.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION, login.reply.id == AMQP_CONNECTION_CLOSE_METHOD {
            throw RabbitMQStatus.connectionClosed(login.reply.decoded, connection: connection, what: "logging in")
        }
        guard login.reply_type == AMQP_RESPONSE_NORMAL else {
            let detail = login.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION ? RabbitMQStatus.text(login.library_error) : "refused"
            throw ConnectionDown(description: "logging in as \(endpoint.user) to vhost \(endpoint.vhost): \(detail)")
        }
        let negotiated = amqp_get_channel_max(connection)
        channelMax = negotiated > 0 ? UInt16(clamping: negotiated) : 2047

        try openChannel(Self.rpcChannel)
        try openPublishChannel()

        for topology in topologies {
            if let error = try declareNow(topology) {
                logger.error("AMQP topology could not be declared again", metadata: ["amqp.error": "\(error.message)"])
            }
        }
        for id in consumers.keys.sorted() {
            guard var record = consumers[id] else { continue }
            if record.cancelled {
                record.consumer.finish()
                consumers[id] = nil
                continue
            }
            if let error = try subscribe(&record) {
                logger.error(
                    "AMQP consumer could not be resumed",
                    metadata: ["amqp.queue": "\(record.consumer.queue)", "amqp.error": "\(error.message)"]
                )
                record.consumer.finish()
                consumers[id] = nil
            } else {
                consumers[id] = record
            }
        }
        amqp_maybe_release_buffers(connection)
        mailbox.setConnected(true)
    }

    private func openChannel(_ channel: UInt16) throws(ConnectionDown) {
        guard let connection else { throw ConnectionDown(description: "not connected") }
        _ = amqp_channel_open(connection, channel)
        if let error = try RabbitMQStatus.channelOutcome(of: amqp_get_rpc_reply(connection), connection: connection, channel: channel, what: "channel.open") {
            throw ConnectionDown(description: error.message)
        }
        nextSession += 1
        channelSessions[channel] = nextSession
    }

    private func openPublishChannel() throws(ConnectionDown) {
        try openChannel(Self.publishChannel)
        guard let connection else { throw ConnectionDown(description: "not connected") }
        _ = amqp_confirm_select(connection, Self.publishChannel)
        if let error = try RabbitMQStatus.channelOutcome(of: amqp_get_rpc_reply(connection), connection: connection, channel: Self.publishChannel, what: "confirm.select") {
            throw ConnectionDown(description: error.message)
        }
        inFlight.channelOpened()
    }

    // MARK: - Serving

    private func serve() throws(ConnectionDown) {
        guard let connection else { throw ConnectionDown(description: "not connected") }
        let socketFD = amqp_get_sockfd(connection)
        let pollTimeout = Int32(max(100, Self.seconds(configuration.heartbeat) * 1000 / 2))
        var stopDeadline: ContinuousClock.Instant?
        while true {
            if stopDeadline == nil, mailbox.isStopRequested {
                // Give publishes already sent a moment to be confirmed; then close.
                stopDeadline = .now + configuration.connectTimeout
            }
            if let stopDeadline {
                if inFlight.isEmpty || ContinuousClock.now >= stopDeadline { return }
            } else {
                try executeCommands()
                try sendPublishes()
            }

            var framesRead = 0
            while framesRead < Self.framesPerTurn {
                var frame = amqp_frame_t()
                var zero = timeval(tv_sec: 0, tv_usec: 0)
                let status = amqp_simple_wait_frame_noblock(connection, &frame, &zero)
                if RabbitMQStatus.isTimeout(status) { break }
                try RabbitMQStatus.check(status, "reading a frame")
                try handle(frame)
                framesRead += 1
            }
            amqp_maybe_release_buffers(connection)

            let busy = framesRead == Self.framesPerTurn
                || amqp_frames_enqueued(connection) != 0 || amqp_data_in_buffer(connection) != 0
                || (stopDeadline == nil && inFlight.count < configuration.confirmWindow && (!unsent.isEmpty || mailbox.hasPublishes))
            if busy { continue }
            var fds = [
                pollfd(fd: socketFD, events: Int16(POLLIN), revents: 0),
                pollfd(fd: wakeReadFD, events: Int16(POLLIN), revents: 0),
            ]
            let timeout = stopDeadline == nil ? pollTimeout : 50
            if poll(&fds, 2, timeout) > 0, fds[1].revents != 0 { drainWakePipe() }
        }
    }

    /// Runs deferred and newly queued commands. If the connection drops, the command under way
    /// fails with `.connectionLost` and the rest wait for the next connection.
    private func executeCommands() throws(ConnectionDown) {
        let commands = deferred + mailbox.takeCommands()
        deferred = []
        var next = 0
        do {
            while next < commands.count {
                next += 1
                try execute(commands[next - 1])
            }
        } catch {
            // Every `execute` case replies only after its last throwing call, so this is the only reply.
            commands[next - 1].fail(AMQPError(.connectionLost, "connection lost during the request: \(error.description)"))
            deferred = Array(commands[next...])
            throw error
        }
    }

    /// Sends queued publishes while the confirm window has room. A publish whose send fails is in
    /// flight (it fails with `.connectionLost`); those not sent yet wait for the next connection.
    private func sendPublishes() throws(ConnectionDown) {
        let room = configuration.confirmWindow - inFlight.count
        guard room > 0 else { return }
        if unsent.isEmpty { unsent = mailbox.takePublishes(limit: room) }
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
    private func setCork(_ on: Bool) -> Bool {
        guard let connection else { return false }
        var value: Int32 = on ? 1 : 0
        return setsockopt(amqp_get_sockfd(connection), Int32(IPPROTO_TCP), TCP_CORK, &value, socklen_t(MemoryLayout<Int32>.size)) == 0
    }

    private func execute(_ command: Command) throws(ConnectionDown) {
        switch command {
        case .declare(let topology, let reply):
            if let error = try declareNow(topology) {
                reply(.failure(error))
            } else {
                if !topologies.contains(topology) { topologies.append(topology) }
                reply(.success(()))
            }
        case .declareQueue(let queue, let reply):
            reply(try declareQueueNow(queue, passive: false).map(\.name))
        case .bind(let binding, let reply):
            reply(try rpc("queue.bind \(binding.queue) to \(binding.exchange)") { connection, arena in
                _ = amqp_queue_bind(
                    connection, Self.rpcChannel, arena.bytes(binding.queue), arena.bytes(binding.exchange),
                    arena.bytes(binding.routingKey), arena.table(binding.arguments)
                )
            })
        case .deleteQueue(let name, let reply):
            let result = try rpc("queue.delete \(name)") { connection, arena in
                _ = amqp_queue_delete(connection, Self.rpcChannel, arena.bytes(name), 0, 0)
            }
            if case .success = result { forgetQueue(name) }
            reply(result)
        case .deleteExchange(let name, let reply):
            let result = try rpc("exchange.delete \(name)") { connection, arena in
                _ = amqp_exchange_delete(connection, Self.rpcChannel, arena.bytes(name), 0)
            }
            if case .success = result { forgetExchange(name) }
            reply(result)
        case .queueStatus(let name, let reply):
            reply(try declareQueueNow(AMQPQueue(name: name), passive: true).map { QueueStatus(messages: $0.messages, consumers: $0.consumers) })
        case .get(let queue, let reply):
            reply(try getNow(queue))
        case .consume(let consumer, let reply):
            var record = ConsumerRecord(consumer: consumer)
            if let error = try subscribe(&record) {
                consumer.finish()
                reply(.failure(error))
            } else {
                consumers[consumer.id] = record
                reply(.success(()))
            }
        case .cancel(let consumer, let reply):
            try cancel(consumer)
            reply(.success(()))
        case .settle(let tag, let settlement):
            try settle(tag, settlement)
        }
    }

    // MARK: - Synchronous methods on the RPC channel

    /// Runs one synchronous method on the RPC channel; a channel error becomes a failure (and the
    /// channel is opened again), a connection error is thrown.
    private func rpc(_ what: @autoclosure () -> String, _ body: (amqp_connection_state_t, CArena) -> Void) throws(ConnectionDown) -> Result<Void, AMQPError> {
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
    private func declareNow(_ topology: AMQPTopology) throws(ConnectionDown) -> AMQPError? {
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

    private struct DeclareOK {
        var name: String
        var messages: UInt32
        var consumers: UInt32
    }

    private func declareQueueNow(_ queue: AMQPQueue, passive: Bool) throws(ConnectionDown) -> Result<DeclareOK, AMQPError> {
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

    private func getNow(_ queue: String) throws(ConnectionDown) -> Result<AMQPMessage?, AMQPError> {
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
    private func readContent(on channel: UInt16) throws(ConnectionDown) -> (body: [UInt8], properties: AMQPProperties) {
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

    // MARK: - Consumers

    /// Opens a channel for the consumer, sets its prefetch and subscribes; returns a channel error.
    private func subscribe(_ record: inout ConsumerRecord) throws(ConnectionDown) -> AMQPError? {
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

    private func freeChannel() -> UInt16? {
        var channel = Self.firstConsumerChannel
        while channel <= channelMax {
            if channelSessions[channel] == nil { return channel }
            channel += 1
        }
        return nil
    }

    /// basic.cancel; the channel stays open so that messages already handed out can still be
    /// acked, and buffered ones are requeued.
    private func cancel(_ consumer: AMQPConsumer) throws(ConnectionDown) {
        guard var record = consumers[consumer.id] else {
            consumer.finish()
            return
        }
        if !record.cancelled, let channel = record.channel, let connection {
            let arena = CArena()
            _ = amqp_basic_cancel(connection, channel, arena.bytes("mq-consumer-\(consumer.id)"))
            if let error = try RabbitMQStatus.channelOutcome(of: amqp_get_rpc_reply(connection), connection: connection, channel: channel, what: "basic.cancel") {
                logger.debug("AMQP consumer channel closed on cancel", metadata: ["amqp.error": "\(error.message)"])
                channelSessions[channel] = nil
            }
        }
        record.cancelled = true
        consumers[consumer.id] = record
        consumer.finish()
        for message in consumer.drainBuffered() {
            try settle(message.deliveryTag, .nack(multiple: false, requeue: true))
        }
    }

    // MARK: - Publishing

    private func send(_ publish: PendingPublish) throws(ConnectionDown) {
        guard let connection else { throw ConnectionDown(description: "not connected") }
        let message = publish.message
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

    private func confirm(upTo tag: UInt64, multiple: Bool, acked: Bool) {
        for (reply, result) in inFlight.confirm(upTo: tag, multiple: multiple, acked: acked) { reply(result) }
    }

    // MARK: - Incoming frames

    private func handle(_ frame: amqp_frame_t) throws(ConnectionDown) {
        guard let connection, frame.frame_type == UInt8(AMQP_FRAME_METHOD) else { return }
        let channel = frame.channel
        let method = frame.payload.method
        guard let decoded = method.decoded else { return }
        // Safe for every case below: the library decoded the method named by `method.id` into its
        // channel pool, valid until amqp_maybe_release_buffers at the end of this loop turn; every
        // field used later is copied into a Swift value first.
        switch method.id {
        case AMQP_BASIC_DELIVER_METHOD:
            let deliver = decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            let tagValue = deliver.delivery_tag
            let redelivered = deliver.redelivered != 0
            let exchange = deliver.exchange.string
            let routingKey = deliver.routing_key.string
            let content = try readContent(on: channel)
            let tag = AMQPDeliveryTag(session: channelSessions[channel] ?? 0, channel: channel, value: tagValue)
            let message = AMQPMessage(
                body: content.body, properties: content.properties, deliveryTag: tag,
                redelivered: redelivered, exchange: exchange, routingKey: routingKey
            )
            if let id = consumerByChannel[channel], let record = consumers[id], !record.cancelled, record.consumer.deliver(message) {
                return
            }
            // Nobody wants it any more (cancelled consumer): give it back at once.
            try RabbitMQStatus.check(amqp_basic_nack(connection, channel, tagValue, 0, 1), "basic.nack")
        case AMQP_BASIC_ACK_METHOD where channel == Self.publishChannel:
            let ack = decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            confirm(upTo: ack.delivery_tag, multiple: ack.multiple != 0, acked: true)
        case AMQP_BASIC_NACK_METHOD where channel == Self.publishChannel:
            let nack = decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            confirm(upTo: nack.delivery_tag, multiple: nack.multiple != 0, acked: false)
        case AMQP_BASIC_RETURN_METHOD:
            let returned = decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            let reason = "\(returned.reply_code) \(returned.reply_text.string)"
            let exchange = returned.exchange.string
            let routingKey = returned.routing_key.string
            let content = try readContent(on: channel)
            markReturned(exchange: exchange, routingKey: routingKey, messageID: content.properties.messageID, reason: reason)
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
            logger.warning("AMQP connection blocked by the broker (resource alarm)")
        case AMQP_CONNECTION_UNBLOCKED_METHOD:
            logger.info("AMQP connection unblocked")
        default:
            logger.debug("AMQP frame ignored", metadata: ["amqp.method": "\(method.id)", "amqp.channel": "\(channel)"])
        }
    }

    private func markReturned(exchange: String, routingKey: String, messageID: String?, reason: String) {
        if !inFlight.markReturned(exchange: exchange, routingKey: routingKey, messageID: messageID, reason: reason) {
            logger.debug("AMQP basic.return without a matching publish", metadata: ["amqp.routingKey": "\(routingKey)"])
        }
    }

    /// The broker closed `channel` (close-ok already sent): fail or resume what used it.
    private func channelClosed(_ channel: UInt16, code: UInt16, reason: String) throws(ConnectionDown) {
        channelSessions[channel] = nil
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

    // MARK: - Settling deliveries

    private func settle(_ tag: AMQPDeliveryTag, _ settlement: Settlement) throws(ConnectionDown) {
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

    // MARK: - Topology memory

    private func forgetQueue(_ name: String) {
        for index in topologies.indices {
            topologies[index].queues.removeAll { $0.name == name }
            topologies[index].bindings.removeAll { $0.queue == name }
        }
    }

    private func forgetExchange(_ name: String) {
        for index in topologies.indices {
            topologies[index].exchanges.removeAll { $0.name == name }
            topologies[index].bindings.removeAll { $0.exchange == name }
        }
    }

    // MARK: - Losing, closing, ending

    /// Forgets the connection after a failure: unconfirmed publishes fail with `.connectionLost`,
    /// buffered deliveries are dropped (the broker redelivers them), consumers wait to be resumed.
    private func tearDown(reason: String) {
        mailbox.setConnected(false)
        for reply in inFlight.abandonAll() {
            reply(.failure(AMQPError(.connectionLost, "connection lost before the broker confirmed the message: \(reason)")))
        }
        channelSessions = [:]
        consumerByChannel = [:]
        for (id, var record) in consumers {
            _ = record.consumer.drainBuffered()
            record.channel = nil
            consumers[id] = record
        }
        if let connection {
            amqp_destroy_connection(connection)
            self.connection = nil
        }
    }

    private func closeCleanly() {
        guard let connection else { return }
        mailbox.setConnected(false)
        _ = amqp_connection_close(connection, AMQP_REPLY_SUCCESS)
        amqp_destroy_connection(connection)
        self.connection = nil
        logger.info("AMQP connection closed")
    }

    /// Fails everything still waiting with `.shutdown`, finishes consumers and closes the pipe.
    private func shutDown() {
        let shutdown = AMQPError(.shutdown, "the AMQP connection's run() ended")
        if let connection {
            amqp_destroy_connection(connection)
            self.connection = nil
        }
        let (commands, publishes, waiters) = mailbox.finish()
        for command in deferred + commands { command.fail(shutdown) }
        deferred = []
        for publish in unsent + publishes { publish.reply(.failure(shutdown)) }
        unsent = []
        for waiter in waiters { waiter.resume(throwing: shutdown) }
        for reply in inFlight.abandonAll() { reply(.failure(shutdown)) }
        for record in consumers.values {
            _ = record.consumer.drainBuffered()
            record.consumer.finish()
        }
        consumers = [:]
        // Safe to close: `mailbox.finish()` cleared the write descriptor under the lock, so no
        // task can write to it (or to a reused descriptor number) any more.
        close(wakeReadFD)
        close(wakeWriteFD)
    }

    /// Waits `delay` between connect attempts, waking early for a stop request. Commands that
    /// arrive meanwhile wait (settlements of the dead connection are dropped, cancels done).
    private func sleepInterruptibly(_ delay: Duration) {
        let deadline = ContinuousClock.now + delay
        while !mailbox.isStopRequested {
            for command in mailbox.takeCommands() {
                switch command {
                case .settle: break
                case .cancel(let consumer, let reply):
                    if var record = consumers[consumer.id] {
                        record.cancelled = true
                        consumers[consumer.id] = record
                    }
                    consumer.finish()
                    _ = consumer.drainBuffered()
                    reply(.success(()))
                default: deferred.append(command)
                }
            }
            let remaining = ContinuousClock.now.duration(to: deadline)
            if remaining <= .zero { return }
            var fds = [pollfd(fd: wakeReadFD, events: Int16(POLLIN), revents: 0)]
            if poll(&fds, 1, Int32(max(1, Self.milliseconds(remaining)))) > 0 { drainWakePipe() }
        }
    }

    private func drainWakePipe() {
        var buffer = [UInt8](repeating: 0, count: 64)
        // The read end is non-blocking: read until empty.
        while read(wakeReadFD, &buffer, buffer.count) > 0 {}
    }

    // MARK: - Time conversions

    private static func seconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) + (attoseconds > 0 ? 1 : 0)
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }

    private static func cTimeval(_ duration: Duration) -> Glibc.timeval {
        let (seconds, attoseconds) = duration.components
        return Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}
