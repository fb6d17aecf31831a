internal import CRabbitMQ
import Glibc
import Logging

/// Owns one rabbitmq-c connection at a time and runs on the connection's dedicated thread for the
/// whole of `run()`. Nothing here is touched from any other thread; Swift tasks talk to it only
/// through the `Mailbox` and get answers through `Reply` closures.
///
/// This file is its lifecycle: connect, serve the mailbox and the socket, reconnect with backoff,
/// close. Its other parts: `+RPC` (synchronous methods, remembered topology), `+Consumers`
/// (subscriptions and settling), `+Publishing` (confirmed publishes and incoming frames) and
/// `+Content` (messages put together from their frames).
/// Members are internal rather than private only so that these files share them.
final class ConnectionWorker {
    static let rpcChannel: UInt16 = 1
    static let publishChannel: UInt16 = 2
    static let firstConsumerChannel: UInt16 = 3
    static let frameMax: Int32 = 131_072
    /// Frames read per loop turn before the mailbox gets another look (a message is three or more).
    static let framesPerTurn = 768

    let configuration: AMQPConfiguration
    /// The broker's nodes; connections go to one at a time, the next after a failure.
    let endpoints: [AMQPEndpoint]
    private(set) var current = 0
    var endpoint: AMQPEndpoint { endpoints[current] }
    var logger: Logger
    let mailbox: Mailbox
    let wakeReadFD: Int32
    let wakeWriteFD: Int32

    /// The live connection, nil between connections.
    var connection: amqp_connection_state_t?
    var channelMax: UInt16 = 2047
    /// Open channels and the session id of their current opening (delivery tags carry it).
    var channelSessions: [UInt16: UInt64] = [:]
    var nextSession: UInt64 = 0

    /// Publishes sent on the publish channel and not confirmed yet.
    var inFlight = PublisherConfirms<Reply<Void>>()
    /// Whether the broker said it blocks this connection's publishes (`connection.blocked`, a
    /// resource alarm).
    var blockedByBroker = false
    /// A broker stops reading a connection it blocks once that connection publishes. With
    /// publishes unconfirmed meanwhile, a synchronous method would only wait for the RPC timeout
    /// (and then drop the connection, failing those publishes).
    var brokerIsNotReading: Bool { blockedByBroker && !inFlight.isEmpty }

    struct ConsumerRecord {
        var consumer: AMQPConsumer
        var channel: UInt16?
        var cancelled = false
    }

    var topologies: [AMQPTopology] = []
    var consumers: [UInt64: ConsumerRecord] = [:]
    var consumerByChannel: [UInt16: UInt64] = [:]
    /// Messages whose frames are still arriving, by channel.
    var incoming: [UInt16: IncomingContent] = [:]
    /// Commands taken from the mailbox but not run yet (taken while disconnected, or left over
    /// when the connection dropped), run once connected again.
    var deferred: [Command] = []
    /// Publishes taken from the mailbox but not sent yet (left over when the connection dropped).
    var unsent: [PendingPublish] = []

    init(configuration: AMQPConfiguration, endpoints: [AMQPEndpoint], logger: Logger, mailbox: Mailbox, wakeReadFD: Int32, wakeWriteFD: Int32) {
        precondition(!endpoints.isEmpty, "a connection needs a broker URL")
        self.configuration = configuration
        self.endpoints = endpoints
        self.logger = logger
        self.logger[metadataKey: "amqp.url"] = "\(endpoints[0].redactedURL)"
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
                // The next node; the delay grows once every node of the list has failed.
                current = (current + 1) % endpoints.count
                logger[metadataKey: "amqp.url"] = "\(endpoint.redactedURL)"
                sleepInterruptibly(delay)
                if !wasConnected, current == 0 {
                    delay = min(delay * 2, configuration.reconnectDelay.upperBound)
                }
            }
        }
        shutDown()
    }

    // MARK: - Connecting

    func connect() throws(ConnectionDown) {
        guard let connection = amqp_new_connection() else { throw ConnectionDown(description: "out of memory") }
        self.connection = connection

        let socket: OpaquePointer?
        if endpoint.tls {
            socket = amqp_ssl_socket_new(connection)
            if let socket {
                if let path = configuration.caCertificatePath ?? AMQPConfiguration.defaultCAFile() {
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
                "connection.blocked": true,
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
        mailbox.setConnected(true, frameMax: Int(amqp_get_frame_max(connection)), socket: amqp_get_sockfd(connection))
    }

    func openChannel(_ channel: UInt16) throws(ConnectionDown) {
        guard let connection else { throw ConnectionDown(description: "not connected") }
        _ = amqp_channel_open(connection, channel)
        if let error = try RabbitMQStatus.channelOutcome(of: amqp_get_rpc_reply(connection), connection: connection, channel: channel, what: "channel.open") {
            throw ConnectionDown(description: error.message)
        }
        nextSession += 1
        channelSessions[channel] = nextSession
    }

    func openPublishChannel() throws(ConnectionDown) {
        try openChannel(Self.publishChannel)
        guard let connection else { throw ConnectionDown(description: "not connected") }
        _ = amqp_confirm_select(connection, Self.publishChannel)
        if let error = try RabbitMQStatus.channelOutcome(of: amqp_get_rpc_reply(connection), connection: connection, channel: Self.publishChannel, what: "confirm.select") {
            throw ConnectionDown(description: error.message)
        }
        inFlight.channelOpened()
    }

    // MARK: - Serving

    func serve() throws(ConnectionDown) {
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
    func executeCommands() throws(ConnectionDown) {
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

    func execute(_ command: Command) throws(ConnectionDown) {
        switch command {
        case .declare(let topology, let remember, let reply):
            if let error = try declareNow(topology) {
                reply(.failure(error))
            } else {
                if remember && !topologies.contains(topology) { topologies.append(topology) }
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
            // Its subscriber gave up while it waited for a connection, and the cancel that
            // followed ended it: subscribed now, it would take deliveries nobody reads.
            guard !consumer.isFinished else {
                return reply(.failure(AMQPError(.cancelled, "the consumer was cancelled before it could be subscribed")))
            }
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

    // MARK: - Losing, closing, ending

    /// Forgets the connection after a failure: unconfirmed publishes fail with `.connectionLost`,
    /// buffered deliveries are dropped (the broker redelivers them), consumers wait to be resumed.
    func tearDown(reason: String) {
        mailbox.setConnected(false)
        blockedByBroker = false
        for reply in inFlight.abandonAll() {
            reply(.failure(AMQPError(.connectionLost, "connection lost before the broker confirmed the message: \(reason)")))
        }
        channelSessions = [:]
        consumerByChannel = [:]
        incoming = [:]
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

    func closeCleanly() {
        guard let connection else { return }
        mailbox.setConnected(false)
        // One the broker does not read is just dropped; the broker then requeues what it had
        // delivered and not been acked, as it does after a clean close.
        if !brokerIsNotReading { _ = amqp_connection_close(connection, AMQP_REPLY_SUCCESS) }
        blockedByBroker = false
        amqp_destroy_connection(connection)
        self.connection = nil
        logger.info("AMQP connection closed")
    }

    /// Fails everything still waiting with `.shutdown`, finishes consumers and closes the pipe.
    func shutDown() {
        let shutdown = AMQPError(.shutdown, "the AMQP connection's run() ended")
        if let connection {
            mailbox.setConnected(false)
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
    func sleepInterruptibly(_ delay: Duration) {
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

    func drainWakePipe() {
        var buffer = [UInt8](repeating: 0, count: 64)
        // The read end is non-blocking: read until empty.
        while read(wakeReadFD, &buffer, buffer.count) > 0 {}
    }

    // MARK: - Time conversions

    static func seconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) + (attoseconds > 0 ? 1 : 0)
    }

    static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }

    static func cTimeval(_ duration: Duration) -> Glibc.timeval {
        let (seconds, attoseconds) = duration.components
        return Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}
