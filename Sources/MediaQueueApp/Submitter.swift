import Foundation
public import Logging
public import MediaQueueAMQP
import MediaQueueCore
public import MediaQueueXML

/// Publishes a CreateMediaJobs request to the intake queue and waits for the service's reply,
/// as any AMQP producer can (`reply_to` + `correlation_id`). Used by `mediaqueue submit`.
public struct Submitter: Sendable {
    let connection: AMQPConnection
    let intakeQueue: String

    public init(connection: AMQPConnection, intakeQueue: String) {
        self.connection = connection
        self.intakeQueue = intakeQueue
    }

    /// What the service answered.
    public enum Reply: Sendable {
        /// The CreateMediaJobs `<Response>` with one `JobsDetail` per job.
        case accepted(XMLTree)
        /// The `<Error>` the submission was refused with (it is also in the dead-letter queue).
        case refused(XMLTree)
    }

    public func submit(_ body: [UInt8], bucket: String?, timeout: Duration) async throws -> Reply {
        let replyQueue = try await connection.declareQueue(AMQPQueue(name: "", durable: false, exclusive: true, autoDelete: true))
        let consumer = try await connection.consume(queue: replyQueue, prefetch: 10)
        defer { Task { await consumer.cancel() } }
        let messageID = "submit-" + randomHex32()
        var properties = AMQPProperties(contentType: "application/xml", messageID: messageID, correlationID: messageID, replyTo: replyQueue, persistent: true)
        if let bucket { properties.headers[IntakeHeaders.bucket] = .string(bucket) }
        try await connection.publish(AMQPOutgoingMessage(routingKey: intakeQueue, body: body, properties: properties, mandatory: true))

        return try await withThrowingTaskGroup(of: Reply.self) { group in
            group.addTask {
                while let batch = await consumer.nextBatch(max: 10) {
                    for message in batch where message.properties.correlationID == messageID {
                        connection.ack(message.deliveryTag)
                        let tree = try XMLDocumentParser.parse(message.body)
                        return tree.name == "Error" ? .refused(tree) : .accepted(tree)
                    }
                }
                throw SubmitError("the connection closed before the service answered")
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw SubmitError("no answer within \(timeout); is `mediaqueue serve` running and consuming \(intakeQueue)?")
            }
            let reply = try await group.next()!
            group.cancelAll()
            return reply
        }
    }
}

extension Submitter {
    /// Opens a connection to the configured broker, submits `body`, and closes it again. Needs
    /// only the broker: a producer's machine has no store.
    public static func submit(
        _ body: [UInt8], bucket: String?, timeout: Duration, configuration: MediaQueueConfiguration, logger: Logger
    ) async throws -> Submitter.Reply {
        let amqp = try configuration.amqpConfiguration(
            url: configuration.amqpURL, name: "submit \(ProcessInfo.processInfo.hostName)/\(ProcessInfo.processInfo.processIdentifier)"
        )
        let connection = AMQPConnection(configuration: amqp, logger: logger)
        let intakeQueue = configuration.intakeQueue
        return try await withThrowingTaskGroup(of: Submitter.Reply?.self) { group in
            group.addTask {
                try await connection.run()
                return nil
            }
            group.addTask {
                try await Submitter(connection: connection, intakeQueue: intakeQueue).submit(body, bucket: bucket, timeout: timeout)
            }
            let brokers = connection.configuration.redactedURL
            group.addTask {
                // Once connected, the submitter's own wait for the answer decides.
                try await Task.sleep(for: timeout)
                guard connection.isConnected else { throw SubmitError("could not connect to the broker (\(brokers)) within \(timeout)") }
                return nil
            }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let result { return result }
            }
            throw SubmitError("the connection ended before the service answered")
        }
    }
}

enum IntakeHeaders {
    static let bucket = "x-ci-bucket"
}

struct SubmitError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
