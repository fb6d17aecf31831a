import Logging
@testable import MediaQueueAMQP
import MediaQueueTestSupport
import Testing

/// A logger for tests: warnings and worse, so reconnects show up in the output.
let testLogger: Logger = {
    var logger = Logger(label: "mediaqueue.amqp.tests")
    logger.logLevel = .notice
    return logger
}()

/// Runs `body` with a connected connection whose `run()` is cancelled (and awaited) afterwards.
func withConnection<T: Sendable>(
    url: String = TestEnvironment.amqpURL,
    configure: (inout AMQPConfiguration) -> Void = { _ in },
    _ body: (AMQPConnection) async throws -> T
) async throws -> T {
    var configuration = try AMQPConfiguration(url: url)
    configuration.connectionName = "mediaqueue-amqp-tests"
    configure(&configuration)
    let connection = AMQPConnection(configuration: configuration, logger: testLogger)
    let running = Task { try await connection.run() }
    do {
        try await connectedWithin(connection)
        let result = try await body(connection)
        running.cancel()
        try await running.value
        return result
    } catch {
        running.cancel()
        _ = try? await running.value
        throw error
    }
}

/// Waits for the connection, failing (instead of hanging) if it does not come up.
func connectedWithin(_ connection: AMQPConnection, timeout: Duration = hangBound) async throws {
    try await eventually("connection to the broker", timeout: timeout) { connection.isConnected }
}

/// Receives exactly `count` messages (or fewer if the timeout strikes first, which the caller
/// then reports), acking each unless told not to.
func receive(
    _ count: Int,
    from consumer: AMQPConsumer,
    ackingWith connection: AMQPConnection? = nil,
    timeout: Duration = hangBound
) async -> [AMQPMessage] {
    await withTaskGroup(of: [AMQPMessage]?.self) { group in
        group.addTask {
            var received: [AMQPMessage] = []
            while received.count < count, let batch = await consumer.nextBatch(max: count - received.count) {
                for message in batch { connection?.ack(message.deliveryTag) }
                received += batch
            }
            return received
        }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return nil
        }
        var result: [AMQPMessage] = []
        for await value in group {
            if let value {
                result = value
                group.cancelAll()
                break
            }
            group.cancelAll()
        }
        // The receiving task returns what it has when cancelled.
        for await value in group { if let value { result = value } }
        return result
    }
}

extension String {
    var bytes: [UInt8] { Array(utf8) }
}

extension AMQPMessage {
    var text: String { String(decoding: body, as: UTF8.self) }
}

/// Expects `body` to throw an `AMQPError` with `code` whose message contains `text`.
func expectAMQPError(
    _ code: AMQPError.Code,
    containing text: String? = nil,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async {
    do {
        try await body()
        Issue.record("expected AMQPError.\(code), got success", sourceLocation: sourceLocation)
    } catch let error as AMQPError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        if let text { #expect(error.message.contains(text), "\(error)", sourceLocation: sourceLocation) }
    } catch {
        Issue.record("expected AMQPError.\(code), got \(error)", sourceLocation: sourceLocation)
    }
}
