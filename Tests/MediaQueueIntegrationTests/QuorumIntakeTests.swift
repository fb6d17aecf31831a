import Foundation
import MediaQueueAMQP
import MediaQueueApp
import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import Testing

/// `MEDIAQUEUE_INTAKE_QUEUE_TYPE=quorum`: the intake and dead-letter queues are quorum queues
/// (replicated on a RabbitMQ cluster), and submissions flow through them as through classic ones.
@Suite struct QuorumIntakeTests {
    @Test func aQuorumIntakeTakesSubmissionsAndDeadLettersBadOnesIntoAQuorumQueue() async throws {
        let harness = try ServiceHarness { $0.intakeQueueType = "quorum" }
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 2)
        let events = try await harness.subscribeToEvents()
        let (_, service) = try harness.startService()
        defer { service.cancel() }
        try await harness.waitForIntake()

        try await harness.publish("this is not XML", messageID: "bad")
        try await harness.publish(mediaInfoRequest(userData: "good"), messageID: "good")
        let event = try #require(try await harness.receive(1, from: events).first)
        #expect(event.xml?["JobsDetail"]?.text("Operation", "UserData") == "good")
        let letter = try #require(try await harness.deadLetters(1).first)
        #expect(letter.properties.messageID == "bad")
        #expect(letter.properties.headers["x-mediaqueue-error-code"] == .string("InvalidArgument"))

        // Both queues are quorum queues: the broker refuses to see them as classic ones.
        for queue in [harness.configuration.intakeQueue, harness.configuration.deadLetterQueue] {
            await #expect(throws: AMQPError.self) {
                try await harness.client.declare(AMQPTopology(queues: [
                    AMQPQueue(name: queue, durable: true, arguments: ["x-queue-type": .string("classic")]),
                ]))
            }
        }
    }

    @Test func anUnknownQueueTypeIsRefusedAtStart() throws {
        #expect(throws: ConfigurationError.self) {
            _ = try MediaQueueConfiguration.load(file: nil, environment: ["MEDIAQUEUE_INTAKE_QUEUE_TYPE": "stream"])
        }
    }
}
