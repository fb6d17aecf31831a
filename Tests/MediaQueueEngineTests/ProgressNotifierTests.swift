import Logging
import MediaQueueAMQP
import MediaQueueCore
import MediaQueueHTTPClient
import MediaQueueTestSupport
import MediaQueueXML
import Synchronization
import Testing
@testable import MediaQueueEngine

/// `TaskProgress` events on the in-memory broker, the memory store and a manual clock: sent where
/// the rule or the job asks, at most once per interval and only when the progress moved, and
/// never once the job has ended.
@Suite(.timeLimit(.minutes(5))) struct ProgressNotifierTests {
    let broker = MemoryBroker()
    let clock = ManualTimeSource()
    let store: MemoryJobStore
    let notifier: ProgressNotifier

    init() {
        store = MemoryJobStore(time: clock)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        notifier = ProgressNotifier(
            store: store, regions: MQRegions(fallback: broker), client: HTTPClient(), options: ProgressOptions(interval: .seconds(5)),
            formatting: CIFormatting(), time: clock, logger: logger
        )
    }

    /// A running job in a queue whose rule publishes `events` to the topic exchange `events`, and
    /// a subscriber queue bound to every progress event.
    /// With `toQueue`, the rule publishes to that queue instead.
    func runningJob(events: [NotifyConfig.Event], callback: CallbackOverride = CallbackOverride(), toQueue: String? = nil) async throws -> Job {
        var queue = try await store.ensureDefaultQueue(bucket: "b-1", template: MediaQueue(bucket: "", name: "", createTime: clock.now))
        queue.notifyConfig = NotifyConfig(
            isOn: true, events: events, type: .tdmq, mqMode: toQueue == nil ? .topic : .queue, mqName: toQueue ?? "events", mqRegion: "sh"
        )
        try await store.updateQueue(queue)
        try await broker.declare(AMQPTopology(
            exchanges: [AMQPExchange(name: "events", type: "topic")], queues: [AMQPQueue(name: "progress")],
            bindings: [AMQPBinding(queue: "progress", exchange: "events", routingKey: "job.*.*.Progress")]
        ))
        let job = Job(
            bucket: "b-1", queueID: queue.id, tag: "Transcode", input: XMLTree("Input"), operation: XMLTree("Operation"), callback: callback,
            creationTime: clock.now
        )
        _ = try await store.submit([Submission(idempotencyKey: nil, jobs: [job])])
        let claimed = try #require(try await store.claimJobs(owner: "n", now: clock.now, leaseUntil: clock.now + .seconds(60), limit: 1).first)
        notifier.jobStarted(claimed.id)
        return claimed
    }

    /// Progress values of the events in the subscriber's queue, once every send under way is done.
    func sentProgress(_ job: Job) async throws -> [String] {
        await notifier.jobEnded(job.id)
        return try broker.snapshot.messages(in: "progress").map { message in
            let document = try XMLDocumentParser.parse(message.body)
            #expect(document.text("EventName") == "TaskProgress")
            #expect(document["JobsDetail"]?.text("State") == "Running")
            #expect(message.routingKey == "job.\(job.queueID.rawValue).Transcode.Progress")
            #expect(message.properties.headers["x-ci-event"]?.stringValue == "TaskProgress")
            return document["JobsDetail"]?.text("Progress") ?? ""
        }
    }

    @Test func progressGoesOutAtMostOncePerIntervalAndOnlyWhenItMoved() async throws {
        let job = try await runningJob(events: [.taskFinish, .taskProgress])
        notifier.report(job, progress: 10)
        await notifier.waitForSends(job.id)
        clock.advance(by: .seconds(4))
        notifier.report(job, progress: 20)  // within the interval: dropped
        clock.advance(by: .seconds(1))
        notifier.report(job, progress: 30)
        await notifier.waitForSends(job.id)
        clock.advance(by: .seconds(5))
        notifier.report(job, progress: 30)  // did not move: dropped
        #expect(try await sentProgress(job) == ["10", "30"])
    }

    /// A queue deleted after progress events went to it: the next event comes back (published
    /// mandatory) and is lost (progress is best effort), and the one after declares the queue
    /// again and reaches it. The connection does not declare it again after a reconnect.
    @Test func aQueueDeletedSinceItWasDeclaredIsDeclaredAgainForTheNextEvent() async throws {
        let job = try await runningJob(events: [.taskProgress], toQueue: "job-progress")
        notifier.report(job, progress: 10)
        await notifier.waitForSends(job.id)
        #expect(broker.snapshot.messages(in: "job-progress").count == 1)

        broker.delete(queue: "job-progress")
        for progress in [20, 30] {
            clock.advance(by: .seconds(5))
            notifier.report(job, progress: progress)
            await notifier.waitForSends(job.id)
        }
        await notifier.jobEnded(job.id)
        let progress = try broker.snapshot.messages(in: "job-progress").map { try XMLDocumentParser.parse($0.body)["JobsDetail"]?.text("Progress") }
        #expect(progress == ["30"])
    }

    @Test func nothingGoesOutAfterTheJobEnded() async throws {
        let job = try await runningJob(events: [.taskFinish, .taskProgress])
        notifier.report(job, progress: 50)
        await notifier.jobEnded(job.id)
        #expect(broker.snapshot.messages(in: "progress").count == 1, "the send under way finished before jobEnded returned")
        clock.advance(by: .seconds(10))
        notifier.report(job, progress: 90)
        #expect(try await sentProgress(job) == ["50"])
    }

    /// A send that is still reading the queue's rule when the job's end has waited `sendTimeout`
    /// for it is cancelled: left to go on, its event could go out after the job's TaskFinish.
    @Test func aSendStillUnderWayWhenTheEndStopsWaitingIsCancelled() async throws {
        let reading = AsyncStream<Void>.makeStream()
        let release = AsyncStream<Void>.makeStream()
        let cancelledWhenReleased = Observed()
        let gated = CommitThenFailStore(store) {
            reading.continuation.yield()
            for await _ in release.stream { break }
            cancelledWhenReleased.set(Task.isCancelled)
        }
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let notifier = ProgressNotifier(
            store: gated, regions: MQRegions(fallback: broker), client: HTTPClient(),
            options: ProgressOptions(interval: .seconds(5), sendTimeout: .seconds(5)), formatting: CIFormatting(), time: clock, logger: logger
        )
        let job = try await runningJob(events: [.taskFinish, .taskProgress])
        notifier.jobStarted(job.id)
        notifier.report(job, progress: 50)
        for await _ in reading.stream { break }
        let ended = Task { await notifier.jobEnded(job.id) }
        await clock.sleepers(atLeast: 1)
        clock.advance(by: .seconds(5))
        await ended.value
        release.continuation.yield()
        try await eventually("the held send to go on") { cancelledWhenReleased.value != nil }
        #expect(cancelledWhenReleased.value == true, "the send was cancelled when the end stopped waiting for it")
    }

    final class Observed: Sendable {
        private let seen = Mutex<Bool?>(nil)
        var value: Bool? { seen.withLock { $0 } }
        func set(_ value: Bool) { seen.withLock { $0 = value } }
    }

    @Test func aRuleWithoutTaskProgressSendsNone() async throws {
        let job = try await runningJob(events: [.taskFinish])
        notifier.report(job, progress: 50)
        #expect(try await sentProgress(job) == [])
    }

    @Test func aJobsOwnCallBackEventAsksForProgress() async throws {
        let job = try await runningJob(events: [.taskFinish], callback: CallbackOverride(events: [.taskFinish, .taskProgress]))
        notifier.report(job, progress: 5)
        #expect(try await sentProgress(job) == ["5"])
    }

    @Test func aJobsEndWaitsForAHangingReceiverNoLongerThanTheSendTimeout() async throws {
        let receiver = try TestHTTPReceiver { _, _ in .hang }
        defer { receiver.stop() }
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let client = HTTPClient(configuration: HTTPClientConfiguration(addressPolicy: AddressPolicy(allowedNetworks: [IPNetwork("127.0.0.0/8")!])))
        let notifier = ProgressNotifier(
            store: store, regions: MQRegions(fallback: broker), client: client,
            // Far longer than the test: the POST (timed in real time) is still held when the end goes on.
            options: ProgressOptions(interval: .seconds(5), sendTimeout: .seconds(600)), formatting: CIFormatting(), time: clock, logger: logger
        )
        var queue = try await store.ensureDefaultQueue(bucket: "b-1", template: MediaQueue(bucket: "", name: "", createTime: clock.now))
        queue.notifyConfig = NotifyConfig(isOn: true, events: [.taskFinish, .taskProgress], type: .url, url: receiver.url())
        try await store.updateQueue(queue)
        let job = Job(bucket: "b-1", queueID: queue.id, tag: "Transcode", input: XMLTree("Input"), operation: XMLTree("Operation"), creationTime: clock.now)
        _ = try await store.submit([Submission(idempotencyKey: nil, jobs: [job])])
        notifier.jobStarted(job.id)
        notifier.report(job, progress: 40)
        try await eventually("the POST to reach the receiver") { receiver.inFlight == 1 }

        let ended = Task { await notifier.jobEnded(job.id) }
        // Once the end waits on the clock, the send timeout passes: the end goes on without the answer.
        await clock.sleepers(atLeast: 1)
        clock.advance(by: .seconds(600))
        await ended.value
        // And the POST is given up, so that it cannot be answered after the job's TaskFinish.
        try await eventually("the receiver's connection closed") { receiver.inFlight == 0 }
    }
}
