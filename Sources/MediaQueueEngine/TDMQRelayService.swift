public import Logging
public import MediaQueueAMQP
public import MediaQueueCore
import Synchronization
public import ServiceLifecycle

/// Settings of the callback relays.
public struct RelayOptions: Sendable {
    /// Deliveries read from the outbox per round.
    public var batchSize: Int
    /// How long a relay sleeps when nothing is due (a signal wakes it sooner).
    public var pollInterval: Duration
    public var retrySchedule: RetrySchedule
    /// How long a delivery the relay took stays its own: if the relay dies meanwhile, another
    /// relay sends it after this (with the same `message-id`).
    public var lease: Duration
    /// How long the relay waits for more confirmed deliveries before recording them in one write.
    public var recordLinger: Duration
    /// How many committed TDMQ deliveries wait in memory for this process's relay at most
    /// (`DeliveryHandoff`); beyond it they go through the outbox alone.
    public var handoffLimit: Int
    /// How many destinations the TDMQ relay remembers having declared; past it, it forgets them
    /// all and declares each again at its next publish (rules and jobs may name any number).
    public var declaredDestinationsLimit: Int
    /// How many deliveries may wait for a region whose broker is slow or away (`RegionLane`);
    /// beyond it they wait in the outbox.
    public var regionBacklogLimit: Int
    /// How long the TDMQ relay waits for a region's batch before it reads on without it (the
    /// other regions' deliveries then go out while that region's broker is slow or away).
    public var slowRegionWait: Duration
    /// How long the TDMQ relay's last round may wait for its brokers once the service shuts
    /// down. Past it, what no broker has confirmed is handed back, due at once for any relay
    /// (with the same `message-id`), and the relay stops: a broker that is away does not hold
    /// the node's shutdown.
    public var shutdownGrace: Duration

    public init(
        batchSize: Int = 500, pollInterval: Duration = .milliseconds(250), retrySchedule: RetrySchedule = .standard,
        lease: Duration = .seconds(15), recordLinger: Duration = .milliseconds(10), handoffLimit: Int = 20_000,
        declaredDestinationsLimit: Int = 10_000, regionBacklogLimit: Int = 2_000, slowRegionWait: Duration = .seconds(5),
        shutdownGrace: Duration = .seconds(5)
    ) {
        self.shutdownGrace = shutdownGrace
        self.slowRegionWait = slowRegionWait
        self.regionBacklogLimit = regionBacklogLimit
        self.handoffLimit = handoffLimit
        self.declaredDestinationsLimit = declaredDestinationsLimit
        self.batchSize = batchSize
        self.pollInterval = pollInterval
        self.retrySchedule = retrySchedule
        self.lease = lease
        self.recordLinger = recordLinger
    }
}

/// The brokers that TDMQ-type callback rules publish to, by CI region code (`MqRegion`).
public struct MQRegions: Sendable {
    public var brokers: [String: any MessageBroker]
    /// Used for regions not listed (every region may point at the local broker).
    public var fallback: any MessageBroker

    public init(brokers: [String: any MessageBroker] = [:], fallback: any MessageBroker) {
        self.brokers = brokers
        self.fallback = fallback
    }

    public func broker(for region: String) -> any MessageBroker {
        brokers[region] ?? fallback
    }
}

/// Delivers TDMQ-type callbacks from the outbox: `MqMode=Queue` to the durable queue `MqName`,
/// `MqMode=Topic` to the durable topic exchange `MqName` with routing key
/// `job.<QueueId>.<Tag>.<State>`. A delivery is marked done only after the broker confirmed it;
/// a crash in between repeats it with the same `message-id` (the event id).
///
/// Every delivery the relay sends is leased to it in the store first (`JobStore.leaseOutbox`),
/// so relays in several processes on one store send each event once. Entries come from this
/// process's dispatcher through `DeliveryHandoff` as soon as they are committed (committed
/// leased), and from the outbox at least every poll interval (retries, other processes' jobs,
/// what a dead relay left behind). When regions have brokers of their own, each broker is
/// published to in a loop of its own (`RegionLane`), so one that is down holds back only its own
/// regions' events. Recording deliveries runs
/// beside publishing (`DeliveryRecorder`), so the next batch goes out while the last one is
/// being recorded.
public struct TDMQRelayService: Service {
    let store: any JobStore
    let regions: MQRegions
    let options: RelayOptions
    let time: any TimeSource
    let wakeup: Wakeup
    let handoff: DeliveryHandoff?
    let metrics: EngineMetrics
    let logger: Logger

    public init(
        store: any JobStore, regions: MQRegions, options: RelayOptions, time: any TimeSource = SystemTimeSource(), wakeup: Wakeup,
        handoff: DeliveryHandoff? = nil, metrics: EngineMetrics = .disabled, logger: Logger
    ) {
        self.metrics = metrics
        self.store = store
        self.regions = regions
        self.options = options
        self.time = time
        self.wakeup = wakeup
        self.handoff = handoff
        self.logger = logger
    }

    public func run() async throws {
        let declared = DeclaredDestinations(limit: options.declaredDestinationsLimit)
        let recorder = DeliveryRecorder(store: store, time: time, linger: options.recordLinger, pollInterval: options.pollInterval, logger: logger)
        // The last round gets `shutdownGrace`, then is cancelled: its publishes end then.
        let lanes = await cancellingAfterShutdownGrace(options.shutdownGrace, time: time) {
            await relay(declared: declared, recorder: recorder)
        }
        // Outside the (possibly cancelled) task, so the store takes the writes.
        await Task { await recorder.flush() }.value
        await handBack((handoff?.close() ?? []) + lanes.values.flatMap { $0.takeUnsent() })
    }

    /// Reads, publishes and records until the service shuts down (after the round it is in) or
    /// is cancelled; returns the region lanes it made, for what they did not send.
    private func relay(declared: DeclaredDestinations, recorder: DeliveryRecorder) async -> [String?: RegionLane] {
        var lanes: [String?: RegionLane] = [:]
        await withDiscardingTaskGroup { group in
            group.addTask { await recorder.run() }
            var lastRead: Timestamp?
            // On shutdown, finishes the round it is in, then lets the recorder catch up.
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                var batch = handoff?.take(max: options.batchSize, now: time.now) ?? []
                var outboxFull = false
                // Without a handoff every wakeup means new entries in the outbox; with one, what
                // this process commits comes through the handoff, so the outbox is read on the timer.
                if handoff == nil || lastRead.map({ time.now >= $0 + options.pollInterval }) ?? true {
                    lastRead = time.now
                    do {
                        let now = time.now
                        var leased: [OutboxEntry] = []
                        if let endpoints = outboxFilter(lanes) {
                            leased = try await store.leaseOutbox(.tdmq, now: now, until: now + options.lease, limit: options.batchSize, endpoints: endpoints)
                        }
                        // A handed-off entry whose lease ended since `take` may be leased again
                        // here: the new lease is the one that counts.
                        let leasedIDs = Set(leased.map(\.id))
                        batch = batch.filter { !leasedIDs.contains($0.id) } + leased
                        outboxFull = leased.count == options.batchSize
                    } catch {
                        logger.error("relay could not read the outbox", metadata: ["error": "\(error)"])
                    }
                }
                if !batch.isEmpty {
                    let delivered: Int
                    if regions.brokers.isEmpty {
                        // One broker: there is no other to hold back, so no hop to a lane.
                        delivered = await deliver(batch, on: regions.fallback, declared: declared, recorder: recorder)
                    } else {
                        let sent = await sendThroughLanes(batch, lanes: &lanes, group: &group, declared: declared, recorder: recorder)
                        delivered = sent.delivered
                        // Only busy lanes took the batch: reading on at once would lease their
                        // regions' backlog over and over, for lanes that cannot take it.
                        if !sent.anyIdle { outboxFull = false }
                    }
                    if outboxFull { lastRead = nil }  // more is due: read again at once
                    if delivered > 0 || outboxFull { continue }
                }
                await wakeup.wait(upTo: options.pollInterval)
            }
            for lane in lanes.values { lane.close() }
            recorder.stop()
        }
        return lanes
    }

    /// Makes deliveries this relay holds and will not send (it is stopping: never sent, or not
    /// confirmed; or their lane is full) due again at once, for any relay, instead of when their
    /// leases end; sent or not, each would go out again, with the same message-id, then. Each only
    /// if its lease is still the one this relay holds (its next attempt is still that lease's
    /// end), so a lease another relay took since is left alone. From a task of its own: the store
    /// takes no write in a cancelled one.
    private func handBack(_ entries: [OutboxEntry]) async {
        guard !entries.isEmpty else { return }
        let (store, now, logger) = (store, time.now, logger)
        await Task {
            do {
                try await store.releaseLeases(entries.map { ($0.id, $0.nextAttempt) }, now: now)
            } catch {
                logger.warning("relay could not hand back deliveries it will not send; they go out when their leases end", metadata: ["error": "\(error)"])
            }
        }.value
    }

    /// Hands each broker's deliveries to its lane (made at its first use, keyed by the region
    /// that names the broker, nil for the fallback broker) and waits for the lanes that were idle,
    /// up to `slowRegionWait`. Returns how many those delivered, and whether any lane was idle.
    private func sendThroughLanes(
        _ batch: [OutboxEntry], lanes: inout [String?: RegionLane], group: inout DiscardingTaskGroup, declared: DeclaredDestinations,
        recorder: DeliveryRecorder
    ) async -> (delivered: Int, anyIdle: Bool) {
        var sending: [RegionLane] = []
        var leftOut: [OutboxEntry] = []
        for (key, entries) in Dictionary(grouping: batch, by: laneKey(of:)) {
            let lane: RegionLane
            if let running = lanes[key] {
                lane = running
            } else {
                let broker = key.map(regions.broker(for:)) ?? regions.fallback
                lane = RegionLane(batchSize: options.batchSize, limit: options.regionBacklogLimit, time: time)
                lanes[key] = lane
                group.addTask { [lane] in
                    await lane.run { await deliver($0, on: broker, declared: declared, recorder: recorder) }
                }
            }
            let added = lane.add(entries)
            if added.wasIdle { sending.append(lane) }
            leftOut += added.full
        }
        // Its region is not read again while the lane is full.
        await handBack(leftOut)
        var delivered = 0
        let deadline = time.now + options.slowRegionWait
        for lane in sending { delivered += await lane.untilIdle(by: deadline) }
        return (delivered, !sending.isEmpty)
    }

    /// The deliveries an outbox read may take: not those of a lane that holds all it may (they
    /// stay in the outbox rather than be leased and left out of the lane). The fallback broker's
    /// regions cannot be listed: while its lane is full, only the regions with brokers of their
    /// own and room are read; nil when no lane has room.
    private func outboxFilter(_ lanes: [String?: RegionLane]) -> EndpointFilter? {
        func hasRoom(_ key: String?) -> Bool { lanes[key].map { !$0.isFull } ?? true }
        guard hasRoom(nil) else {
            let roomy = regions.brokers.keys.filter { hasRoom($0) }.map(OutboxEntry.endpoint(ofRegion:))
            return roomy.isEmpty ? nil : .only(Set(roomy))
        }
        return .excluding(Set(regions.brokers.keys.filter { !hasRoom($0) }.map(OutboxEntry.endpoint(ofRegion:))))
    }

    /// The region of a delivery whose region has a broker of its own; nil for the fallback's.
    private func laneKey(of entry: OutboxEntry) -> String? {
        guard case .mq(_, _, let region) = entry.target, regions.brokers[region] != nil else { return nil }
        return region
    }

    /// Publishes a batch of deliveries on `broker`; hands the confirmed ones to `recorder` and
    /// records failures. Returns how many were confirmed.
    func deliver(_ entries: [OutboxEntry], on broker: any MessageBroker, declared: DeclaredDestinations, recorder: DeliveryRecorder) async -> Int {
        var declaredFor: [OutboxEntry] = []
        var failedIDs: Set<String> = []
        for entry in entries where entry.nextAttempt > time.now {
            guard case .mq = entry.target else { continue }  // never read by this relay
            do {
                try await declared.ensure(entry.target, on: broker)
                declaredFor.append(entry)
            } catch is CancellationError {
                // What this round recorded as a failed attempt keeps its next attempt.
                await handBack(entries.filter { !failedIDs.contains($0.id) })
                return 0
            } catch {
                failedIDs.insert(entry.id)
                await recordFailures([(entry, "\(error)", final: (error as? AMQPError)?.code == .unencodable)])
            }
        }
        let ready = await stillHeld(declaredFor)
        var deliveredIDs: [String] = []
        var stopped: [OutboxEntry] = []
        var failed: [(OutboxEntry, AMQPError)] = []
        for (entry, result) in await publishHoldingLeases(ready, on: broker) {
            switch result {
            case .success:
                metrics.callbackAttempt(.tdmq)
                deliveredIDs.append(entry.id)
            case .failure(let error) where error.code == .cancelled:
                stopped.append(entry)  // not a failed attempt
            case .failure(let error) where error.code == .channelClosed && !Self.names(error, entry.target):
                // The broker closed the publish channel over another delivery of the batch (its
                // exchange gone, say), and this one failed with it: not its failed attempt, or
                // each retry of one bad destination would push every delivery beside it back.
                stopped.append(entry)
            case .failure(let error):
                failed.append((entry, error))
            }
        }
        // The confirmed ones first: their leases run on while the failures are written, and one
        // that ended before its delivery is recorded would be sent again.
        recorder.record(deliveredIDs)
        for (entry, error) in failed { declared.forgetIfGone(entry.target, after: error) }
        await recordFailures(failed.map { entry, error in (entry, "\(error)", final: error.code == .unencodable) })
        await handBack(stopped)
        return deliveredIDs.count
    }

    /// Whether the broker's close names `target`'s exchange or queue (`no exchange 'name'`).
    static func names(_ error: AMQPError, _ target: CallbackTarget.Destination) -> Bool {
        guard case .mq(_, let name, _) = target else { return true }
        return error.message.contains("'\(name)'")
    }

    /// The entries whose leases this relay still holds, each with at least a third of a lease
    /// left: one with less is renewed first (a compare-and-set on the end it holds), and left out
    /// if its lease ended or another relay took it meanwhile. Declaring can wait long (a broker
    /// slow or down), and a delivery whose lease ended may be another relay's by then: sending it
    /// too would send it twice. What is left out is due in the outbox, for whichever relay reads.
    func stillHeld(_ entries: [OutboxEntry]) async -> [OutboxEntry] {
        let now = time.now
        let (live, renewBefore, until) = (entries.filter { $0.nextAttempt > now }, now + options.lease / 3, now + options.lease)
        let short = Dictionary(grouping: live.filter { $0.nextAttempt < renewBefore }, by: \.nextAttempt).mapValues { $0.map(\.id) }
        let move = await store.moveLeases(short, to: until)
        if let error = move.firstError {
            logger.warning("relay could not renew the leases of deliveries it was about to send; they go out when their leases end", metadata: ["error": "\(error)", "deliveries": "\(move.unconfirmed.values.joined().count)"])
        }
        let renewed = Set(move.moved)
        return live.compactMap { entry in
            guard entry.nextAttempt < renewBefore else { return entry }
            guard renewed.contains(entry.id) else { return nil }
            var held = entry
            held.nextAttempt = until
            return held
        }
    }

    /// Publishes `entries` and renews their leases while the broker has not confirmed them all:
    /// a broker that blocks its publishers (a resource alarm) can hold confirms back for longer
    /// than a lease, and another relay would otherwise take the deliveries and send them too.
    /// Returns each entry, its `nextAttempt` the end of the lease the relay last held on it,
    /// with its result.
    func publishHoldingLeases(_ entries: [OutboxEntry], on broker: any MessageBroker) async -> [(OutboxEntry, Result<Void, AMQPError>)] {
        await withTaskGroup(of: [String: Timestamp].self) { group in
            group.addTask { await renewLeases(of: entries) }
            let results = await broker.publish(batch: entries.map(message(for:)))
            group.cancelAll()
            let leaseEnds = await group.next() ?? [:]
            guard !leaseEnds.isEmpty else { return Array(zip(entries, results)) }
            // A lease this relay lost keeps its first end: the compare-and-set of a failure
            // record on it fails either way.
            return zip(entries, results).map { entry, result in
                var held = entry
                held.nextAttempt = leaseEnds[entry.id] ?? entry.nextAttempt
                return (held, result)
            }
        }
    }

    /// Until cancelled, moves the leases this relay still holds on `entries` to a full lease
    /// from now: first once a third of the shortest one has passed (a handed-off entry may come
    /// with little left), then every third of a lease. Each move is a compare-and-set on the lease
    /// end the relay holds, so a delivery another relay took since its lease ended stays with it.
    /// Returns the lease ends it holds when cancelled by id, empty if it never renewed (those it
    /// lost are left out).
    private func renewLeases(of entries: [OutboxEntry]) async -> [String: Timestamp] {
        var held = Dictionary(grouping: entries, by: \.nextAttempt).mapValues { $0.map(\.id) }
        guard let firstEnd = held.keys.min() else { return [:] }
        var renewedOnce = false
        let left = Duration.milliseconds(firstEnd.milliseconds - time.now.milliseconds)
        var pause = max(.zero, left - options.lease * 2 / 3)
        while (try? await time.sleep(for: pause)) != nil {
            pause = options.lease / 3
            let until = time.now + options.lease
            let move = await store.moveLeases(held, to: until)
            // One whose write failed is held to the end the store last confirmed, the only one
            // no other relay's lease can be below. (Had the write committed, the relay loses the
            // lease at the next renewal and a failure then is not recorded: the delivery goes out
            // again when the new lease ends.)
            var renewed = move.unconfirmed
            if !move.moved.isEmpty { renewed[until, default: []] += move.moved }
            if let error = move.firstError, !Task.isCancelled {
                logger.warning("relay could not renew its leases; another relay may send these deliveries too when they end", metadata: ["error": "\(error)"])
            }
            let lost = held.values.reduce(0) { $0 + $1.count } - renewed.values.reduce(0) { $0 + $1.count }
            if lost > 0 {
                logger.warning("relay's lease on deliveries the broker has not confirmed yet ended; another relay may send them too", metadata: ["deliveries": "\(lost)"])
            }
            held = renewed
            renewedOnce = true
        }
        guard renewedOnce else { return [:] }
        var leaseEnds: [String: Timestamp] = [:]
        for (end, ids) in held {
            for id in ids { leaseEnds[id] = end }
        }
        return leaseEnds
    }

    func message(for entry: OutboxEntry) -> AMQPOutgoingMessage {
        var properties = AMQPProperties(contentType: entry.contentType, messageID: entry.id, persistent: true)
        properties.headers = [entry.subjectHeader.name: .string(entry.subjectHeader.value), "x-ci-event": .string(entry.event.rawValue)]
        switch entry.target {
        case .mq(.topic, let name, _):
            return AMQPOutgoingMessage(exchange: name, routingKey: entry.routingKey, body: entry.body, properties: properties)
        case .mq(.queue, let name, _):
            // Mandatory: if the queue was deleted, the broker returns the message, and the retry
            // declares it again.
            return AMQPOutgoingMessage(exchange: "", routingKey: name, body: entry.body, properties: properties, mandatory: true)
        case .url:
            preconditionFailure("the TDMQ relay only reads TDMQ deliveries")
        }
    }

    /// Records failed attempts in one store call, which also ends the relay's leases: each
    /// delivery is due again at its next attempt, for any relay. `entry.nextAttempt` is the end
    /// of the lease the relay holds: a delivery another relay took since that lease ended is left
    /// to it. A `final` one (to a name stored before names were checked, which cannot be put in
    /// frames) fails the same way every time: dead at once, not after the whole schedule.
    func recordFailures(_ failures: [(entry: OutboxEntry, error: String, final: Bool)]) async {
        guard !failures.isEmpty else { return }
        let now = time.now
        let attempts = failures.map { entry, error, final in
            FailedAttempt(
                id: entry.id, error: error, nextAttempt: final ? nil : options.retrySchedule.nextAttempt(after: entry.attempts + 1, now: now),
                leaseEnd: entry.nextAttempt
            )
        }
        for _ in failures { metrics.callbackAttempt(.tdmq, failed: true) }
        let recorded: Set<String>
        do {
            recorded = try await store.markAttemptsFailed(attempts)
        } catch {
            logger.error("relay could not record failed deliveries; they are due again when their leases end", metadata: [
                "event.ids": "\(attempts.map(\.id))", "error": "\(error)",
            ])
            return
        }
        for ((entry, error, _), attempt) in zip(failures, attempts) {
            guard recorded.contains(entry.id) else {
                logger.info("a failed delivery was not recorded: it was delivered or taken by another relay meanwhile", metadata: ["event.id": "\(entry.id)"])
                continue
            }
            if attempt.nextAttempt == nil {
                metrics.callbackDied(.tdmq)
                logger.error("callback delivery is dead after its last attempt", metadata: ["event.id": "\(entry.id)", "job.id": "\(entry.jobID)", "error": "\(error)"])
            } else {
                logger.warning("callback delivery failed; it will be retried", metadata: ["event.id": "\(entry.id)", "error": "\(error)"])
            }
        }
    }
}

/// Queues and exchanges the relay has declared, so each is declared once, not before every
/// publish. The connection does not declare them again after a reconnect (a rule or job may name
/// any number): one found gone since (a publish returned, or refused with 404) is forgotten here
/// and declared again before its next attempt.
final class DeclaredDestinations: Sendable {
    private let names = Mutex<Set<String>>([])
    private let limit: Int

    init(limit: Int = 10_000) {
        self.limit = limit
    }

    func ensure(_ target: CallbackTarget.Destination, on broker: any MessageBroker) async throws {
        guard let key = Self.key(target), case .mq(let mode, let name, _) = target else { return }
        if names.withLock({ $0.contains(key) }) { return }
        do {
            switch mode {
            case .topic: try await broker.declare(AMQPTopology(exchanges: [AMQPExchange(name: name, type: "topic", durable: true)]), remember: false)
            case .queue: try await broker.declare(AMQPTopology(queues: [AMQPQueue(name: name, durable: true)]), remember: false)
            }
        } catch let error as AMQPError where error.replyCode == 406 {
            // PRECONDITION_FAILED: it exists with other settings than these (a quorum queue, a
            // TTL, an exchange of another type). It is its owner's, and is published to as it is.
        }
        names.withLock { names in
            if names.count >= limit { names.removeAll() }
            names.insert(key)
        }
    }

    var count: Int { names.withLock { $0.count } }

    /// After a failed publish to `target`: if its queue or exchange is gone (deleted since it
    /// was declared: the message was returned, or refused with 404), the next `ensure` declares
    /// it again.
    func forgetIfGone(_ target: CallbackTarget.Destination, after error: AMQPError) {
        if error.code == .returned || error.replyCode == 404 { forget(target) }
    }

    /// Makes the next `ensure` of `target` declare it again.
    func forget(_ target: CallbackTarget.Destination) {
        guard let key = Self.key(target) else { return }
        _ = names.withLock { $0.remove(key) }
    }

    private static func key(_ target: CallbackTarget.Destination) -> String? {
        guard case .mq(let mode, let name, let region) = target else { return nil }
        return "\(region)/\(mode.rawValue)/\(name)"
    }
}

/// Records confirmed deliveries in the store in batches, beside the relay's publishing: what
/// was confirmed while a write was in flight goes into the next write. Until a delivery is
/// recorded its lease keeps other reads from returning it; a write that fails is tried again
/// after a pause, because a delivery left unrecorded is sent again once its lease ends (which
/// nothing renews here: a store away for longer than that lets it go out twice).
final class DeliveryRecorder: Sendable {
    private struct State {
        var pending: [String] = []
        var stopping = false
    }

    private let state = Mutex(State())
    private let wakeup: Wakeup
    private let store: any JobStore
    private let time: any TimeSource
    private let linger: Duration
    private let pollInterval: Duration
    private let logger: Logger

    /// `linger`: how long to wait for more confirmed deliveries before a write; `pollInterval`:
    /// how long to wait after a failed write before the next, and the longest wait for work
    /// without a signal.
    init(store: any JobStore, time: any TimeSource, linger: Duration, pollInterval: Duration, logger: Logger) {
        self.store = store
        self.time = time
        self.linger = linger
        self.pollInterval = pollInterval
        self.logger = logger
        wakeup = Wakeup(time: time)
    }

    func record(_ ids: [String]) {
        guard !ids.isEmpty else { return }
        state.withLock { $0.pending.append(contentsOf: ids) }
        wakeup.signal()
    }

    /// Makes `run` return once everything recorded so far is written.
    func stop() {
        state.withLock { $0.stopping = true }
        wakeup.signal()
    }

    func run() async {
        while true {
            let (ids, stopping) = state.withLock { state in
                defer { state.pending = [] }
                return (state.pending, state.stopping)
            }
            if ids.isEmpty {
                if stopping || Task.isCancelled { return }
                await wakeup.wait(upTo: pollInterval)
                // The events are out already: waiting a little to record more at once costs no
                // latency anyone sees, and saves write transactions.
                if linger > .zero && !state.withLock({ $0.stopping }) { try? await time.sleep(for: linger) }
                continue
            }
            do {
                try await store.markDelivered(ids, at: time.now)
            } catch is CancellationError {
                // Kept for `flush`, which writes them outside the cancelled task.
                state.withLock { $0.pending.insert(contentsOf: ids, at: 0) }
                return
            } catch {
                // Kept, so that a store that is only busy or briefly away does not make the
                // deliveries go out again; a relay that stops meanwhile tries once more in `flush`
                // and otherwise leaves them to be sent again (same message-id) when their leases end.
                logger.error("relay could not record deliveries; it will try again", metadata: ["error": "\(error)", "deliveries": "\(ids.count)"])
                let stopping = state.withLock { state in
                    state.pending.insert(contentsOf: ids, at: 0)
                    return state.stopping
                }
                if stopping || Task.isCancelled { return }
                try? await time.sleep(for: pollInterval)
            }
        }
    }

    /// Writes what is still to be recorded (after `run` returned; call from a task that is not
    /// cancelled).
    func flush() async {
        let ids = state.withLock { state in
            defer { state.pending = [] }
            return state.pending
        }
        guard !ids.isEmpty else { return }
        do {
            try await store.markDelivered(ids, at: time.now)
        } catch {
            logger.error("relay could not record deliveries", metadata: ["error": "\(error)"])
        }
    }
}
