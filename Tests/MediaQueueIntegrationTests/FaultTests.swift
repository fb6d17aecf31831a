import Foundation
import MediaQueueAMQP
import MediaQueueApp
import MediaQueueCore
import MediaQueueSQLite
import MediaQueueTestSupport
import MediaQueueXML
import Synchronization
import Testing

/// A store that commits a submission and then fails as if the process had died before its ack:
/// the broker redelivers the message, exactly as after a crash between commit and ack.
final class CrashAfterFirstCommitStore: JobStore, @unchecked Sendable {
    // @unchecked: `crashed` is only touched inside `submit`, which the intake calls from one task.
    let base: any JobStore
    private var crashed = false

    init(_ base: any JobStore) { self.base = base }

    struct SimulatedCrash: Error {}

    func submit(_ submissions: [Submission]) async throws -> [SubmissionOutcome] {
        let outcomes = try await base.submit(submissions)
        if !crashed {
            crashed = true
            throw SimulatedCrash()
        }
        return outcomes
    }

    func ensureDefaultQueue(bucket: String, template: MediaQueue) async throws -> MediaQueue { try await base.ensureDefaultQueue(bucket: bucket, template: template) }
    func createQueue(_ queue: MediaQueue) async throws { try await base.createQueue(queue) }
    func createDefinition(_ definition: Definition) async throws { try await base.createDefinition(definition) }
    func updateDefinition(_ definition: Definition) async throws { try await base.updateDefinition(definition) }
    func definitions(_ kind: Definition.Kind, bucket: String) async throws -> [Definition] { try await base.definitions(kind, bucket: bucket) }
    func definition(_ kind: Definition.Kind, id: String) async throws -> Definition? { try await base.definition(kind, id: id) }
    func deleteDefinition(_ kind: Definition.Kind, id: String, bucket: String) async throws { try await base.deleteDefinition(kind, id: id, bucket: bucket) }
    func createRun(_ run: WorkflowRun, jobs: [Job]) async throws -> WorkflowRun { try await base.createRun(run, jobs: jobs) }
    func updateRun(_ run: WorkflowRun, jobs: [Job], outbox: [OutboxEntry]) async throws -> Bool { try await base.updateRun(run, jobs: jobs, outbox: outbox) }
    func run(id: String) async throws -> WorkflowRun? { try await base.run(id: id) }
    func recordArrival(_ arrival: Arrival) async throws { try await base.recordArrival(arrival) }
    func removeArrival(id: String) async throws { try await base.removeArrival(id: id) }
    func arrivals(before cutoff: Timestamp, limit: Int) async throws -> [Arrival] { try await base.arrivals(before: cutoff, limit: limit) }
    func runs(_ query: RunQuery) async throws -> [WorkflowRun] { try await base.runs(query) }
    func runningRuns(after sequence: Int64, limit: Int) async throws -> [WorkflowRun] { try await base.runningRuns(after: sequence, limit: limit) }
    func queues(bucket: String?) async throws -> [MediaQueue] { try await base.queues(bucket: bucket) }
    func queue(id: QueueID) async throws -> MediaQueue? { try await base.queue(id: id) }
    func updateQueue(_ queue: MediaQueue) async throws { try await base.updateQueue(queue) }
    func deleteQueue(id: QueueID) async throws { try await base.deleteQueue(id: id) }
    func job(id: JobID) async throws -> Job? { try await base.job(id: id) }
    func claim(_ request: ClaimRequest) async throws -> ClaimResult { try await base.claim(request) }
    func finish(_ jobs: [FinishedJob], owner: String, thenClaim claim: ClaimRequest) async throws -> (recorded: [Bool], claim: ClaimResult) {
        try await base.finish(jobs, owner: owner, thenClaim: claim)
    }
    func submit(_ submissions: [Submission], thenClaim claim: ClaimRequest) async throws -> (outcomes: [SubmissionOutcome], claim: ClaimResult) {
        // The first call stores without claiming, then fails: as after a real crash, nothing holds
        // a lease on the stored job, and the dispatcher claims it.
        if !crashed { return (try await submit(submissions), ClaimResult(jobs: [], moreWaiting: true)) }
        return try await base.submit(submissions, thenClaim: claim)
    }
    func renewLeases(_ ids: [JobID], owner: String, until: Timestamp) async throws -> [JobID] { try await base.renewLeases(ids, owner: owner, until: until) }
    func release(_ ids: [JobID], owner: String) async throws { try await base.release(ids, owner: owner) }
    func updateProgress(_ id: JobID, progress: Int) async throws { try await base.updateProgress(id, progress: progress) }
    func finish(_ jobs: [FinishedJob], owner: String) async throws -> [Bool] { try await base.finish(jobs, owner: owner) }
    func cancel(_ id: JobID, now: Timestamp) async throws -> CancelOutcome { try await base.cancel(id, now: now) }
    func cancelRequests(owner: String) async throws -> [JobID] { try await base.cancelRequests(owner: owner) }
    func jobs(_ query: JobQuery) async throws -> [Job] { try await base.jobs(query) }
    func dueOutbox(_ channel: NotifyConfig.Channel, now: Timestamp, limit: Int) async throws -> [OutboxEntry] { try await base.dueOutbox(channel, now: now, limit: limit) }
    func markDelivered(_ ids: [String], at: Timestamp) async throws { try await base.markDelivered(ids, at: at) }
    func markAttemptFailed(_ id: String, error: String, nextAttempt: Timestamp?, leaseEnd: Timestamp) async throws -> Bool {
        try await base.markAttemptFailed(id, error: error, nextAttempt: nextAttempt, leaseEnd: leaseEnd)
    }
    func queueStatistics(bucket: String?) async throws -> [QueueStatistics] { try await base.queueStatistics(bucket: bucket) }
    func outboxStatistics() async throws -> OutboxStatistics { try await base.outboxStatistics() }
    func deadOutbox(_ filter: DeliveryFilter, limit: Int) async throws -> [OutboxEntry] { try await base.deadOutbox(filter, limit: limit) }
    func redriveDead(_ filter: DeliveryFilter, now: Timestamp) async throws -> Int { try await base.redriveDead(filter, now: now) }
    func deliveries(of job: Job) async throws -> [OutboxDelivery] { try await base.deliveries(of: job) }
    func activity(bucket: String, since: Timestamp, now: Timestamp) async throws -> JobActivity {
        try await base.activity(bucket: bucket, since: since, now: now)
    }
    func purgeIdempotencyKeys(before cutoff: Timestamp) async throws { try await base.purgeIdempotencyKeys(before: cutoff) }
    func purgeEnded(before cutoff: Timestamp, limit: Int, keeping: Set<JobID>) async throws -> PurgedRecords {
        try await base.purgeEnded(before: cutoff, limit: limit, keeping: keeping)
    }
    func dueOutbox(_ channel: NotifyConfig.Channel, now: Timestamp, limit: Int, excludingEndpoints: Set<String>) async throws -> [OutboxEntry] {
        try await base.dueOutbox(channel, now: now, limit: limit, excludingEndpoints: excludingEndpoints)
    }
    func deferOutbox(_ ids: [String], dueBy: Timestamp, until: Timestamp) async throws -> [String] { try await base.deferOutbox(ids, dueBy: dueBy, until: until) }
    func leaseOutbox(_ channel: NotifyConfig.Channel, now: Timestamp, until: Timestamp, limit: Int) async throws -> [OutboxEntry] {
        try await base.leaseOutbox(channel, now: now, until: until, limit: limit)
    }
    func signingSecrets(bucket: String) async throws -> SigningSecrets { try await base.signingSecrets(bucket: bucket) }
    func rotateSigningSecret(bucket: String, now: Timestamp, grace: Duration) async throws -> SigningSecrets {
        try await base.rotateSigningSecret(bucket: bucket, now: now, grace: grace)
    }
    func checkWritable() async throws { try await base.checkWritable() }
}

@Suite struct FaultTests {
    @Test func aSubmissionRedeliveredAfterCommitButBeforeAckCreatesNoSecondJob() async throws {
        let harness = try ServiceHarness()
        try await SampleMedia.makeVideo(at: harness.bucketRoot + "/input/a.mp4", seconds: 2)
        let store = CrashAfterFirstCommitStore(try SQLiteJobStore(path: harness.configuration.databasePath))
        let events = try await harness.subscribeToEvents()
        let (_, service) = try harness.startService(store: store)
        defer { service.cancel() }
        try await harness.waitForIntake()

        try await harness.publish(mediaInfoRequest(userData: "once"), messageID: "only-once")
        let event = try #require(try await harness.receive(1, from: events).first)
        #expect(event.xml?["JobsDetail"]?.text("Operation", "UserData") == "once")

        try await eventually("the redelivered message to be settled") {
            try await harness.client.queueStatus(harness.configuration.intakeQueue).messages == 0
        }
        let jobs = try await store.jobs(JobQuery(limit: 10))
        #expect(jobs.count == 1, "the redelivery must not create a second job")
        // The relay records a confirmed delivery just after publishing it.
        try await eventually("the one event to be recorded as delivered") {
            try await store.dueOutbox(.tdmq, now: Timestamp(seconds: Int64.max / 2000), limit: 10).isEmpty
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
