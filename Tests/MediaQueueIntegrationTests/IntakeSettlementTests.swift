import Foundation
import MediaQueueAMQP
import MediaQueueApp
import MediaQueueCore
import MediaQueueTestSupport
import Testing

/// The intake settles each message on its own outcome: a stored submission is acked whatever
/// happens to the others of its batch, a refused one only once its dead letter is confirmed.
@Suite struct IntakeSettlementTests {
    @Test func aSubmissionStoredBesideOneWhoseDeadLetterFailsIsStoredOnce() async throws {
        let harness = try ServiceHarness()
        let worker = RecordingWorker()
        let (application, service) = try harness.startService(workers: [worker])
        defer { service.cancel() }
        try await harness.waitForIntake()
        // The dead-letter queue goes away: a dead letter is returned by the broker, not confirmed.
        let deadLetterQueue = harness.configuration.deadLetterQueue
        try await harness.client.deleteQueue(deadLetterQueue)
        // Each time the intake handles the refused message it answers its reply queue.
        let replies = try await harness.client.declareQueue(AMQPQueue(name: "", durable: false, exclusive: true, autoDelete: true))
        var answers = 0
        func waitForAnswers(_ count: Int) async throws {
            try await eventually("\(count) answers to the refused message") {
                while try await harness.client.get(queue: replies) != nil { answers += 1 }
                return answers >= count
            }
        }
        let refused = AMQPOutgoingMessage(
            routingKey: harness.configuration.intakeQueue, body: Array("not xml".utf8),
            properties: AMQPProperties(replyTo: replies, persistent: true)
        )
        try await harness.client.publish(refused)
        try await waitForAnswers(1)
        // While it waits to be redelivered, submissions without a message-id (no idempotency key)
        // join it, so they share a batch with it.
        try await harness.publish(batch: [recordRequest("first"), recordRequest("second")])
        try await waitForAnswers(3)
        try await eventually("both submissions to run") { Set(worker.startOrder) == ["first", "second"] }

        // Once the dead-letter queue is back, the refused message lands there with its reason.
        _ = try await harness.client.declareQueue(AMQPQueue(name: deadLetterQueue, durable: true))
        let dead = try await harness.deadLetters(1)
        #expect(dead.first?.text == "not xml")
        #expect(dead.first?.properties.headers["x-mediaqueue-error-code"] != nil)
        let jobs = try await application.store.jobs(JobQuery(limit: 100))
        #expect(jobs.compactMap(\.userData).sorted() == ["first", "second"], "each submission stored once")
        #expect(worker.startOrder.count == 2)
    }
}
