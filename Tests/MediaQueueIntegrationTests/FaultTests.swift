import Foundation
import MediaQueueAMQP
import MediaQueueApp
import MediaQueueCore
import MediaQueueSQLite
import MediaQueueTestSupport
import MediaQueueXML
import Synchronization
import Testing

@Suite struct FaultTests {
    /// A batch the store failed on after committing it (as when a PostgreSQL `COMMIT`'s reply is
    /// lost) is settled as stored: its message does not come back as a second job, whether or not
    /// it has a message-id.
    @Test(arguments: ["only-once", nil] as [String?])
    func aSubmissionWhoseCommitWasFollowedByAStoreFailureIsOneJob(messageID: String?) async throws {
        let harness = try ServiceHarness()
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 2)
        let store = CommitThenFailStore(try SQLiteJobStore(path: harness.configuration.databasePath))
        let events = try await harness.subscribeToEvents()
        let (_, service) = try harness.startService(store: store)
        defer { service.cancel() }
        try await harness.waitForIntake()

        try await harness.publish(mediaInfoRequest(userData: "once"), messageID: messageID)
        let event = try #require(try await harness.receive(1, from: events).first)
        #expect(event.xml?["JobsDetail"]?.text("Operation", "UserData") == "once")

        // Batches are stored in order, and a message that goes back to the queue is delivered
        // again before later ones: once a later message's job is stored, a second job of the
        // first would be stored too.
        try await harness.publish(mediaInfoRequest(userData: "after"), messageID: messageID.map { $0 + "-after" })
        try await eventually("the later message's job to be stored") {
            try await store.jobs(JobQuery(limit: 10)).contains { $0.userData == "after" }
        }
        let jobs = try await store.jobs(JobQuery(limit: 10))
        #expect(jobs.compactMap(\.userData).sorted() == ["after", "once"], "the first message must not become a second job")
        // The relay records a confirmed delivery just after publishing it.
        try await eventually("both jobs to end and their events to be recorded as delivered") {
            let ended = try await store.jobs(JobQuery(states: [.success], limit: 10)).count
            let due = try await store.dueOutbox(.tdmq, now: Timestamp(seconds: Int64.max / 2000), limit: 10)
            return ended == 2 && due.isEmpty
        }
    }

    /// `/readyz` of a real `serve`: 200 while connected, 503 naming the broker while it is down,
    /// 200 again once the connections are back.
    @Test(.enabled(if: FaultBroker.isAvailable, "needs the fault broker of scripts/test.sh"))
    func readinessFollowsTheBroker() async throws {
        try await FaultBroker.shared.withExclusiveAccess {
            let harness = try ServiceHarness(brokerURL: FaultBroker.shared.url)
            let port = Mutex<Int?>(nil)
            let (_, service) = try harness.startService(onListening: { _, listening in port.withLock { $0 = listening } })
            defer { service.cancel() }
            let listening = try await eventually("the API to listen") { port.withLock { $0 } }
            func probe() async throws -> (status: Int, body: String) { try await probeReadiness(port: listening) }
            try await harness.waitForIntake()
            try await eventually("ready") { try await probe().status == 200 }
            #expect(try await probe().body == "ready\n")

            try await FaultBroker.control("stop")
            let down = try await eventually("not ready while the broker is down") {
                let answer = try await probe()
                return answer.status == 503 ? answer.body : nil
            }
            #expect(down.contains("not ready: broker not connected (intake, amqp://"))
            #expect(!down.contains("store"))

            try await FaultBroker.control("start")
            try await eventually("ready again") { try await probe().status == 200 }
            // The reconnection shows in the metrics an operator alerts on.
            let samples = MetricsTests.samples(try await MetricsTests.scrape(port: listening))
            #expect(samples["mediaqueue_amqp_reconnects_total{connection=\"intake\"}"] == 1)
        }
    }

    @Test(.enabled(if: FaultBroker.isAvailable, "needs the fault broker of scripts/test.sh"))
    func afterABrokerRestartJobsFlowAgainAndNoEventIsLost() async throws {
        try await FaultBroker.shared.withExclusiveAccess {
            let harness = try ServiceHarness(brokerURL: FaultBroker.shared.url)
            try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 2)
            // A durable subscription, so that it outlives the restart like a real subscriber's.
            let subscription = TestEnvironment.uniqueName("it.subscriber")
            try await harness.client.declare(AMQPTopology(
                exchanges: [AMQPExchange(name: harness.configuration.eventsExchange, type: "topic", durable: true)],
                queues: [AMQPQueue(name: subscription, durable: true)],
                bindings: [AMQPBinding(queue: subscription, exchange: harness.configuration.eventsExchange, routingKey: "job.#")]
            ))
            let events = try await harness.client.consume(queue: subscription, prefetch: 50)
            let (application, service) = try harness.startService()
            defer { service.cancel() }
            try await harness.waitForIntake()

            try await harness.publish(mediaInfoRequest(userData: "before"))
            #expect(try await harness.receive(1, from: events).first?.xml?["JobsDetail"]?.text("Operation", "UserData") == "before")

            // A job is waiting in a paused queue; the broker goes down; the queue is enabled and the
            // job ends while there is no broker to announce it to.
            var queue = try await application.prepare()
            queue.state = .paused
            try await application.store.updateQueue(queue)
            // With a message-id: if the stopping broker loses the intake's ack, the redelivered
            // copy is known and makes no second job.
            try await harness.publish(mediaInfoRequest(userData: "during"), messageID: TestEnvironment.uniqueName("during"))
            try await eventually("the job to be stored") {
                try await application.store.jobs(JobQuery(states: [.pause], limit: 5)).count == 1
            }
            try await FaultBroker.control("stop")
            queue.state = .active
            try await application.store.updateQueue(queue)
            try await eventually("the job to end while the broker is down") {
                try await application.store.jobs(JobQuery(states: [.success], limit: 5)).count == 2
            }
            try await FaultBroker.control("start")

            try await harness.client.waitUntilConnected()
            try await harness.waitForIntake()
            try await harness.publish(mediaInfoRequest(userData: "after"))
            // At least once: a publish the stopping broker stored but never confirmed is sent
            // again, so "during" may come twice, as the same event (same message-id).
            let later = try await harness.receive(from: events) { messages in
                Set(messages.compactMap { $0.xml?["JobsDetail"]?.text("Operation", "UserData") }).isSuperset(of: ["during", "after"])
            }
            let names = Set(later.compactMap { $0.xml?["JobsDetail"]?.text("Operation", "UserData") })
            #expect(names == ["during", "after"])
            var messageIDs: [String: Set<String>] = [:]
            for message in later {
                messageIDs[message.xml?["JobsDetail"]?.text("Operation", "UserData") ?? "", default: []].insert(message.properties.messageID ?? "")
            }
            #expect(messageIDs.values.allSatisfy { $0.count == 1 }, "a repeated event keeps its message-id")
        }
    }
}
