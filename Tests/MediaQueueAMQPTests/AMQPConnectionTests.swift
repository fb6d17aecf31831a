import Foundation
@testable import MediaQueueAMQP
import MediaQueueTestSupport
import Testing

@Suite("AMQP client against the test broker")
struct AMQPConnectionTests {
    @Test func topologyPublishConsumeKeepsEveryProperty() async throws {
        let exchange = TestEnvironment.uniqueName("amqp.props.x")
        let queue = TestEnvironment.uniqueName("amqp.props.q")
        let deadLetter = TestEnvironment.uniqueName("amqp.props.dlx")
        try await withConnection { connection in
            try await connection.declare(AMQPTopology(
                exchanges: [
                    AMQPExchange(name: exchange, type: "topic", durable: false, autoDelete: false),
                    AMQPExchange(name: deadLetter, type: "fanout", durable: false),
                ],
                queues: [AMQPQueue(name: queue, durable: false, arguments: [
                    "x-max-priority": .int(10),
                    "x-dead-letter-exchange": .string(deadLetter),
                ])],
                bindings: [AMQPBinding(queue: queue, exchange: exchange, routingKey: "media.#")]
            ))
            let properties = AMQPProperties(
                contentType: "application/json", contentEncoding: "identity",
                messageID: "msg-1", correlationID: "corr-1", replyTo: "replies",
                persistent: true, priority: 7, timestamp: 1_700_000_000, type: "job.created",
                appID: "mediaqueue-tests", expiration: "600000",
                headers: [
                    "string": "value", "int": .int(-42), "big": .int(1 << 40), "bool": true, "double": 2.5,
                    "bytes": .bytes([0, 1, 255]), "array": .array(["a", .int(1), false]),
                    "table": .table(["nested": "yes", "n": .int(3)]),
                ]
            )
            let body = Array("{\"hello\":\"wörld\"}".utf8) + [0, 255]
            try await connection.publish(AMQPOutgoingMessage(exchange: exchange, routingKey: "media.transcode", body: body, properties: properties))

            let consumer = try await connection.consume(queue: queue, prefetch: 10)
            let messages = await receive(1, from: consumer, ackingWith: connection)
            try #require(messages.count == 1)
            let message = messages[0]
            #expect(message.body == body)
            #expect(message.properties == properties)
            #expect(message.exchange == exchange)
            #expect(message.routingKey == "media.transcode")
            #expect(!message.redelivered)
            await consumer.cancel()
            #expect(await consumer.nextBatch(max: 1) == nil)
            try await eventually("ack to empty the queue") { try await connection.queueStatus(queue).messages == 0 }
            try await connection.deleteQueue(queue)
            try await connection.deleteExchange(exchange)
            try await connection.deleteExchange(deadLetter)
        }
    }

    /// A consumer the broker cancelled (its queue deleted) gives its channel back when its owner
    /// cancels it: the next consumer gets the same channel, so a service that replaces such
    /// consumers does not use up the connection's channels.
    @Test func aConsumerTheBrokerCancelledGivesItsChannelBackOnCancel() async throws {
        try await withConnection { connection in
            func consumeOne(from queue: String) async throws -> (channel: UInt16, consumer: AMQPConsumer) {
                try await connection.declare(AMQPTopology(queues: [AMQPQueue(name: queue, durable: false)]))
                try await connection.publish(AMQPOutgoingMessage(routingKey: queue, body: [1]))
                let consumer = try await connection.consume(queue: queue, prefetch: 1)
                let message = try #require(await receive(1, from: consumer, ackingWith: connection).first)
                return (message.deliveryTag.channel, consumer)
            }
            let first = TestEnvironment.uniqueName("amqp.cancelled.a")
            let (channel, consumer) = try await consumeOne(from: first)
            try await connection.deleteQueue(first)
            #expect(await consumer.nextBatch(max: 1) == nil, "the broker's cancel ends the consumer")
            await consumer.cancel()

            let second = TestEnvironment.uniqueName("amqp.cancelled.b")
            let next = try await consumeOne(from: second)
            #expect(next.channel == channel)
            await next.consumer.cancel()
            try await connection.deleteQueue(second)
        }
    }

    /// With `maxBodyBytes`, a larger body is counted and dropped as its frames come (it spans
    /// about forty frames here), never held: the message comes with its properties, an empty body
    /// and its size; the message after it comes whole, and a large unroutable publish is still
    /// returned by its properties.
    @Test func aBodyOverTheLimitIsDroppedWithItsSizeAndTheNextComesWhole() async throws {
        let queue = TestEnvironment.uniqueName("amqp.oversized")
        try await withConnection(configure: { $0.maxBodyBytes = 1_000 }) { connection in
            try await connection.declare(AMQPTopology(queues: [AMQPQueue(name: queue, durable: false)]))
            let large = [UInt8](repeating: 7, count: 5_000_000)
            try await connection.publish(AMQPOutgoingMessage(routingKey: queue, body: large, properties: AMQPProperties(messageID: "large")))
            try await connection.publish(AMQPOutgoingMessage(routingKey: queue, body: Array("small".utf8), properties: AMQPProperties(messageID: "small")))
            let consumer = try await connection.consume(queue: queue, prefetch: 10)
            let messages = await receive(2, from: consumer, ackingWith: connection)
            try #require(messages.count == 2)
            #expect(messages[0].properties.messageID == "large")
            #expect(messages[0].body.isEmpty && messages[0].oversizedBodyBytes == large.count)
            #expect(messages[1].properties.messageID == "small")
            #expect(messages[1].body == Array("small".utf8) && messages[1].oversizedBodyBytes == nil)
            await consumer.cancel()

            await expectAMQPError(.returned, containing: "NO_ROUTE") {
                try await connection.publish(AMQPOutgoingMessage(routingKey: TestEnvironment.uniqueName("amqp.nowhere"), body: large, mandatory: true))
            }
            try await connection.deleteQueue(queue)
        }
    }

    /// Bodies of many frames each (a frame holds 128 KiB at most), for two consumers of one
    /// connection at once, each come whole and in order; at the limit a body is kept, one byte
    /// over it is not.
    @Test func bodiesOfManyFramesOnTwoConsumersAtOnceComeWholeAndTheLimitIsExact() async throws {
        let queues = [TestEnvironment.uniqueName("amqp.frames.a"), TestEnvironment.uniqueName("amqp.frames.b")]
        let limit = 300_000
        try await withConnection(configure: { $0.maxBodyBytes = limit }) { connection in
            try await connection.declare(AMQPTopology(queues: queues.map { AMQPQueue(name: $0, durable: false) }))
            func body(_ queue: Int, _ index: Int) -> [UInt8] {
                (0..<(limit - index)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index &+ queue) }
            }
            for index in 0..<4 {
                for queue in 0..<2 {
                    try await connection.publish(AMQPOutgoingMessage(routingKey: queues[queue], body: body(queue, index)))
                }
            }
            try await connection.publish(AMQPOutgoingMessage(routingKey: queues[0], body: [UInt8](repeating: 1, count: limit + 1)))
            let consumers = [try await connection.consume(queue: queues[0], prefetch: 10), try await connection.consume(queue: queues[1], prefetch: 10)]
            async let first = receive(5, from: consumers[0], ackingWith: connection)
            async let second = receive(4, from: consumers[1], ackingWith: connection)
            let received = await [first, second]
            for queue in 0..<2 {
                try #require(received[queue].count == 4 + (queue == 0 ? 1 : 0))
                for index in 0..<4 {
                    #expect(received[queue][index].body == body(queue, index), "queue \(queue), message \(index)")
                    #expect(received[queue][index].oversizedBodyBytes == nil)
                }
            }
            #expect(received[0][4].body.isEmpty && received[0][4].oversizedBodyBytes == limit + 1)
            for (consumer, queue) in zip(consumers, queues) {
                await consumer.cancel()
                try await connection.deleteQueue(queue)
            }
        }
    }

    @Test func redeclareWithOtherArgumentsFailsAndConnectionGoesOn() async throws {
        let queue = TestEnvironment.uniqueName("amqp.redeclare")
        try await withConnection { connection in
            try await connection.declare(AMQPTopology(queues: [AMQPQueue(name: queue, durable: false, arguments: ["x-max-priority": .int(5)])]))
            await #expect(throws: Never.self) {
                // Same arguments again: fine.
                try await connection.declare(AMQPTopology(queues: [AMQPQueue(name: queue, durable: false, arguments: ["x-max-priority": .int(5)])]))
            }
            do {
                _ = try await connection.declareQueue(AMQPQueue(name: queue, durable: false, arguments: ["x-max-priority": .int(9)]))
                Issue.record("redeclaring with other arguments should fail")
            } catch let error as AMQPError {
                #expect(error.code == .channelClosed)
                #expect(error.replyCode == 406)
                #expect(error.message.contains("PRECONDITION_FAILED"))
                #expect(error.message.contains("x-max-priority"))
            }
            // The connection keeps working.
            try await connection.publish(AMQPOutgoingMessage(routingKey: queue, body: "after".bytes))
            let consumer = try await connection.consume(queue: queue, prefetch: 1)
            let messages = await receive(1, from: consumer, ackingWith: connection)
            #expect(messages.map(\.text) == ["after"])
            #expect(connection.connectionCount == 1)
            await consumer.cancel()
            try await connection.deleteQueue(queue)
        }
    }

    @Test func missingQueueAndExchangeAreChannelErrors() async throws {
        let missing = TestEnvironment.uniqueName("amqp.missing")
        try await withConnection { connection in
            await expectAMQPError(.channelClosed, containing: "NOT_FOUND") {
                _ = try await connection.queueStatus(missing)
            }
            await expectAMQPError(.channelClosed, containing: "NOT_FOUND") {
                _ = try await connection.consume(queue: missing, prefetch: 1)
            }
            // Publishing to a missing exchange closes the publish channel; that publish fails and
            // the next one works.
            await expectAMQPError(.channelClosed, containing: "NOT_FOUND") {
                try await connection.publish(AMQPOutgoingMessage(exchange: missing, routingKey: "k", body: []))
            }
            let queue = try await connection.declareQueue(AMQPQueue(name: "", durable: false, exclusive: true, autoDelete: true))
            #expect(queue.hasPrefix("amq.gen-"))
            #expect(try await connection.get(queue: queue) == nil)
            try await connection.publish(AMQPOutgoingMessage(routingKey: queue, body: "ok".bytes))
            let got = try await connection.get(queue: queue)
            #expect(got?.text == "ok")
            #expect(connection.connectionCount == 1)
        }
    }

    @Test func mandatoryUnroutableIsReturned() async throws {
        let exchange = TestEnvironment.uniqueName("amqp.mandatory.x")
        let queue = TestEnvironment.uniqueName("amqp.mandatory.q")
        try await withConnection { connection in
            try await connection.declare(AMQPTopology(
                exchanges: [AMQPExchange(name: exchange, type: "direct", durable: false)],
                queues: [AMQPQueue(name: queue, durable: false)],
                bindings: [AMQPBinding(queue: queue, exchange: exchange, routingKey: "routable")]
            ))
            await expectAMQPError(.returned, containing: "NO_ROUTE") {
                try await connection.publish(AMQPOutgoingMessage(exchange: exchange, routingKey: "nowhere", body: "x".bytes, mandatory: true))
            }
            try await connection.publish(AMQPOutgoingMessage(exchange: exchange, routingKey: "routable", body: "y".bytes, mandatory: true))
            // Not mandatory: unroutable messages are simply dropped and confirmed.
            try await connection.publish(AMQPOutgoingMessage(exchange: exchange, routingKey: "nowhere", body: "z".bytes))
            // Mixed in one batch: each gets its own outcome.
            let results = await connection.publish(batch: (0..<20).map { index in
                AMQPOutgoingMessage(
                    exchange: exchange, routingKey: index.isMultiple(of: 2) ? "routable" : "nowhere", body: [],
                    properties: AMQPProperties(messageID: "m\(index)"), mandatory: true
                )
            })
            for (index, result) in results.enumerated() {
                if index.isMultiple(of: 2) {
                    #expect((try? result.get()) != nil, "message \(index) should be confirmed")
                } else {
                    if case .failure(let error) = result { #expect(error.code == .returned) } else { Issue.record("message \(index) should be returned") }
                }
            }
            #expect(try await connection.queueStatus(queue).messages == 11)
            try await connection.deleteQueue(queue)
            try await connection.deleteExchange(exchange)
        }
    }

    /// Properties that fill a header frame to the byte go out; one byte more, or a short string
    /// over 255 bytes, fails that publish alone with `.unencodable`, as does a declare of a name
    /// over 255 bytes. rabbitmq-c found these only
    /// after the publish's first frame was out, and the connection went down with every publish
    /// in flight: the batch's neighbours would fail too.
    @Test func propertiesThatFillAFrameAreSentAndWhatCannotBeEncodedFailsAloneWithTheConnectionUp() async throws {
        let queue = TestEnvironment.uniqueName("amqp.framefill")
        func filled(_ id: String, extra: Int) -> AMQPOutgoingMessage {
            // Every kind of value and property, so that each one's size is counted as sent.
            var properties = AMQPProperties(
                contentType: "application/xml", messageID: id, correlationID: "c", persistent: true, priority: 3, timestamp: 1_700_000_000,
                headers: [
                    "int": .int(-1), "bool": true, "double": 0.5, "bytes": .bytes([1, 2, 3]), "wörd": "ü",
                    "array": .array(["a", .int(2), .table(["k": false])]), "table": .table(["nested": .array([])]), "fill": "",
                ]
            )
            properties.headers["fill"] = .string(String(repeating: "f", count: AMQPProperties.maxEncodedSize() - properties.encodedSize + extra))
            return AMQPOutgoingMessage(routingKey: queue, body: Array(id.utf8), properties: properties)
        }
        try await withConnection { connection in
            await expectAMQPError(.unencodable, containing: "over 255 bytes") {
                try await connection.declare(AMQPTopology(queues: [AMQPQueue(name: String(repeating: "q", count: 256), durable: false)]))
            }
            try await connection.declare(AMQPTopology(queues: [AMQPQueue(name: queue, durable: false)]))
            let exact = filled("exact", extra: 0)
            #expect(exact.properties.encodedSize == AMQPProperties.maxEncodedSize())
            var longID = AMQPOutgoingMessage(routingKey: queue, body: [])
            longID.properties.messageID = String(repeating: "i", count: 256)
            let longKey = AMQPOutgoingMessage(routingKey: queue, body: [], properties: AMQPProperties(headers: [String(repeating: "k", count: 256): "v"]))
            let batch = [
                AMQPOutgoingMessage(routingKey: queue, body: Array("before".utf8)), exact, filled("over", extra: 1), longID, longKey,
                AMQPOutgoingMessage(routingKey: queue, body: Array("after".utf8)),
            ]
            let results = await connection.publish(batch: batch)
            for index in [0, 1, 5] { #expect((try? results[index].get()) != nil, "message \(index): \(results[index])") }
            for index in [2, 3, 4] {
                guard case .failure(let error) = results[index] else {
                    Issue.record("message \(index) should not be sent")
                    continue
                }
                #expect(error.code == .unencodable, "\(error)")
            }

            let consumer = try await connection.consume(queue: queue, prefetch: 10)
            let received = await receive(3, from: consumer, ackingWith: connection)
            #expect(received.map { String(decoding: $0.body, as: UTF8.self) } == ["before", "exact", "after"])
            #expect(received.dropFirst().first?.properties == exact.properties, "the full frame arrives as sent")
            #expect(connection.connectionCount == 1, "the connection stayed up throughout")
            await consumer.cancel()
            try await connection.deleteQueue(queue)
        }
    }

    @Test func nackRequeuesAndRejectDeadLetters() async throws {
        let queue = TestEnvironment.uniqueName("amqp.dlx.q")
        let deadLetterExchange = TestEnvironment.uniqueName("amqp.dlx.x")
        let deadLetterQueue = TestEnvironment.uniqueName("amqp.dlx.dead")
        try await withConnection { connection in
            try await connection.declare(AMQPTopology(
                exchanges: [AMQPExchange(name: deadLetterExchange, type: "fanout", durable: false)],
                queues: [
                    AMQPQueue(name: deadLetterQueue, durable: false),
                    AMQPQueue(name: queue, durable: false, arguments: ["x-dead-letter-exchange": .string(deadLetterExchange)]),
                ],
                bindings: [AMQPBinding(queue: deadLetterQueue, exchange: deadLetterExchange)]
            ))
            try await connection.publish(AMQPOutgoingMessage(routingKey: queue, body: "job".bytes))
            let consumer = try await connection.consume(queue: queue, prefetch: 1)

            let first = await receive(1, from: consumer)
            try #require(first.count == 1)
            #expect(!first[0].redelivered)
            connection.nack(first[0].deliveryTag, requeue: true)

            let second = await receive(1, from: consumer)
            try #require(second.count == 1)
            #expect(second[0].text == "job")
            #expect(second[0].redelivered)
            connection.reject(second[0].deliveryTag, requeue: false)

            let dead = try await eventually("message in the dead-letter queue") { try await connection.get(queue: deadLetterQueue) }
            #expect(dead.text == "job")
            #expect(dead.properties.headers["x-death"] != nil)
            #expect(try await connection.queueStatus(queue).messages == 0)
            await consumer.cancel()
            try await connection.deleteQueue(queue)
            try await connection.deleteQueue(deadLetterQueue)
            try await connection.deleteExchange(deadLetterExchange)
        }
    }

    @Test func batchLargerThanConfirmWindow() async throws {
        let queue = TestEnvironment.uniqueName("amqp.batch")
        let count = 5_000
        try await withConnection(configure: { $0.confirmWindow = 256 }) { connection in
            try await connection.declare(AMQPTopology(queues: [AMQPQueue(name: queue, durable: true)]))
            let messages = (0..<count).map { index in
                AMQPOutgoingMessage(
                    routingKey: queue, body: Array("message \(index) ".utf8) + Array(repeating: 0x2A, count: 100),
                    properties: AMQPProperties(messageID: "\(index)", persistent: true)
                )
            }
            let results = await connection.publish(batch: messages)
            #expect(results.count == count)
            #expect(results.allSatisfy { (try? $0.get()) != nil })
            #expect(try await connection.queueStatus(queue).messages == UInt32(count))

            let consumer = try await connection.consume(queue: queue, prefetch: 200)
            var seen = Set<String>()
            var duplicates = 0
            while seen.count < count, let batch = await consumer.nextBatch(max: 100) {
                for message in batch where !seen.insert(message.properties.messageID ?? "").inserted { duplicates += 1 }
                connection.ack(batch[batch.count - 1].deliveryTag, multiple: true)
            }
            #expect(seen == Set((0..<count).map { "\($0)" }))
            #expect(duplicates == 0)
            try await eventually("acks to empty the queue") { try await connection.queueStatus(queue).messages == 0 }
            await consumer.cancel()
            try await connection.deleteQueue(queue)
        }
    }

    @Test func prefetchIsHonoured() async throws {
        let queue = TestEnvironment.uniqueName("amqp.prefetch")
        try await withConnection { connection in
            try await connection.declare(AMQPTopology(queues: [AMQPQueue(name: queue, durable: false)]))
            let results = await connection.publish(batch: (0..<20).map { AMQPOutgoingMessage(routingKey: queue, body: "\($0)".bytes) })
            #expect(results.allSatisfy { (try? $0.get()) != nil })
            let consumer = try await connection.consume(queue: queue, prefetch: 5)
            var held = await receive(5, from: consumer)
            #expect(held.count == 5)
            // The broker holds back the rest: 15 stay ready and nothing more arrives.
            try await eventually("15 messages ready") { try await connection.queueStatus(queue).messages == 15 }
            #expect(try await connection.queueStatus(queue).messages == 15)
            connection.ack(held.removeFirst().deliveryTag)
            let next = await receive(1, from: consumer)
            #expect(next.count == 1)
            try await eventually("14 messages ready") { try await connection.queueStatus(queue).messages == 14 }
            #expect(try await connection.queueStatus(queue).messages == 14)
            await consumer.cancel()
            try await connection.deleteQueue(queue)
        }
    }

    @Test func idleConnectionSurvivesOnHeartbeats() async throws {
        let queue = TestEnvironment.uniqueName("amqp.heartbeat")
        let tap = try await HeartbeatTap(brokerURL: TestEnvironment.amqpURL)
        defer { Task { await tap.stop() } }
        try await withConnection(url: try tap.url(for: TestEnvironment.amqpURL), configure: { $0.heartbeat = .seconds(2) }) { connection in
            try await connection.declare(AMQPTopology(queues: [AMQPQueue(name: queue, durable: false)]))
            let consumer = try await connection.consume(queue: queue, prefetch: 1)
            // Idle: only heartbeats pass. The client sends one at most every interval, so four of
            // its own span three intervals, past the two missed ones after which the broker
            // drops a connection.
            try await eventually("four heartbeats each way") { tap.heartbeatsToBroker >= 4 && tap.heartbeatsToClient >= 4 }
            #expect(connection.isConnected)
            #expect(connection.connectionCount == 1)
            try await connection.publish(AMQPOutgoingMessage(routingKey: queue, body: "still here".bytes))
            let messages = await receive(1, from: consumer, ackingWith: connection)
            #expect(messages.map(\.text) == ["still here"])
            #expect(connection.connectionCount == 1)
            #expect(tap.connections == 1)
            await consumer.cancel()
            try await connection.deleteQueue(queue)
        }
    }

    @Test func deletingTheQueueEndsItsConsumer() async throws {
        let queue = TestEnvironment.uniqueName("amqp.deleted")
        try await withConnection { connection in
            try await connection.declare(AMQPTopology(queues: [AMQPQueue(name: queue, durable: false)]))
            let consumer = try await connection.consume(queue: queue, prefetch: 1)
            #expect(try await connection.queueStatus(queue).consumers == 1)
            try await connection.deleteQueue(queue)
            // The broker sends basic.cancel (consumer_cancel_notify): the stream ends.
            #expect(await consumer.nextBatch(max: 1) == nil)
            #expect(connection.connectionCount == 1)
        }
    }

    @Test func runEndsCleanlyAndFailsLaterRequests() async throws {
        let configuration = try AMQPConfiguration(url: TestEnvironment.amqpURL)
        let connection = AMQPConnection(configuration: configuration, logger: testLogger)
        let running = Task { try await connection.run() }
        try await connectedWithin(connection)
        let queue = try await connection.declareQueue(AMQPQueue(name: "", durable: false, exclusive: true, autoDelete: true))
        let consumer = try await connection.consume(queue: queue, prefetch: 1)
        running.cancel()
        try await running.value
        #expect(await consumer.nextBatch(max: 1) == nil)
        await expectAMQPError(.shutdown) { try await connection.waitUntilConnected() }
        await expectAMQPError(.shutdown) { try await connection.publish(AMQPOutgoingMessage(routingKey: queue, body: [])) }
        await expectAMQPError(.shutdown) { try await connection.run() }
    }

    @Test func aRequestWaitingForABrokerThatIsNotThereEndsWhenItsTaskIsCancelled() async throws {
        // A port nothing listens on: the connection keeps trying, and requests wait for it.
        let configuration = try AMQPConfiguration(url: "amqp://guest:guest@127.0.0.1:1/")
        let connection = AMQPConnection(configuration: configuration, logger: testLogger)
        let running = Task { try await connection.run() }
        defer { running.cancel() }
        let waiting = Task { try await connection.declareQueue(AMQPQueue(name: "never", durable: false)) }
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        #expect(!connection.isConnected)
    }
}
