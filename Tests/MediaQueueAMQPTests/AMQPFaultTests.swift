import Foundation
@testable import MediaQueueAMQP
import MediaQueueTestSupport
import Synchronization
import Testing

/// Tests that stop and start the fault broker, or use its TLS listener. Each holds the fault
/// broker exclusively; they are skipped when no fault broker is configured.
@Suite("AMQP client with the fault broker", .enabled(if: FaultBroker.isAvailable))
struct AMQPFaultTests {
    /// A list of a cluster's nodes: a node that does not answer is passed over, and when the
    /// node in use goes away the connection moves on to the next one.
    @Test func aURLListMovesToTheNextNodeWhenOneIsDownOrGoesAway() async throws {
        try await FaultBroker.shared.withExclusiveAccess {
            // Nothing listens on port 1: the fault broker is the second node tried.
            let urls = "amqp://guest:guest@127.0.0.1:1/,\(FaultBroker.shared.url),\(TestEnvironment.amqpURL)"
            let queue = TestEnvironment.uniqueName("amqp.failover")
            try await withConnection(url: urls, configure: {
                $0.heartbeat = .seconds(2)
                $0.connectTimeout = .seconds(2)
                $0.reconnectDelay = .milliseconds(100) ... .seconds(1)
            }) { connection in
                try await connection.declare(AMQPTopology(queues: [AMQPQueue(name: queue, durable: false)]))
                try await connection.publish(AMQPOutgoingMessage(routingKey: queue, body: "on the fault broker".bytes))
                #expect(try await connection.get(queue: queue)?.text == "on the fault broker")

                // The fault broker goes away: the next node in the list takes over (the queue is
                // declared there again with the remembered topology).
                try await FaultBroker.control("stop")
                try await eventually("the connection to move to the next node") {
                    connection.isConnected && connection.connectionCount >= 2
                }
                try await connection.publish(AMQPOutgoingMessage(routingKey: queue, body: "on the main broker".bytes))
                #expect(try await connection.get(queue: queue)?.text == "on the main broker")
                try await connection.deleteQueue(queue)
            }
        }
    }

    /// A broker that stops answering with its socket open (hung, or behind a network that drops
    /// every packet): nothing the connection sends fails, so only the broker's missed heartbeats
    /// can end it, also on a connection that only consumes and acks; the consumer then goes on
    /// at the next node of the list.
    @Test func aConsumerLeavesABrokerThatStoppedAnsweringAfterItsMissedHeartbeats() async throws {
        try await consumeThroughAFreeze("amqp.frozen") { connection, queue, consumer in
            try await connection.publish(AMQPOutgoingMessage(routingKey: queue, body: "on the next node".bytes))
            #expect(await receive(1, from: consumer, ackingWith: connection).map(\.text) == ["on the next node"])
        }
    }

    /// Consumes a new queue on a connection to the fault broker, then the main one (a cluster's
    /// list); freezes the fault broker (`whileFrozen` runs then), waits until the connection
    /// left it after its missed heartbeats, thaws it, and runs `afterwards` on the main broker.
    func consumeThroughAFreeze(
        _ name: String, whileFrozen: @Sendable (AMQPConsumer) async -> Void = { _ in },
        afterwards: @Sendable (AMQPConnection, String, AMQPConsumer) async throws -> Void
    ) async throws {
        try await FaultBroker.shared.withExclusiveAccess {
            let queue = TestEnvironment.uniqueName(name)
            try await withConnection(url: "\(FaultBroker.shared.url),\(TestEnvironment.amqpURL)", configure: {
                $0.heartbeat = .seconds(2)
                $0.connectTimeout = .seconds(2)
                $0.reconnectDelay = .milliseconds(100) ... .seconds(1)
            }) { connection in
                try await connection.declare(AMQPTopology(queues: [AMQPQueue(name: queue, durable: false)]))
                let consumer = try await connection.consume(queue: queue, prefetch: 10)
                try await FaultBroker.control("freeze")
                do {
                    await whileFrozen(consumer)
                    try await eventually("the connection to leave the silent node") { connection.connectionCount >= 2 && connection.isConnected }
                } catch {
                    try? await FaultBroker.control("thaw")
                    throw error
                }
                try await FaultBroker.control("thaw")
                try await afterwards(connection, queue, consumer)
                try await connection.deleteQueue(queue)
            }
        }
    }

    /// A broker under a resource alarm stops reading a connection once it publishes. A batch
    /// larger than the socket's buffers left the connection thread waiting in its write until
    /// the alarm cleared, and `run()` with it: a service asked to stop did not. Now the socket
    /// is shut down under the thread past twice `connectTimeout`, and `run()` ends.
    @Test func aStopEndsAConnectionStuckWritingToABrokerThatStoppedReading() async throws {
        try await FaultBroker.shared.withExclusiveAccess {
            let queue = TestEnvironment.uniqueName("amqp.stuck")
            var configuration = try AMQPConfiguration(url: FaultBroker.shared.url)
            configuration.connectTimeout = .seconds(2)
            let connection = AMQPConnection(configuration: configuration, logger: testLogger)
            let running = Task { try await connection.run() }
            let ended = RunEnded()
            let watcher = Task {
                _ = try? await running.value
                ended.flag.store(true, ordering: .releasing)
            }
            try await connectedWithin(connection)
            try await connection.declare(AMQPTopology(queues: [AMQPQueue(name: queue, durable: false)]))
            try await FaultBroker.control("block-publishers")
            do {
                let body = [UInt8](repeating: 0x61, count: 100_000)
                let batch = Task { await connection.publish(batch: (0..<300).map { _ in AMQPOutgoingMessage(routingKey: queue, body: body) }) }
                try await FaultBroker.control("wait-blocked-publisher")
                running.cancel()
                try await eventually("run() to end though the broker reads nothing") { ended.flag.load(ordering: .acquiring) }
                #expect(await batch.value.allSatisfy { (try? $0.get()) == nil }, "nothing was confirmed")
            } catch {
                running.cancel()
                try? await FaultBroker.control("unblock-publishers")
                throw error
            }
            try await FaultBroker.control("unblock-publishers")
            await watcher.value
            try await withConnection(url: FaultBroker.shared.url) { connection in try await connection.deleteQueue(queue) }
        }
    }

    /// A consumer cancelled as the connection is lost (here: the broker stops answering during
    /// the cancel) was subscribed again after the reconnect, where every delivery to it went
    /// back to the queue at once, round after round.
    @Test func aConsumerCancelledAsTheConnectionIsLostIsNotSubscribedAgain() async throws {
        try await consumeThroughAFreeze("amqp.cancel.lost", whileFrozen: { consumer in await consumer.cancel() }) { connection, queue, _ in
            let consumers = try await connection.queueStatus(queue).consumers
            #expect(consumers == 0)
        }
    }

    /// A consume whose caller gave up while the broker was away (the request waits for the
    /// connection, and the caller's cancel follows it) was made once the broker was back.
    @Test func aConsumeGivenUpWhileTheBrokerWasAwayIsNotMadeWhenItIsBack() async throws {
        try await FaultBroker.shared.withExclusiveAccess {
            let queue = TestEnvironment.uniqueName("amqp.consume.given-up")
            try await withConnection(url: FaultBroker.shared.url, configure: {
                $0.heartbeat = .seconds(2)
                $0.reconnectDelay = .milliseconds(100) ... .seconds(1)
            }) { connection in
                try await connection.declare(AMQPTopology(queues: [AMQPQueue(name: queue, durable: false)]))
                try await FaultBroker.control("stop")
                try await eventually("the client to notice the outage") { !connection.isConnected }
                // What `consume` sends when its caller is cancelled while it waits.
                let consumer = AMQPConsumer(id: 1 << 40, queue: queue, prefetch: 10, connection: connection)
                connection.mailbox.enqueue(.consume(consumer, { _ in }))
                connection.mailbox.enqueue(.cancel(consumer, { _ in }))
                try await FaultBroker.control("start")
                try await connectedWithin(connection)
                #expect(try await connection.queueStatus(queue).consumers == 0)
                try await connection.deleteQueue(queue)
            }
        }
    }

    /// Set once a connection's `run()` returned.
    final class RunEnded: Sendable {
        let flag = Atomic(false)
    }

    /// A broker under a resource alarm stops reading a connection once it publishes. Cancelling a
    /// consumer then does not wait for an answer that cannot come (and drop the connection at the
    /// RPC timeout): the connection stays up, and the held publish is confirmed once the alarm
    /// clears.
    @Test func aConsumerCancelledWhileTheBrokerHoldsPublishesLeavesTheConnectionUp() async throws {
        try await FaultBroker.shared.withExclusiveAccess {
            let queue = TestEnvironment.uniqueName("amqp.blocked")
            try await withConnection(url: FaultBroker.shared.url) { connection in
                try await connection.declare(AMQPTopology(queues: [AMQPQueue(name: queue, durable: false)]))
                let consumer = try await connection.consume(queue: queue, prefetch: 10)
                try await FaultBroker.control("block-publishers")
                do {
                    let held = Task { try await connection.publish(AMQPOutgoingMessage(routingKey: queue, body: "held".bytes)) }
                    try await FaultBroker.control("wait-blocked-publisher")
                    await consumer.cancel()
                    try await FaultBroker.control("unblock-publishers")
                    try await held.value
                } catch {
                    try? await FaultBroker.control("unblock-publishers")
                    throw error
                }
                #expect(connection.connectionCount == 1, "the cancel did not cost the connection")
                // The cancelled consumer gave back what came before the broker read its cancel.
                let message = try await eventually("the held message in its queue") { try await connection.get(queue: queue)?.text }
                #expect(message == "held")
            }
        }
    }

    /// Decision documented here: a publish requested while the connection is down waits in the
    /// mailbox and succeeds after the reconnect; only publishes already sent and unconfirmed when
    /// the connection drops fail with `.connectionLost`.
    @Test func brokerRestartKeepsConsumersTopologyAndPersistentMessages() async throws {
        try await FaultBroker.shared.withExclusiveAccess {
            let liveQueue = TestEnvironment.uniqueName("amqp.restart.live")
            let storedQueue = TestEnvironment.uniqueName("amqp.restart.stored")
            try await withConnection(url: FaultBroker.shared.url, configure: {
                $0.heartbeat = .seconds(2)
                $0.reconnectDelay = .milliseconds(100) ... .seconds(1)
            }) { connection in
                try await connection.declare(AMQPTopology(queues: [
                    AMQPQueue(name: liveQueue, durable: true),
                    AMQPQueue(name: storedQueue, durable: true),
                ]))
                // Transient queues do not outlive the broker: only the remembered one is back after the reconnect.
                let rememberedQueue = TestEnvironment.uniqueName("amqp.restart.remembered")
                let forgottenQueue = TestEnvironment.uniqueName("amqp.restart.forgotten")
                try await connection.declare(AMQPTopology(queues: [AMQPQueue(name: rememberedQueue, durable: false)]))
                try await connection.declare(AMQPTopology(queues: [AMQPQueue(name: forgottenQueue, durable: false)]), remember: false)
                let consumer = try await connection.consume(queue: liveQueue, prefetch: 10)
                try await connection.publish(AMQPOutgoingMessage(routingKey: liveQueue, body: "before".bytes, properties: .init(persistent: true)))
                #expect(await receive(1, from: consumer, ackingWith: connection).map(\.text) == ["before"])
                for index in 0..<3 {
                    try await connection.publish(AMQPOutgoingMessage(
                        routingKey: storedQueue, body: "stored \(index)".bytes, properties: .init(persistent: true)
                    ))
                }

                try await FaultBroker.control("stop")
                try await eventually("the client to notice the outage") { !connection.isConnected }
                let duringOutage = Task {
                    try await connection.publish(AMQPOutgoingMessage(routingKey: liveQueue, body: "during".bytes, properties: .init(persistent: true)))
                }
                try await FaultBroker.control("start")
                try await connectedWithin(connection)
                // Reconnected (a missed heartbeat on a loaded machine may add another reconnect).
                #expect(connection.connectionCount >= 2)
                try await duringOutage.value
                try await connection.publish(AMQPOutgoingMessage(routingKey: liveQueue, body: "after".bytes, properties: .init(persistent: true)))

                // The same consumer object goes on: no re-creation.
                let received = await receive(2, from: consumer, ackingWith: connection)
                #expect(Set(received.map(\.text)) == ["during", "after"])

                var stored: [String] = []
                while let message = try await connection.get(queue: storedQueue) { stored.append(message.text) }
                #expect(stored == ["stored 0", "stored 1", "stored 2"])
                #expect(try await connection.queueStatus(rememberedQueue).messages == 0)
                let gone = await #expect(throws: AMQPError.self) { try await connection.queueStatus(forgottenQueue) }
                #expect(gone?.replyCode == 404)
                try await connection.deleteQueue(rememberedQueue)

                await consumer.cancel()
                try await connection.deleteQueue(liveQueue)
                try await connection.deleteQueue(storedQueue)
            }
        }
    }

    /// A batch publish waiting for a broker that is away ends as soon as its task is cancelled
    /// (a stopping relay does not wait for the broker), and what it held is not sent once the
    /// connection is back: nobody would record its confirm.
    @Test func aBatchPublishCancelledWhileTheBrokerIsAwayEndsAndIsNotSentLater() async throws {
        try await FaultBroker.shared.withExclusiveAccess {
            let queue = TestEnvironment.uniqueName("amqp.restart.cancelled")
            try await withConnection(url: FaultBroker.shared.url, configure: {
                $0.reconnectDelay = .milliseconds(100) ... .seconds(1)
            }) { connection in
                try await connection.declare(AMQPTopology(queues: [AMQPQueue(name: queue, durable: true)]))
                try await FaultBroker.control("stop")
                try await eventually("the client to notice the outage") { !connection.isConnected }
                let batch = Task {
                    await connection.publish(batch: ["abandoned 1", "abandoned 2"].map {
                        AMQPOutgoingMessage(routingKey: queue, body: $0.bytes, properties: .init(persistent: true))
                    })
                }
                try await eventually("the batch waiting for the broker") { connection.mailbox.hasPublishes }
                batch.cancel()
                let results = await batch.value
                #expect(results.map { result -> AMQPError.Code? in if case .failure(let error) = result { error.code } else { nil } } == [.cancelled, .cancelled])

                try await FaultBroker.control("start")
                try await connectedWithin(connection)
                try await connection.publish(AMQPOutgoingMessage(routingKey: queue, body: "after".bytes, properties: .init(persistent: true)))
                var received: [String] = []
                while let message = try await connection.get(queue: queue) { received.append(message.text) }
                #expect(received == ["after"], "the abandoned batch was not sent after the reconnect")
                try await connection.deleteQueue(queue)
            }
        }
    }

    @Test func inFlightPublishesFailWithConnectionLostOrSucceed() async throws {
        try await FaultBroker.shared.withExclusiveAccess {
            let queue = TestEnvironment.uniqueName("amqp.restart.inflight")
            try await withConnection(url: FaultBroker.shared.url, configure: {
                $0.reconnectDelay = .milliseconds(100) ... .seconds(1)
            }) { connection in
                try await connection.declare(AMQPTopology(queues: [AMQPQueue(name: queue, durable: true)]))
                let batch = Task {
                    await connection.publish(batch: (0..<20_000).map { index in
                        AMQPOutgoingMessage(routingKey: queue, body: Array(repeating: 1, count: 1000), properties: .init(messageID: "\(index)", persistent: true))
                    })
                }
                try await eventually("some messages stored") { try await connection.queueStatus(queue).messages > 0 }
                try await FaultBroker.control("restart")
                let results = await batch.value
                // Every publish settles: confirmed, or failed with `.connectionLost` (to be retried);
                // nothing else and nothing left hanging.
                let failures = results.compactMap { result -> AMQPError? in
                    if case .failure(let error) = result { return error } else { return nil }
                }
                #expect(failures.allSatisfy { $0.code == .connectionLost }, "\(failures.prefix(3))")
                let confirmed = results.count - failures.count
                print("AMQP restart during a 20,000-message batch: \(confirmed) confirmed, \(failures.count) failed with connectionLost")
                try await connectedWithin(connection)
                // Confirmed persistent messages survived the restart.
                #expect(try await connection.queueStatus(queue).messages >= UInt32(confirmed))
                try await connection.deleteQueue(queue)
            }
        }
    }

    @Test(.enabled(if: TestEnvironment.faultAMQPSURL != nil && TestEnvironment.faultCACertificatePath != nil))
    func tlsWithTestCA() async throws {
        try await FaultBroker.shared.withExclusiveAccess {
            let url = try #require(TestEnvironment.faultAMQPSURL)
            let queue = TestEnvironment.uniqueName("amqp.tls")
            try await withConnection(url: url, configure: {
                $0.caCertificatePath = TestEnvironment.faultCACertificatePath
                $0.verifyPeer = true
            }) { connection in
                let name = try await connection.declareQueue(AMQPQueue(name: queue, durable: false, exclusive: true))
                try await connection.publish(AMQPOutgoingMessage(routingKey: name, body: "over TLS".bytes))
                let consumer = try await connection.consume(queue: name, prefetch: 5)
                #expect(await receive(1, from: consumer, ackingWith: connection).map(\.text) == ["over TLS"])
                await consumer.cancel()
            }
        }
    }
}
