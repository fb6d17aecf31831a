import Logging
import MediaQueueAMQP
import MediaQueueCore
import MediaQueueXML
import MediaQueueTestSupport
import Synchronization
import ServiceLifecycle
import Testing
@testable import MediaQueueEngine

/// The TDMQ relay on the in-memory broker and the memory store: each event reaches its queue or
/// topic once the broker confirmed it, carries its event id as `message-id`, and a refused
/// publish comes again on the retry schedule (on a manual clock) with the same id.
@Suite(.timeLimit(.minutes(5))) struct TDMQRelayTests {
    let broker = MemoryBroker()
    let clock = ManualTimeSource()
    let store: MemoryJobStore
    let schedule = RetrySchedule(delays: [.seconds(5)], jitter: 0)

    init() {
        store = MemoryJobStore(time: clock)
    }

    /// Puts events for `target` in the outbox, through jobs' ends as the dispatcher does.
    @discardableResult
    func enqueue(_ count: Int = 1, target: CallbackTarget.Destination) async throws -> [OutboxEntry] {
        let queue = try await store.ensureDefaultQueue(bucket: "b-1", template: MediaQueue(bucket: "", name: "", createTime: clock.now))
        var entries: [OutboxEntry] = []
        for _ in 0..<count {
            let job = Job(bucket: "b-1", queueID: queue.id, tag: "Noop", input: XMLTree("Input"), operation: XMLTree("Operation"), creationTime: clock.now)
            _ = try await store.submit([Submission(idempotencyKey: nil, jobs: [job])])
        }
        // Claimed and ended in rounds: the queue runs at most its MaxConcurrent at once.
        while entries.count < count {
            let claimed = try await store.claimJobs(owner: "t", now: clock.now, leaseUntil: clock.now + .seconds(60), limit: count - entries.count)
            try #require(!claimed.isEmpty)
            for var job in claimed {
                job.state = .success
                let entry = OutboxEntry(
                    jobID: job.id, bucket: "b-1", target: target, routingKey: "job.\(queue.id).Noop.Success", body: Array("<Response/>".utf8),
                    contentType: "application/xml", nextAttempt: clock.now, createdAt: clock.now
                )
                #expect(try await store.finish(job, owner: "t", outbox: [entry]))
                entries.append(entry)
            }
        }
        return entries
    }

    /// Runs a relay until the returned task is cancelled; it waits for its polls on `wakeup`.
    func startRelay(handoff: DeliveryHandoff? = nil, wakeup: Wakeup? = nil) -> Task<Void, any Error> {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let relay = TDMQRelayService(
            store: store, regions: MQRegions(fallback: broker),
            options: RelayOptions(pollInterval: .milliseconds(250), retrySchedule: schedule, recordLinger: .zero),
            time: clock, wakeup: handoff?.wakeup ?? wakeup ?? Wakeup(time: clock), handoff: handoff, logger: logger
        )
        return Task { try await relay.run() }
    }

    /// Returns once the relay waits on `wakeup` for its next poll (its publishing is over) and
    /// that wait's timer runs, beside its recorder's.
    func waitsForItsPoll(_ wakeup: Wakeup) async throws {
        try await eventually("the relay waiting for its next poll") { wakeup.hasWaiter }
        await clock.sleepers(atLeast: 2)
    }

    func waitUntilDelivered(_ entries: [OutboxEntry]) async throws {
        try await eventually("\(entries.count) deliveries recorded") { entries.allSatisfy { store.outboxEntry(id: $0.id) == nil } }
    }

    /// A relay on `regions` with `options`, on the test's store and clock, logging nothing.
    func relay(_ regions: MQRegions, _ options: RelayOptions) -> (TDMQRelayService, Logger) {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return (TDMQRelayService(store: store, regions: regions, options: options, time: clock, wakeup: Wakeup(time: clock), logger: logger), logger)
    }

    /// Moves the clock from one sleeper's deadline to the next, no further than 4 s from now
    /// (well within a lease, short of a renewal at a third of one), until `done`.
    func turns(_ what: String, until done: () -> Bool) async throws {
        let limit = clock.now + .seconds(4)
        try await eventually(what) {
            if done() { return true }
            if let next = clock.nextDeadline, next <= limit {
                clock.advance(by: .milliseconds(max(0, next.milliseconds - clock.now.milliseconds)))
            }
            return nil
        }
    }

    @Test func anEventReachesItsQueueWithItsIDAndIsRecordedDelivered() async throws {
        let entry = try #require(try await enqueue(target: .mq(mode: .queue, name: "job-events", region: "")).first)
        let relay = startRelay()
        defer { relay.cancel() }
        let message = try await broker.wait { $0.messages(in: "job-events").first }
        try await waitUntilDelivered([entry])
        #expect(message.properties.messageID == entry.id)
        #expect(message.properties.persistent)
        #expect(message.properties.headers["x-ci-job-id"]?.stringValue == entry.jobID.rawValue)
        #expect(message.body == entry.body)
    }

    @Test func aTopicEventIsRoutedByItsRoutingKey() async throws {
        // A subscriber bound to finished jobs of any queue.
        try await broker.declare(AMQPTopology(
            exchanges: [AMQPExchange(name: "ci-events", type: "topic")], queues: [AMQPQueue(name: "finished")],
            bindings: [AMQPBinding(queue: "finished", exchange: "ci-events", routingKey: "job.*.*.Success")]
        ))
        let entry = try #require(try await enqueue(target: .mq(mode: .topic, name: "ci-events", region: "")).first)
        let relay = startRelay()
        defer { relay.cancel() }
        let message = try await broker.wait { $0.messages(in: "finished").first }
        #expect(message.routingKey == entry.routingKey)
        #expect(message.properties.messageID == entry.id)
        try await waitUntilDelivered([entry])
    }

    @Test func aRefusedPublishIsRetriedOnScheduleWithTheSameMessageID() async throws {
        broker.refusePublishes { $0.routingKey == "job-events" }
        let entry = try #require(try await enqueue(target: .mq(mode: .queue, name: "job-events", region: "")).first)
        let start = clock.now
        let wakeup = Wakeup(time: clock)
        let relay = startRelay(wakeup: wakeup)
        defer { relay.cancel() }
        try await eventually("the failed attempt to be recorded") { store.outboxEntry(id: entry.id)?.attempts == 1 }
        #expect(store.outboxEntry(id: entry.id)?.nextAttempt == start + .seconds(5))
        #expect(broker.snapshot.messages(in: "job-events").isEmpty)

        broker.refusePublishes(nil)
        // Once the relay waits for its next poll, time moves on.
        try await waitsForItsPoll(wakeup)
        clock.advance(by: .seconds(5))
        let message = try await broker.wait { $0.messages(in: "job-events").first }
        #expect(message.properties.messageID == entry.id)
        try await waitUntilDelivered([entry])
        #expect(broker.snapshot.messages(in: "job-events").count == 1)
    }

    /// A batch's confirmed deliveries are recorded while its failures are still being written:
    /// the confirmed ones' leases run on meanwhile, and one that ended first would be sent again.
    @Test func aBatchsConfirmedDeliveriesAreRecordedWhileItsFailuresAreWritten() async throws {
        let refused = try #require(try await enqueue(target: .mq(mode: .queue, name: "refused-events", region: "")).first)
        let confirmed = try #require(try await enqueue(target: .mq(mode: .queue, name: "job-events", region: "")).first)
        broker.refusePublishes { $0.routingKey == "refused-events" }
        let recordedFirst = Mutex<Bool?>(nil)
        store.beforeEachFailedAttempt { [store] _ in
            let recorded = (try? await eventually("the confirmed delivery recorded", timeout: .seconds(60)) {
                store.outboxEntry(id: confirmed.id) == nil
            }) != nil
            recordedFirst.withLock { $0 = $0 ?? recorded }
        }
        let relay = startRelay()
        defer { relay.cancel() }
        try await eventually("the failed attempt recorded") { store.outboxEntry(id: refused.id)?.attempts == 1 }
        #expect(recordedFirst.withLock { $0 } == true)
        try await waitUntilDelivered([confirmed])
    }

    /// An exchange deleted after the relay declared it: the broker closes the publish channel at
    /// its next event, and every publish after it in the batch fails with that close. Those
    /// went down as failed attempts too, pushed back by the retry schedule at every retry of
    /// the one bad destination; now only the event for the gone exchange counts one.
    @Test func aDestinationThatClosesThePublishChannelChargesNoOtherDeliveryAnAttempt() async throws {
        let topic = CallbackTarget.Destination.mq(mode: .topic, name: "gone-topic", region: "")
        let first = try await enqueue(target: topic)
        let wakeup = Wakeup(time: clock)
        let relay = startRelay(wakeup: wakeup)
        defer { relay.cancel() }
        try await waitUntilDelivered(first)
        try await waitsForItsPoll(wakeup)

        broker.delete(exchange: "gone-topic")
        let failedAttempts = Mutex<[String]>([])
        store.beforeEachFailedAttempt { id in failedAttempts.withLock { $0.append(id) } }
        let culprit = try #require(try await enqueue(target: topic).first)
        let beside = try await enqueue(3, target: .mq(mode: .queue, name: "job-events", region: ""))
        wakeup.signal()
        // The handed-back deliveries go at the relay's next poll; the culprit's retry is seconds on.
        try await turns("the three beside it delivered") { beside.allSatisfy { store.outboxEntry(id: $0.id) == nil } }
        #expect(failedAttempts.withLock { $0 } == [culprit.id])
        #expect(store.outboxEntry(id: culprit.id)?.attempts == 1)
    }

    /// A queue deleted after the relay declared it: the broker returns the next event (it is
    /// published mandatory), and the retry declares the queue again and delivers it.
    @Test func aQueueDeletedAfterTheRelayDeclaredItIsDeclaredAgainForTheRetry() async throws {
        let target = CallbackTarget.Destination.mq(mode: .queue, name: "job-events", region: "")
        let first = try await enqueue(target: target)
        let wakeup = Wakeup(time: clock)
        let relay = startRelay(wakeup: wakeup)
        defer { relay.cancel() }
        try await waitUntilDelivered(first)

        broker.delete(queue: "job-events")
        let entry = try #require(try await enqueue(target: target).first)
        try await waitsForItsPoll(wakeup)
        clock.advance(by: .milliseconds(250))
        try await eventually("the returned event recorded as a failed attempt") { store.outboxEntry(id: entry.id)?.attempts == 1 }

        try await waitsForItsPoll(wakeup)
        clock.advance(by: .seconds(5))
        let retried = try await eventually("the retry's outcome") { () -> String? in
            guard let pending = store.outboxEntry(id: entry.id) else { return "delivered" }
            return pending.attempts > 1 ? "returned again" : nil
        }
        #expect(retried == "delivered")
        #expect(broker.snapshot.messages(in: "job-events").map(\.properties.messageID) == [entry.id])
    }

    /// A queue name stored before names were checked, too long for AMQP: it could never be
    /// declared or published to, so the delivery is dead after its first attempt rather than
    /// retried through the whole schedule, and the relay goes on with the next.
    @Test func aDeliveryToANameAMQPCannotCarryIsDeadAtOnceAndTheNextGoesOut() async throws {
        let stuck = try #require(try await enqueue(target: .mq(mode: .queue, name: String(repeating: "q", count: 256), region: "")).first)
        let next = try #require(try await enqueue(target: .mq(mode: .queue, name: "job-events", region: "")).first)
        let relay = startRelay()
        defer { relay.cancel() }
        try await waitUntilDelivered([next])
        let dead = try await eventually("the delivery to the long name to be dead") {
            try await store.deadOutbox(DeliveryFilter(), limit: 10).first { $0.id == stuck.id }
        }
        #expect(dead.attempts == 1)
        #expect(dead.lastError?.contains("unencodable") == true, "\(dead.lastError ?? "")")
    }

    /// A delivery the store failed to record is written again after a poll interval while its
    /// lease runs, instead of being left to go out a second time when the lease ends.
    @Test func aDeliveryTheStoreFailedToRecordIsRecordedAtTheNextTry() async throws {
        store.failNextRecordings(1)
        let entry = try #require(try await enqueue(target: .mq(mode: .queue, name: "job-events", region: "")).first)
        let wakeup = Wakeup(time: clock)
        let relay = startRelay(wakeup: wakeup)
        defer { relay.cancel() }
        _ = try await broker.wait { $0.messages(in: "job-events").first }
        try await eventually("the failed write") { store.recordingFailuresLeft == 0 }
        // The recorder pauses beside the relay's poll wait; then time moves on by one poll.
        try await waitsForItsPoll(wakeup)
        clock.advance(by: .milliseconds(250))
        try await waitUntilDelivered([entry])
        #expect(broker.snapshot.messages(in: "job-events").count == 1)
    }

    /// A broker that blocks its publishers (a resource alarm) holds their confirms back for
    /// longer than a lease. The relay renews its leases meanwhile, so a second relay, polling all
    /// along, never takes those deliveries, and each event goes out once when the block lifts.
    @Test func leasesAreRenewedWhileTheBrokerHoldsConfirmsBack() async throws {
        let entries = try await enqueue(3, target: .mq(mode: .queue, name: "job-events", region: ""))
        broker.blockPublishers(true)
        let first = startRelay()
        defer { first.cancel() }
        try await broker.wait { $0.blockedPublishes == 1 ? () : nil }
        let second = startRelay()
        defer { second.cancel() }
        // Two leases of time, a third of a lease at a step: at each, the first relay renews and
        // the second reads the outbox.
        for _ in 0..<6 {
            // The first relay's renewal wait and the second's poll, each beside its recorder's wait.
            await clock.sleepers(atLeast: 4)
            clock.advance(by: .seconds(5))
            let now = clock.now
            try await eventually("leases renewed at \(now) and the outbox read") {
                store.outboxReads(atOrAfter: now) > 0
                    && entries.allSatisfy { store.outboxEntry(id: $0.id)?.nextAttempt == now + .seconds(15) }
            }
        }
        broker.blockPublishers(false)
        try await waitUntilDelivered(entries)
        #expect(broker.snapshot.messages(in: "job-events").count == entries.count)
    }

    /// The failure of a publish the relay held its lease on for a while is recorded against the
    /// renewed lease, not the one it was read with (which the store no longer holds).
    @Test func aPublishThatFailsAfterItsLeaseWasRenewedIsRecordedAsAFailedAttempt() async throws {
        let entry = try #require(try await enqueue(target: .mq(mode: .queue, name: "job-events", region: "")).first)
        broker.blockPublishers(true)
        let relay = startRelay()
        defer { relay.cancel() }
        try await broker.wait { $0.blockedPublishes == 1 ? () : nil }
        // The renewal's wait and the recorder's.
        await clock.sleepers(atLeast: 2)
        clock.advance(by: .seconds(5))
        let renewedAt = clock.now
        try await eventually("the lease renewed") { store.outboxEntry(id: entry.id)?.nextAttempt == renewedAt + .seconds(15) }

        broker.refusePublishes { _ in true }
        broker.blockPublishers(false)
        try await eventually("the failed attempt recorded") { store.outboxEntry(id: entry.id)?.attempts == 1 }
        let failed = try #require(store.outboxEntry(id: entry.id))
        #expect(failed.lastError != nil)
        #expect(failed.nextAttempt == renewedAt + .seconds(5), "due again on the retry schedule, not when the lease would have ended")
    }

    /// A handed-off delivery may reach a publish with little of its lease left; the first
    /// renewal comes when a third of that lease has passed, here at once, not a third of a full
    /// lease later.
    @Test func aDeliveryWithLittleLeaseLeftIsRenewedAtOnceWhileTheBrokerBlocks() async throws {
        try await enqueue(target: .mq(mode: .queue, name: "job-events", region: ""))
        // 6 s of a 15-s lease: more than the third the relay checks for before publishing, less
        // than the two thirds after which the renewal while publishing starts at once.
        let leased = try await store.leaseOutbox(.tdmq, now: clock.now, until: clock.now + .seconds(6), limit: 10)
        let entry = try #require(leased.first)
        let handoff = DeliveryHandoff(wakeup: Wakeup(time: clock), lease: .seconds(15))
        handoff.push(leased)
        broker.blockPublishers(true)
        let relay = startRelay(handoff: handoff)
        defer { relay.cancel() }
        try await broker.wait { $0.blockedPublishes == 1 ? () : nil }
        let now = clock.now
        try await eventually("the lease renewed") { store.outboxEntry(id: entry.id)?.nextAttempt == now + .seconds(15) }
        broker.blockPublishers(false)
        try await waitUntilDelivered([entry])
        #expect(broker.snapshot.messages(in: "job-events").count == 1)
    }

    /// Before publishing, a delivery with under a third of its lease left is renewed to a whole
    /// lease, one with more goes as it is, and one whose lease another relay took since is left
    /// to that relay.
    @Test func deliveriesAboutToBeSentKeepTheirLeasesOrAreLeftToTheRelayThatTookThem() async throws {
        try await enqueue(3, target: .mq(mode: .queue, name: "job-events", region: ""))
        let (shortEnd, longEnd) = (clock.now + .seconds(4), clock.now + .seconds(10))
        let short = try await store.leaseOutbox(.tdmq, now: clock.now, until: shortEnd, limit: 2)
        let long = try #require(try await store.leaseOutbox(.tdmq, now: clock.now, until: longEnd, limit: 1).first)
        #expect(short.count == 2)
        // Another relay holds the second now (as if it took it once this relay's lease ended).
        let othersEnd = clock.now + .seconds(20)
        #expect(try await store.deferOutbox([short[1].id], dueBy: shortEnd, until: othersEnd) == [short[1].id])

        let (relay, _) = relay(MQRegions(fallback: broker), RelayOptions(lease: .seconds(15)))
        let held = await relay.stillHeld(short + [long])
        let renewedEnd = clock.now + .seconds(15)
        #expect(held.map(\.id) == [short[0].id, long.id])
        #expect(held.map(\.nextAttempt) == [renewedEnd, longEnd])
        #expect(store.outboxEntry(id: short[0].id)?.nextAttempt == renewedEnd)
        #expect(store.outboxEntry(id: short[1].id)?.nextAttempt == othersEnd, "the other relay's lease stands")
        #expect(store.outboxEntry(id: long.id)?.nextAttempt == longEnd)
    }

    /// A declare cancelled by the shutdown hands the batch back, due at once, except what the
    /// round already recorded as a failed attempt: that one keeps its backoff.
    @Test func aCancelledDeclareHandsBackTheBatchButKeepsTheBackoffOfWhatFailed() async throws {
        let failing = try #require(try await enqueue(target: .mq(mode: .queue, name: "first", region: "")).first)
        clock.advance(by: .milliseconds(1))
        let stopped = try #require(try await enqueue(target: .mq(mode: .queue, name: "second", region: "")).first)
        let leased = try await store.leaseOutbox(.tdmq, now: clock.now, until: clock.now + .seconds(15), limit: 10)
        #expect(leased.map(\.id) == [failing.id, stopped.id])
        let declares = Mutex(0)
        let declaring = SlowDeclaringBroker(base: broker, clock: clock, delay: .zero) {
            let call = declares.withLock { calls in
                calls += 1
                return calls
            }
            if call == 1 { throw AMQPError(.channelClosed, "404 NOT_FOUND") }
            throw CancellationError()
        }
        let (relay, logger) = relay(MQRegions(fallback: declaring), RelayOptions(retrySchedule: schedule))
        let recorder = DeliveryRecorder(store: store, time: clock, linger: .zero, pollInterval: .seconds(1), logger: logger)
        #expect(await relay.deliver(leased, on: declaring, declared: DeclaredDestinations(), recorder: recorder) == 0)
        #expect(store.outboxEntry(id: failing.id)?.nextAttempt == clock.now + .seconds(5), "its backoff kept")
        #expect(store.outboxEntry(id: failing.id)?.attempts == 1)
        #expect(store.outboxEntry(id: stopped.id)?.nextAttempt == clock.now, "handed back: due now")
        #expect(store.outboxEntry(id: stopped.id)?.attempts == 0)
    }

    /// A declare that outlasts the leases (a broker slow to answer): deliveries whose leases
    /// ended meanwhile, and which another relay has leased since, are left to that relay, not
    /// published by this one too.
    @Test func deliveriesWhoseLeasesEndedWhileDeclaringAreLeftToTheRelayThatTookThem() async throws {
        let entries = try await enqueue(2, target: .mq(mode: .queue, name: "job-events", region: ""))
        let leased = try await store.leaseOutbox(.tdmq, now: clock.now, until: clock.now + .seconds(15), limit: 10)
        let otherRelay = Mutex<(leased: [OutboxEntry], until: Timestamp?)>(([], nil))
        let slow = SlowDeclaringBroker(base: broker, clock: clock, delay: .seconds(16)) { [store, clock] in
            let until = clock.now + .seconds(15)
            let taken = try await store.leaseOutbox(.tdmq, now: clock.now, until: until, limit: 10)
            otherRelay.withLock { $0 = (taken, until) }
        }
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let relay = TDMQRelayService(
            store: store, regions: MQRegions(fallback: slow), options: RelayOptions(lease: .seconds(15)), time: clock,
            wakeup: Wakeup(time: clock), logger: logger
        )
        let recorder = DeliveryRecorder(store: store, time: clock, linger: .zero, pollInterval: .seconds(1), logger: logger)
        let delivered = await relay.deliver(leased, on: slow, declared: DeclaredDestinations(), recorder: recorder)

        let (taken, until) = otherRelay.withLock { $0 }
        #expect(Set(taken.map(\.id)) == Set(entries.map(\.id)), "the other relay leased both once this one's leases ended")
        #expect(delivered == 0)
        #expect(broker.snapshot.messages(in: "job-events").isEmpty, "this relay published neither")
        for entry in entries {
            #expect(store.outboxEntry(id: entry.id)?.nextAttempt == until, "the other relay's lease stands")
        }
    }

    /// A region whose broker blocks its publishers (or is down) holds back only its own events:
    /// the relay reads on after `slowRegionWait`, and another region's later events go out
    /// meanwhile. The blocked ones go out, once each, when their broker takes them again.
    @Test func aRegionWhoseBrokerBlocksHoldsBackOnlyItsOwnEvents() async throws {
        let blockedBroker = MemoryBroker()
        blockedBroker.blockPublishers(true)
        let (relay, _) = relay(
            MQRegions(brokers: ["ap-blocked": blockedBroker], fallback: broker),
            RelayOptions(pollInterval: .milliseconds(250), retrySchedule: schedule, recordLinger: .zero, slowRegionWait: .seconds(2))
        )
        let held = try await enqueue(3, target: .mq(mode: .queue, name: "job-events", region: "ap-blocked"))
        let running = Task { try await relay.run() }
        defer { running.cancel() }
        try await blockedBroker.wait { $0.blockedPublishes == 1 ? () : nil }

        let later = try await enqueue(3, target: .mq(mode: .queue, name: "job-events", region: "ap-other"))
        try await turns("the other region's events delivered") { later.allSatisfy { store.outboxEntry(id: $0.id) == nil } }
        #expect(broker.snapshot.messages(in: "job-events").compactMap(\.properties.messageID).sorted() == later.map(\.id).sorted())
        #expect(held.allSatisfy { store.outboxEntry(id: $0.id) != nil }, "the blocked region's events are not delivered yet")

        blockedBroker.blockPublishers(false)
        try await waitUntilDelivered(held)
        #expect(blockedBroker.snapshot.messages(in: "job-events").compactMap(\.properties.messageID).sorted() == held.map(\.id).sorted(), "each once")
    }

    /// A broker that holds its confirms back (an alarm; or one that is away) does not hold the
    /// relay's shutdown past `shutdownGrace`: the relay stops, and the event it could not get
    /// confirmed is neither published nor counted as a failed attempt. It is handed back, due at
    /// once for any relay (it would go out again with the same message-id anyway).
    @Test func aBrokerThatHoldsConfirmsBackDoesNotHoldTheShutdownPastItsGrace() async throws {
        let entry = try #require(try await enqueue(target: .mq(mode: .queue, name: "job-events", region: "")).first)
        broker.blockPublishers(true)
        let (relay, logger) = relay(
            MQRegions(fallback: broker), RelayOptions(retrySchedule: schedule, lease: .seconds(15), recordLinger: .zero, shutdownGrace: .seconds(3))
        )
        let group = ServiceGroup(services: [relay], logger: logger)
        let running = Task { try await group.run() }
        defer { running.cancel() }
        try await broker.wait { $0.blockedPublishes == 1 ? () : nil }
        #expect(try #require(store.outboxEntry(id: entry.id)).nextAttempt > clock.now, "leased while it is being sent")

        await group.triggerGracefulShutdown()
        let ended = Mutex(false)
        let watcher = Task { _ = await running.result; ended.withLock { $0 = true } }
        try await turns("the relay stopped") { ended.withLock { $0 } }
        await watcher.value
        try await running.value
        #expect(broker.snapshot.messages(in: "job-events").isEmpty)
        let left = try #require(store.outboxEntry(id: entry.id))
        #expect(left.attempts == 0, "not a failed attempt")
        #expect(left.nextAttempt <= clock.now, "handed back: due now, not when its lease ends")
    }

    /// A region whose broker is away, with more due than its lane may hold: once the lane is
    /// full the relay stops reading that region, so the rest of its backlog stays in the outbox,
    /// not leased for nothing (again at every lease's end), and another region's event behind
    /// it in the outbox goes out. The same when the away broker is the fallback, whose regions
    /// cannot be listed: the relay then reads only the regions with brokers of their own. A read
    /// larger than the lane's room (batches of 4) hands back what the lane cannot take.
    @Test(arguments: [false, true], [2, 4])
    func aFullRegionLaneLeavesItsRegionsBacklogInTheOutbox(awayBrokerIsTheFallback: Bool, batchSize: Int) async throws {
        let (away, healthy) = (MemoryBroker(), broker)
        away.blockPublishers(true)
        let regions = awayBrokerIsTheFallback
            ? MQRegions(brokers: ["ap-own": healthy], fallback: away) : MQRegions(brokers: ["ap-away": away], fallback: healthy)
        let (relay, _) = relay(
            regions,
            RelayOptions(
                batchSize: batchSize, pollInterval: .milliseconds(250), retrySchedule: schedule, recordLinger: .zero, regionBacklogLimit: 2,
                slowRegionWait: .seconds(1)
            )
        )
        let backlog = try await enqueue(8, target: .mq(mode: .queue, name: "job-events", region: awayBrokerIsTheFallback ? "ap-any" : "ap-away"))
        clock.advance(by: .milliseconds(1))  // due after the whole backlog
        let other = try await enqueue(1, target: .mq(mode: .queue, name: "job-events", region: awayBrokerIsTheFallback ? "ap-own" : "ap-other"))
        let running = Task { try await relay.run() }
        defer { running.cancel() }

        try await turns("the other region's event delivered") { other.allSatisfy { store.outboxEntry(id: $0.id) == nil } }
        let leased = backlog.filter { (store.outboxEntry(id: $0.id)?.nextAttempt ?? clock.now) > clock.now }
        #expect(leased.count <= 4, "at most the batch being sent and the lane's two waiting")
        #expect(away.snapshot.blockedPublishes == 1)
    }

    /// Two relays on one store lease what they send: each event is published once.
    @Test func twoRelaysOnOneStorePublishEachEventOnce() async throws {
        let entries = try await enqueue(300, target: .mq(mode: .queue, name: "job-events", region: ""))
        let first = startRelay()
        let second = startRelay()
        defer {
            first.cancel()
            second.cancel()
        }
        try await waitUntilDelivered(entries)
        let ids = broker.snapshot.messages(in: "job-events").compactMap(\.properties.messageID)
        #expect(ids.count == entries.count)
        #expect(Set(ids) == Set(entries.map(\.id)))
    }
}

/// The memory broker with declares that take `delay` on the manual clock (a broker slow to
/// answer), running `whileDeclaring` once that time has passed.
struct SlowDeclaringBroker: MessageBroker {
    let base: MemoryBroker
    let clock: ManualTimeSource
    let delay: Duration
    let whileDeclaring: @Sendable () async throws -> Void

    var isConnected: Bool { base.isConnected }
    var frameMax: Int { base.frameMax }

    func declare(_ topology: AMQPTopology, remember: Bool) async throws {
        clock.advance(by: delay)
        try await whileDeclaring()
        try await base.declare(topology, remember: remember)
    }

    func consume(queue: String, prefetch: UInt16) async throws -> MemoryConsumer {
        try await base.consume(queue: queue, prefetch: prefetch)
    }

    func publish(batch: [AMQPOutgoingMessage]) async -> [Result<Void, AMQPError>] {
        await base.publish(batch: batch)
    }

    func ack(_ tag: AMQPDeliveryTag, multiple: Bool) { base.ack(tag, multiple: multiple) }
    func nack(_ tag: AMQPDeliveryTag, multiple: Bool, requeue: Bool) { base.nack(tag, multiple: multiple, requeue: requeue) }
}

/// The TDMQ relay declares each destination before its first publish, once: a rule or a job may
/// name any number, so past `limit` it forgets them all and declares each again when next used.
@Suite struct DeclaredDestinationsTests {
    @Test func eachDestinationIsDeclaredOnceAndPastTheLimitAllAreDeclaredAgain() async throws {
        let declares = Mutex(0)
        let broker = SlowDeclaringBroker(base: MemoryBroker(), clock: ManualTimeSource(), delay: .zero) { declares.withLock { $0 += 1 } }
        let declared = DeclaredDestinations(limit: 2)
        let (a, b, c): (CallbackTarget.Destination, CallbackTarget.Destination, CallbackTarget.Destination) = (
            .mq(mode: .queue, name: "a", region: ""), .mq(mode: .topic, name: "b", region: ""), .mq(mode: .queue, name: "c", region: "")
        )
        for target in [a, a, b, b] { try await declared.ensure(target, on: broker) }
        #expect(declares.withLock { $0 } == 2)
        try await declared.ensure(c, on: broker)
        #expect(declared.count == 1, "a and b forgotten")
        try await declared.ensure(a, on: broker)
        #expect(declares.withLock { $0 } == 4)
    }
}

/// A region's lane while its batch is being sent: a copy of a delivery in that batch, leased
/// again by the reading loop (its lease having lapsed under a long publish), is not sent again.
@Suite struct RegionLaneTests {
    @Test func aDeliveryAddedAgainWhileItsBatchIsBeingSentIsNotSentTwice() async throws {
        let clock = ManualTimeSource()
        let lane = RegionLane(batchSize: 10, limit: 100, time: clock)
        let sent = Mutex<[[String]]>([])
        let (inSend, inSendContinuation) = AsyncStream.makeStream(of: Void.self)
        let (gate, gateContinuation) = AsyncStream.makeStream(of: Void.self)
        let running = Task {
            await lane.run { batch in
                sent.withLock { $0.append(batch.map(\.id)) }
                inSendContinuation.yield()
                for await _ in gate { break }
                return batch.count
            }
        }
        var entry = OutboxEntry(
            jobID: JobID.generate(), bucket: "b-1", target: .mq(mode: .queue, name: "job-events", region: "ap-x"), routingKey: "job.x",
            body: Array("<Response/>".utf8), contentType: "application/xml", nextAttempt: clock.now + .seconds(15), createdAt: clock.now
        )
        #expect(lane.add([entry]).wasIdle, "idle")
        var sends = inSend.makeAsyncIterator()
        _ = await sends.next()

        entry.nextAttempt = clock.now + .seconds(30)
        #expect(!lane.add([entry]).wasIdle, "busy sending the first copy")
        gateContinuation.finish()
        #expect(await lane.untilIdle(by: clock.now + .seconds(3_600)) == 1)
        lane.close()
        await running.value
        #expect(sent.withLock { $0 } == [[entry.id]], "sent once")
        #expect(lane.takeUnsent().isEmpty)
    }
}
