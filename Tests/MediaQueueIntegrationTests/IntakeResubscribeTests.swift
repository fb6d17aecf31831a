import MediaQueueAMQP
import MediaQueueApp
import MediaQueueTestSupport
import Testing

/// RabbitMQ cancels the intake's consumer when the intake queue is deleted (a cleanup script, an
/// operator's slip): the service declares the queue again and goes on taking submissions, where
/// it used to stop.
@Suite struct IntakeResubscribeTests {
    @Test func aDeletedIntakeQueueIsDeclaredAgainAndConsumed() async throws {
        let harness = try ServiceHarness()
        let worker = RecordingWorker()
        let (_, service) = try harness.startService(workers: [worker])
        defer { service.cancel() }
        try await harness.waitForIntake()

        try await harness.client.deleteQueue(harness.configuration.intakeQueue)
        // Consumed again means declared again: the old consumer went with the deleted queue.
        try await harness.waitForIntake()
        try await harness.publish(recordRequest("after"), messageID: "after")
        try await eventually("the submission sent after the delete to run") {
            try harness.checkServiceIsRunning()
            return worker.startOrder == ["after"]
        }
    }
}
