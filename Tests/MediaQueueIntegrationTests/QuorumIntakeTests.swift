import Foundation
import MediaQueueAMQP
import MediaQueueApp
import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import Synchronization
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

    /// A node too loaded to start a new quorum queue in time: RabbitMQ gives up and closes the
    /// declaring connection (541 cluster_not_formed). The service stays up, declares
    /// again, and takes submissions once the queue can start. Staged on the fault broker by
    /// holding Ra's metadata store (`rabbitmq-node.sh stall-quorum-starts`).
    @Test(.enabled(if: FaultBroker.isAvailable, "needs the fault broker of scripts/test.sh"))
    func aQuorumQueueTooSlowToStartIsDeclaredAgainWhileTheServiceStaysUp() async throws {
        try await FaultBroker.shared.withExclusiveAccess {
            let harness = try ServiceHarness(brokerURL: FaultBroker.shared.url) { $0.intakeQueueType = "quorum" }
            let events = try await harness.subscribeToEvents()
            try await FaultBroker.control("stall-quorum-starts")
            do {
                let port = Mutex<Int?>(nil)
                let (_, service) = try harness.startService(workers: [RecordingWorker()], onListening: { _, listening in port.withLock { $0 = listening } })
                defer { service.cancel() }
                let listening = try await eventually("the API to listen") { port.withLock { $0 } }
                try await eventually("the broker to close the intake's connection over its declare") {
                    // A service that stopped closes its API too: its own error says more.
                    try harness.checkServiceIsRunning()
                    guard let text = try? await MetricsTests.scrape(port: listening) else { return false }
                    let samples = MetricsTests.samples(text)
                    return samples["mediaqueue_amqp_reconnects_total{connection=\"intake\"}", default: 0] >= 1
                }
                try await FaultBroker.control("resume-quorum-starts")

                try await harness.waitForIntake()
                try await harness.publish(recordRequest("after the stall"), messageID: "after")
                let event = try #require(try await harness.receive(1, from: events).first)
                #expect(event.xml?["JobsDetail"]?.text("Operation", "UserData") == "after the stall")
            } catch {
                try? await FaultBroker.control("resume-quorum-starts")
                throw error
            }
        }
    }

    @Test func anUnknownQueueTypeIsRefusedAtStart() throws {
        #expect(throws: ConfigurationError.self) {
            _ = try MediaQueueConfiguration.load(file: nil, environment: ["MEDIAQUEUE_INTAKE_QUEUE_TYPE": "stream"])
        }
    }
}
