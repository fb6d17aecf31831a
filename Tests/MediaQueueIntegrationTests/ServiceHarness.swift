import Foundation
import FoundationNetworking
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
    /// The error a service started by `startService` ended with, if one did: waits that need the
    /// service fail with it at once instead of running into `hangBound`.
    private let serviceFailure = Mutex<String?>(nil)

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

    /// `input/a.mp4`, which is no media: for tests whose fake ffprobe never reads it.
    func placeFakeInput() throws {
        try FileManager.default.createDirectory(atPath: bucketRoot + "/input", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: bucketRoot + "/input/a.mp4", contents: Data("not really".utf8))
    }

    /// An executable `/bin/sh` script `name` in the data folder with `body` after its first line,
    /// to stand in for ffmpeg or ffprobe; returns its path.
    func tool(_ name: String, _ body: String) throws -> String {
        let path = configuration.dataDir + "/" + name
        try FileManager.default.createDirectory(atPath: configuration.dataDir, withIntermediateDirectories: true)
        try ("#!/bin/sh\n" + body + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        guard chmod(path, 0o755) == 0 else { throw CocoaError(.fileWriteNoPermission) }
        return path
    }

    /// The environment of a real `mediaqueue serve` child process on this harness's broker, data
    /// and names, with `extra` on top.
    func serveEnvironment(_ extra: [String: String]) -> [String: String] {
        [
            "MEDIAQUEUE_AMQP_URL": configuration.amqpURL,
            "MEDIAQUEUE_DATA_DIR": configuration.dataDir,
            "MEDIAQUEUE_BUCKET": configuration.bucket,
            "MEDIAQUEUE_INTAKE_QUEUE": configuration.intakeQueue,
            "MEDIAQUEUE_DEAD_LETTER_QUEUE": configuration.deadLetterQueue,
            "MEDIAQUEUE_EVENTS_EXCHANGE": configuration.eventsExchange,
            "MEDIAQUEUE_LOG_LEVEL": "warning",
            "MEDIAQUEUE_HTTP_ADDRESS": "127.0.0.1:0",
        ].merging(extra) { $1 }
    }

    /// Runs the `mediaqueue` binary with `arguments` on this harness's data folder and bucket
    /// (and `environment`); returns what it printed.
    func cli(_ arguments: [String], environment: [String: String] = [:]) async throws -> String {
        try await runCLI(arguments, environment: environment).stdout
    }

    /// `cli`, with how the process ended: `allowFailure` lets it fail (or be killed).
    func runCLI(_ arguments: [String], environment: [String: String] = [:], allowFailure: Bool = false) async throws -> CommandOutput {
        let file = configuration.dataDir + "/cli.json"
        var settings = ["dataDir": configuration.dataDir, "bucket": configuration.bucket, "eventsExchange": configuration.eventsExchange]
        if let endpoint = configuration.s3Endpoint {
            settings["s3Endpoint"] = endpoint
            settings["s3AccessKeyId"] = configuration.s3AccessKeyID
            settings["s3SecretAccessKey"] = configuration.s3SecretAccessKey
        }
        try FileManager.default.createDirectory(atPath: configuration.dataDir, withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: settings).write(to: URL(fileURLWithPath: file))
        let variables = environment.map { "\($0.key)=\($0.value)" }.sorted()
        return try await runCommand("/usr/bin/env", variables + [TestEnvironment.mediaqueueBinary] + arguments + ["--config", file], allowFailure: allowFailure)
    }

    /// Starts `mediaqueue serve`'s services in a task; cancel the task to stop them.
    func startService(
        store: (any JobStore)? = nil, workers: [any MediaWorker] = [], onListening: @escaping @Sendable (String, Int) -> Void = { _, _ in }
    ) throws -> (MediaQueueApplication, Task<Void, any Error>) {
        let application = try MediaQueueApplication(configuration: configuration, store: store, extraWorkers: workers, logger: logger)
        let task = Task {
            do {
                try await application.run(handleSignals: false, onListening: onListening)
            } catch {
                if !(error is CancellationError) { self.serviceFailure.withLock { $0 = "\(error)" } }
                throw error
            }
        }
        return (application, task)
    }

    /// Throws if a service started by `startService` ended with an error.
    func checkServiceIsRunning() throws {
        if let failure = serviceFailure.withLock({ $0 }) { throw ServiceEnded(description: "the service ended: \(failure)") }
    }

    /// Waits until the service consumes its intake queue.
    func waitForIntake() async throws {
        try await eventually("the intake to consume \(configuration.intakeQueue)") {
            try checkServiceIsRunning()
            return (try? await client.queueStatus(configuration.intakeQueue))?.consumers ?? 0 > 0
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
        // Each with a message-id, as producers that want exactly one job per message send: a node
        // killed between its commit and its ack redelivers, and the id turns that into a no-op.
        let messages = bodies.map {
            AMQPOutgoingMessage(
                routingKey: configuration.intakeQueue, body: Array($0.utf8), properties: AMQPProperties(messageID: "m" + randomHex32(), persistent: true)
            )
        }
        for result in await client.publish(batch: messages) { try result.get() }
    }

    /// Collects `count` messages from `consumer`, acking each; throws if they stop coming, that
    /// is when none arrives for `stall` (a long run on a slow machine is not a failure).
    func receive(_ count: Int, from consumer: AMQPConsumer, stalledFor stall: Duration = hangBound) async throws -> [AMQPMessage] {
        try await collect(from: consumer, atMost: count, stalledFor: stall) { $0.count >= count }
    }

    /// Collects messages (acking each) until `done` says the ones so far are all that is
    /// awaited; throws if they stop coming for `stall`.
    func receive(
        from consumer: AMQPConsumer, stalledFor stall: Duration = hangBound, until done: @escaping @Sendable ([AMQPMessage]) -> Bool
    ) async throws -> [AMQPMessage] {
        try await collect(from: consumer, atMost: nil, stalledFor: stall, until: done)
    }

    /// Collects messages until one with `routingKey` arrives (acking each), and returns the ones
    /// before it: a marker published after the events under test shows that nothing else came
    /// with them, without waiting for a time to pass.
    func receive(until routingKey: String, from consumer: AMQPConsumer) async throws -> [AMQPMessage] {
        let messages = try await receive(from: consumer) { $0.contains { $0.routingKey == routingKey } }
        return Array(messages.prefix { $0.routingKey != routingKey })
    }

    private func collect(
        from consumer: AMQPConsumer, atMost limit: Int?, stalledFor stall: Duration, until done: @escaping @Sendable ([AMQPMessage]) -> Bool
    ) async throws -> [AMQPMessage] {
        let client = self.client
        let received = Received()
        let collector = Task {
            while !done(received.messages) {
                guard let batch = await consumer.nextBatch(max: limit.map { $0 - received.count } ?? 1000) else { return }
                for message in batch { client.ack(message.deliveryTag) }
                received.append(batch)
            }
        }
        defer { collector.cancel() }
        try await eventually("messages", stalledFor: stall, every: .milliseconds(20)) {
            try checkServiceIsRunning()
            let messages = received.messages
            return (done(messages), messages.count, "\(messages.count) messages")
        }
        return received.messages
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

/// A service a test waits on stopped with an error.
struct ServiceEnded: Error, CustomStringConvertible {
    let description: String
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

/// `GET /readyz` of a service on `port`: its status and body.
func probeReadiness(port: Int) async throws -> (status: Int, body: String) {
    let (body, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/readyz")!)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: body, as: UTF8.self))
}
