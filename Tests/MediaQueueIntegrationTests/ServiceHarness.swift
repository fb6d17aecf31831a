import Foundation
import Logging
import MediaQueueAMQP
import MediaQueueApp
import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import Synchronization

/// A MediaQueue service running in this process against the real test broker, a real SQLite file
/// and real ffmpeg, on queue and exchange names no other test uses; plus a client connection for
/// the test to publish and subscribe with.
final class ServiceHarness: Sendable {
    let configuration: MediaQueueConfiguration
    let client: AMQPConnection
    private let clientTask: Task<Void, any Error>
    let logger: Logger

    init(brokerURL: String = TestEnvironment.amqpURL, _ configure: (inout MediaQueueConfiguration) -> Void = { _ in }) throws {
        var configuration = MediaQueueConfiguration()
        configuration.amqpURL = brokerURL
        configuration.dataDir = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("mq-data")).path
        configuration.bucket = "test-1250000000"
        configuration.intakeQueue = TestEnvironment.uniqueName("it.jobs")
        configuration.deadLetterQueue = configuration.intakeQueue + ".dead"
        configuration.eventsExchange = TestEnvironment.uniqueName("it.events")
        configuration.maxRunningJobs = 4
        configuration.httpAddress = "127.0.0.1:0"  // any free port: tests run side by side
        configure(&configuration)
        self.configuration = configuration
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        self.logger = logger
        let client = AMQPConnection(configuration: try AMQPConfiguration(url: brokerURL), logger: logger)
        self.client = client
        clientTask = Task { try await client.run() }
    }

    deinit { clientTask.cancel() }

    var bucketRoot: String { configuration.resolvedStorageDir + "/" + configuration.bucket }

    /// Starts `mediaqueue serve`'s services in a task; cancel the task to stop them.
    func startService(
        store: (any JobStore)? = nil, workers: [any MediaWorker] = [], onListening: @escaping @Sendable (String, Int) -> Void = { _, _ in }
    ) throws -> (MediaQueueApplication, Task<Void, any Error>) {
        let application = try MediaQueueApplication(configuration: configuration, store: store, extraWorkers: workers, logger: logger)
        let task = Task { try await application.run(handleSignals: false, onListening: onListening) }
        return (application, task)
    }

    /// Waits until the service consumes its intake queue.
    func waitForIntake() async throws {
        try await eventually("the intake to consume \(configuration.intakeQueue)") {
            (try? await client.queueStatus(configuration.intakeQueue))?.consumers ?? 0 > 0
        }
    }

    /// A queue bound to the events exchange with `job.#`: what a subscriber of the rule sees.
    func subscribeToEvents(pattern: String = "job.#") async throws -> AMQPConsumer {
        try await client.declare(AMQPTopology(exchanges: [AMQPExchange(name: configuration.eventsExchange, type: "topic", durable: true)]))
        let queue = try await client.declareQueue(AMQPQueue(name: "", durable: false, exclusive: true, autoDelete: true))
        try await client.bind(AMQPBinding(queue: queue, exchange: configuration.eventsExchange, routingKey: pattern))
        return try await client.consume(queue: queue, prefetch: 100)
    }

    /// Publishes a submission to the intake queue (confirmed).
    func publish(_ body: String, messageID: String? = nil, headers: AMQPTable = [:]) async throws {
        var properties = AMQPProperties(contentType: "application/xml", messageID: messageID, persistent: true)
        properties.headers = headers
        try await client.publish(AMQPOutgoingMessage(routingKey: configuration.intakeQueue, body: Array(body.utf8), properties: properties))
    }

    /// Publishes many submissions in one confirmed batch, in order.
    func publish(batch bodies: [String]) async throws {
        let messages = bodies.map {
            AMQPOutgoingMessage(routingKey: configuration.intakeQueue, body: Array($0.utf8), properties: AMQPProperties(persistent: true))
        }
        for result in await client.publish(batch: messages) { try result.get() }
    }

    /// Collects `count` messages from `consumer`, acking each; throws if they stop coming, that
    /// is when none arrives for `stall` (a long run on a slow machine is not a failure).
    func receive(_ count: Int, from consumer: AMQPConsumer, stalledFor stall: Duration = hangBound) async throws -> [AMQPMessage] {
        let client = self.client
        let received = Received()
        let collector = Task {
            while received.count < count, let batch = await consumer.nextBatch(max: count - received.count) {
                for message in batch { client.ack(message.deliveryTag) }
                received.append(batch)
            }
        }
        defer { collector.cancel() }
        try await eventually("\(count) messages", reaches: count, stalledFor: stall, every: .milliseconds(20)) { received.count }
        return received.messages
    }

    /// Collects messages until one with `routingKey` arrives (acking each), and returns the ones
    /// before it: a marker published after the events under test shows that nothing else came
    /// with them, without waiting for a time to pass.
    func receive(until routingKey: String, from consumer: AMQPConsumer) async throws -> [AMQPMessage] {
        var before: [AMQPMessage] = []
        while true {
            let message = try await receive(1, from: consumer)[0]
            if message.routingKey == routingKey { return before }
            before.append(message)
        }
    }

    /// Publishes a marker message to the events exchange (see `receive(until:from:)`).
    func publishMarker(_ routingKey: String) async throws {
        try await client.publish(AMQPOutgoingMessage(exchange: configuration.eventsExchange, routingKey: routingKey, body: []))
    }

    /// Messages in the dead-letter queue, read without consuming others'.
    func deadLetters(_ count: Int) async throws -> [AMQPMessage] {
        var messages: [AMQPMessage] = []
        try await eventually("\(count) dead letters") {
            if let message = try await client.get(queue: configuration.deadLetterQueue) { messages.append(message) }
            return messages.count >= count
        }
        return messages
    }
}

/// Messages a collector task has received so far.
private final class Received: Sendable {
    private let state = Mutex<[AMQPMessage]>([])
    var count: Int { state.withLock { $0.count } }
    var messages: [AMQPMessage] { state.withLock { $0 } }
    func append(_ batch: [AMQPMessage]) { state.withLock { $0 += batch } }
}

extension AMQPMessage {
    var xml: XMLTree? { try? XMLDocumentParser.parse(body) }
    var text: String { String(decoding: body, as: UTF8.self) }
}

func snapshotRequest(object: String = "input/a.mp4", output: String = "out/snap-${Number}.jpg", count: Int = 3, userData: String = "u", level: Int = 0) -> String {
    """
    <Request><Tag>Snapshot</Tag><Input><Object>\(object)</Object></Input><Operation>
    <Snapshot><Mode>Interval</Mode><Start>1</Start><TimeInterval>1</TimeInterval><Count>\(count)</Count><Width>160</Width></Snapshot>
    <Output><Object>\(output)</Object></Output><UserData>\(userData)</UserData><JobLevel>\(level)</JobLevel></Operation></Request>
    """
}

func mediaInfoRequest(object: String = "input/a.mp4", userData: String = "u") -> String {
    "<Request><Tag>MediaInfo</Tag><Input><Object>\(object)</Object></Input><Operation><UserData>\(userData)</UserData></Operation></Request>"
}
