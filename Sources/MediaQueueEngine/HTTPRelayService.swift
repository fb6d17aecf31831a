public import Logging
public import MediaQueueCore
public import MediaQueueHTTPClient
import Synchronization
public import ServiceLifecycle

/// Settings of the HTTP callback relay.
public struct HTTPRelayOptions: Sendable {
    /// Most deliveries read from the outbox at once.
    public var batchSize: Int
    /// How long the relay sleeps when nothing is due (a finished request or a finished job wakes it sooner).
    public var pollInterval: Duration
    /// Delays between attempts; after the last one a delivery is dead.
    public var retrySchedule: RetrySchedule
    /// Requests in flight to one endpoint (`host:port`) at most, so that a slow or dead endpoint
    /// holds only its own slots while deliveries to every other endpoint go on.
    public var maxPerEndpoint: Int
    /// Requests in flight over all endpoints at most.
    public var maxInFlight: Int
    /// A `Retry-After` longer than this is cut to it.
    public var maxRetryAfter: Duration
    /// Deliveries taken from the outbox ahead of sending, per endpoint, as a multiple of
    /// `maxPerEndpoint`: the store is read and written once per batch, not once per request.
    public var prefetch: Int
    /// Taken-ahead deliveries over all endpoints at most.
    public var maxPrefetched: Int
    /// While requests are in flight, results are gathered this long before they are written,
    /// so that one transaction records many of them.
    public var coalesce: Duration
    /// A delivery taken from the outbox is leased for the time it may wait and be sent (the
    /// client's total timeout times `prefetch + 1`) plus this: if the process dies meanwhile, the
    /// delivery is due again when the lease ends.
    public var leaseMargin: Duration
    /// Outbox reads per poll-timer round, each leaving out the endpoints whose queue is full,
    /// so a backlog for a few endpoints cannot hide the others.
    public var readRounds: Int

    /// Deliveries queued per endpoint at most (`maxPerEndpoint × prefetch`).
    var queueLimit: Int { maxPerEndpoint * max(1, prefetch) }

    public init(
        batchSize: Int = 500, pollInterval: Duration = .milliseconds(250), retrySchedule: RetrySchedule = .standard,
        maxPerEndpoint: Int = 8, maxInFlight: Int = 512, maxRetryAfter: Duration = .seconds(86_400), prefetch: Int = 4,
        maxPrefetched: Int = 10_000, coalesce: Duration = .milliseconds(2), leaseMargin: Duration = .seconds(10), readRounds: Int = 4
    ) {
        self.readRounds = readRounds
        self.batchSize = batchSize
        self.pollInterval = pollInterval
        self.retrySchedule = retrySchedule
        self.maxPerEndpoint = maxPerEndpoint
        self.maxInFlight = maxInFlight
        self.maxRetryAfter = maxRetryAfter
        self.prefetch = prefetch
        self.maxPrefetched = maxPrefetched
        self.coalesce = coalesce
        self.leaseMargin = leaseMargin
    }
}

/// Delivers `Url`-type callbacks from the outbox as signed HTTP POSTs (Standard Webhooks).
///
/// - Success is a 2xx answer only. `410 Gone` makes the delivery dead at once. Anything else
///   (another status, a timeout, a refused address, a failed connection) is retried on the
///   schedule, with jitter, or after the server's `Retry-After`; after the last attempt the
///   delivery is dead (`mediaqueue callbacks dead`, `… redrive`).
/// - Headers: `Content-Type` of the body, `webhook-id` (the event id, the same on every attempt),
///   `webhook-timestamp` (this attempt), `webhook-signature` (`v1,` HMAC-SHA256 with the
///   bucket's secret), and `x-ci-job-id` (`x-ci-run-id` for a WorkflowFinish), `x-ci-event` as
///   on TDMQ messages.
/// - At most `maxPerEndpoint` requests per `host:port`, each sent by a sender task that works
///   through its endpoint's queue. An endpoint's queue holds at most `maxPerEndpoint × prefetch`
///   deliveries; endpoints with a full queue are left out of the outbox query, so a backlog (or
///   a dead endpoint) never hides deliveries to others.
/// - Deliveries are taken from the outbox in batches, leased, and marked only after the answer
///   (results are written in batches too): a crash repeats a delivery (same `webhook-id`) when
///   its lease ends, and never loses one.
public struct HTTPRelayService: Service {
    let store: any JobStore
    let client: HTTPClient
    let options: HTTPRelayOptions
    let time: any TimeSource
    let wakeup: Wakeup
    let signers: CallbackSigners
    let metrics: EngineMetrics
    let logger: Logger

    public init(
        store: any JobStore, client: HTTPClient, options: HTTPRelayOptions, time: any TimeSource = SystemTimeSource(), wakeup: Wakeup,
        signers: CallbackSigners? = nil, metrics: EngineMetrics = .disabled, logger: Logger
    ) {
        self.signers = signers ?? CallbackSigners(store: store, time: time)
        self.metrics = metrics
        self.store = store
        self.client = client
        self.options = options
        self.time = time
        self.wakeup = wakeup
        self.logger = logger
    }

    public func run() async throws {
        let flights = Flights()
        let queueLimit = options.queueLimit
        await withDiscardingTaskGroup { group in
            var lastFullRead: Timestamp?
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                await record(flights.takeFinished(), retryingInto: flights)
                // The outbox is read when there is room for what it holds: when idle, when an
                // endpoint's queue is half empty, and on the poll timer, which also looks past
                // full endpoints for others (new endpoints, retries). Reading after every finished
                // request, past full endpoints each time, cost a scan of the backlog per request.
                let fullRead = lastFullRead.map { time.now >= $0 + options.pollInterval } ?? true
                if fullRead || flights.queuedTotal == 0 || flights.hasHungryEndpoint(queueLimit) {
                    if fullRead { lastFullRead = time.now }
                    do {
                        try await takeDue(flights, lookPastFullEndpoints: fullRead || flights.queuedTotal == 0)
                    } catch {
                        logger.error("HTTP relay could not read the outbox", metadata: ["error": "\(error)"])
                    }
                }
                startSenders(flights, group: &group)
                await wakeup.wait(upTo: options.pollInterval)
                if flights.isBusy { try? await time.sleep(for: options.coalesce) }
            }
            // Senders finish the request they are in (cancelled with the task, or answered on a
            // graceful shutdown) and take no more.
            flights.stop()
        }
        // Results, and the deliveries taken but never sent, go back to the store outside the
        // (possibly cancelled) task, so the store takes them.
        let finished = flights.takeFinished()
        let unsent = flights.takeUnsent()
        await Task {
            await record(finished)
            // Due again at once rather than when their leases end.
            try? await store.releaseLeases(unsent.map { ($0.entry.id, $0.leaseUntil) }, now: time.now)
        }.value
    }

    /// Takes due deliveries from the outbox, leased, into the endpoints' queues. With
    /// `lookPastFullEndpoints`, a few reads, each leaving out endpoints whose queue is full, so a
    /// backlog for one endpoint cannot hide the others (such a read walks past that backlog, so
    /// it is done on the poll timer, not on every refill).
    func takeDue(_ flights: Flights, lookPastFullEndpoints: Bool = true) async throws {
        let queueLimit = options.queueLimit
        for round in 0..<max(1, options.readRounds) {
            if round > 0 && !lookPastFullEndpoints { return }
            let room = options.maxPrefetched - flights.queuedTotal
            guard room > 0 else { return }
            let now = time.now
            // A refill reads about what fits; rows beyond the endpoint's room would be decoded
            // only to be dropped.
            let limit = min(options.batchSize, room, lookPastFullEndpoints ? options.batchSize : queueLimit)
            let due = try await store.dueOutbox(.url, now: now, limit: limit, excludingEndpoints: flights.full(queueLimit))
            let chosen = flights.select(due, queueLimit: queueLimit)
            guard !chosen.isEmpty else { return }
            let leaseUntil = now + client.configuration.timeout * (max(1, options.prefetch) + 1) + options.leaseMargin
            // Taken by another relay since the read: not ours to send.
            let leased = Set(try await store.deferOutbox(chosen.map(\.id), dueBy: now, until: leaseUntil))
            flights.enqueue(chosen.filter { leased.contains($0.id) }.map { Flights.Leased(entry: $0, leaseUntil: leaseUntil) })
            if due.count < limit { return }
        }
    }

    /// Starts a sender per free slot of each endpoint with queued deliveries. A sender sends its
    /// endpoint's deliveries one after the other until the queue is empty; while all slots are
    /// taken, it moves on to an endpoint that waits with none.
    func startSenders(_ flights: Flights, group: inout DiscardingTaskGroup) {
        let maxTotal = options.maxInFlight
        for endpoint in flights.newSenders(maxPerEndpoint: options.maxPerEndpoint, maxTotal: maxTotal) {
            group.addTask {
                var endpoint = endpoint
                while let item = flights.next(&endpoint, maxTotal: maxTotal) {
                    let outcome = await attempt(item.entry, leaseUntil: item.leaseUntil)
                    if outcome.isAttempt { metrics.callbackAttempt(.url, failed: outcome != .delivered) }
                    flights.finish(Flights.Finished(entry: item.entry, outcome: outcome, leaseUntil: item.leaseUntil))
                    wakeup.signal()
                }
            }
        }
    }

    /// One POST of one delivery, if its lease (ending at `leaseUntil`) outlasts the request.
    func attempt(_ entry: OutboxEntry, leaseUntil: Timestamp) async -> HTTPDeliveryOutcome {
        guard case .url(let url) = entry.target else { return .gone("not a URL delivery") }
        let timestamp = time.now.seconds
        let signature: String
        do {
            signature = try await signers.signature(bucket: entry.bucket, id: entry.id, timestamp: timestamp, body: entry.body)
        } catch let error as SigningSecretError {
            // A stored secret that cannot be used fails the same way every time: attempts, so
            // that the delivery ends dead rather than going round for ever.
            return .retry("the bucket's signing secret cannot be used: \(error)", retryAfter: nil)
        } catch {
            return .notSent("could not read the bucket's signing secret: \(error)")
        }
        // A delivery that waited in its endpoint's queue (or for its secret) until its lease could
        // end during the request, or before its result is written (the margin), is not sent:
        // another relay may take it then and send it too, and the result would not be recorded.
        // Given back, it is due at once for whichever relay reads next.
        guard time.now + client.configuration.timeout + options.leaseMargin <= leaseUntil else { return .cancelled }
        let request = HTTPRequest(url: url, headers: [
            HTTPHeader("Content-Type", entry.contentType),
            HTTPHeader("webhook-id", entry.id),
            HTTPHeader("webhook-timestamp", String(timestamp)),
            HTTPHeader("webhook-signature", signature),
            HTTPHeader(entry.subjectHeader.name, entry.subjectHeader.value),
            HTTPHeader("x-ci-event", entry.event.rawValue),
        ], body: entry.body)
        do {
            return HTTPDeliveryOutcome(response: try await client.post(request), now: time.now)
        } catch is CancellationError {
            return .cancelled
        } catch {
            return .retry("\(error)", retryAfter: nil)
        }
    }

    /// Writes the results of finished requests to the store. With `retryingInto`, what the
    /// store refuses goes back into `flights` and is written with the next results, while its
    /// lease lasts (a delivery left unrecorded would be sent again when it ends; after that, the
    /// lease decides). Deliveries and failed attempts are written in one call each; when the
    /// first is refused the second waits for the next round with it (the store is likely down).
    func record(_ finished: [Flights.Finished], retryingInto flights: Flights? = nil) async {
        guard !finished.isEmpty else { return }
        let now = time.now
        var unrecorded: [Flights.Finished] = []
        var storeError: (any Error)?
        let delivered = finished.filter { $0.outcome == .delivered }
        do {
            if !delivered.isEmpty { try await store.markDelivered(delivered.map(\.entry.id), at: now) }
        } catch {
            storeError = error
            unrecorded += delivered
        }
        var released: [Flights.Finished] = []
        var failed: [(item: Flights.Finished, attempt: FailedAttempt)] = []
        for item in finished {
            switch item.outcome {
            case .delivered:
                continue
            case .cancelled:
                released.append(item)
            case .notSent(let reason):
                logger.warning("callback not sent; it goes out when its lease ends", metadata: ["event.id": "\(item.entry.id)", "reason": "\(reason)"])
            case .gone(let error), .retry(let error, _):
                let attempt = FailedAttempt(id: item.entry.id, error: error, nextAttempt: nextAttempt(after: item, now: now), leaseEnd: item.leaseUntil)
                failed.append((item, attempt))
            }
        }
        if storeError != nil {
            unrecorded += failed.map(\.item)
        } else if !failed.isEmpty {
            do {
                let recorded = try await store.markAttemptsFailed(failed.map(\.attempt))
                for (item, attempt) in failed {
                    if recorded.contains(item.entry.id) {
                        report(item, error: attempt.error, dead: attempt.nextAttempt == nil)
                    } else {
                        logger.info("a failed delivery was not recorded: it was delivered or taken by another relay meanwhile", metadata: ["event.id": "\(item.entry.id)"])
                    }
                }
            } catch {
                storeError = error
                unrecorded += failed.map(\.item)
            }
        }
        // Not sent or not answered (a shutdown, a lease about to end): due again at once rather
        // than when their leases end.
        try? await store.releaseLeases(released.map { ($0.entry.id, $0.leaseUntil) }, now: now)
        guard let storeError else { return }
        let kept = flights == nil ? [] : unrecorded.filter { $0.leaseUntil > now }
        flights?.retry(kept)
        logger.error(
            kept.isEmpty
                ? "HTTP relay could not record the results of its requests; their deliveries go out again when their leases end"
                : "HTTP relay could not record the results of its requests; it will try again",
            metadata: ["error": "\(storeError)", "results": "\(unrecorded.count)"]
        )
    }

    /// When a failed attempt's delivery is tried next; nil: it is dead. A `Retry-After` can only
    /// put it later than the schedule: taken as it is, `0` (or a date past on a skewed clock) spent
    /// every attempt within seconds of a short outage. The schedule's jitter goes on top of it, so
    /// that a backlog told the same delay does not come back at one instant.
    private func nextAttempt(after item: Flights.Finished, now: Timestamp) -> Timestamp? {
        guard case .retry(_, let retryAfter) = item.outcome else { return nil }
        let schedule = options.retrySchedule
        return schedule.nextAttempt(after: item.entry.attempts + 1, now: now).map { scheduled in
            guard let retryAfter else { return scheduled }
            return max(scheduled, now + schedule.jittered(min(retryAfter, options.maxRetryAfter)))
        }
    }

    /// Logs a failed attempt the store recorded, and counts the delivery if it is dead.
    private func report(_ item: Flights.Finished, error: String, dead: Bool) {
        let entry = item.entry
        if dead { metrics.callbackDied(.url) }
        let metadata: Logger.Metadata = [
            "event.id": "\(entry.id)", "job.id": "\(entry.jobID)", "callback.endpoint": "\(entry.endpoint)", "error": "\(error)",
        ]
        if dead {
            logger.error("callback delivery is dead", metadata: metadata.merging(["attempts": "\(entry.attempts + 1)"]) { $1 })
        } else {
            logger.warning("callback delivery failed; it will be retried", metadata: metadata)
        }
    }
}

/// What one attempt means for its delivery.
public enum HTTPDeliveryOutcome: Sendable, Hashable {
    /// 2xx.
    case delivered
    /// Try again, on the schedule or after the server's `Retry-After`.
    case retry(String, retryAfter: Duration?)
    /// 410 Gone: the receiver says it will never want it.
    case gone(String)
    /// Not an attempt: the relay stopped before the answer, or did not send because the
    /// delivery's lease could end first. Its lease is given back.
    case cancelled
    /// Not an attempt either: not sent, because the bucket's signing secret could not be read
    /// (the store out of reach). It keeps its lease, and goes out again when that ends.
    case notSent(String)

    /// Whether the receiver was asked.
    var isAttempt: Bool {
        switch self {
        case .delivered, .retry, .gone: true
        case .cancelled, .notSent: false
        }
    }

    /// Judges a response: 2xx delivered, 410 gone, anything else (3xx included: redirects are
    /// not followed) retried, after `Retry-After` when the server sent one.
    public init(response: HTTPResponse, now: Timestamp) {
        switch response.status {
        case 200..<300:
            self = .delivered
        case 410:
            self = .gone("HTTP 410 Gone")
        default:
            let retryAfter = response.header("Retry-After").flatMap { RetryAfter.delay($0, now: now) }
            var reason = "HTTP \(response.status)"
            // PostgreSQL refuses text with NUL: a binary error page must not make the attempt unrecordable.
            let snippet = String(decoding: response.body.prefix(200).filter { $0 != 0 }, as: UTF8.self).trimmed
            if !snippet.isEmpty { reason += ": \(snippet)" }
            self = .retry(reason, retryAfter: retryAfter)
        }
    }
}

/// Deliveries taken from the outbox, per endpoint: queued, being sent by the endpoint's
/// senders, and finished, waiting to be recorded.
final class Flights: Sendable {
    struct Leased: Sendable {
        var entry: OutboxEntry
        var leaseUntil: Timestamp
    }

    struct Finished: Sendable {
        var entry: OutboxEntry
        var outcome: HTTPDeliveryOutcome
        var leaseUntil: Timestamp
    }

    private struct State {
        var queues: [String: [Leased]] = [:]
        var ids: Set<String> = []
        var queuedTotal = 0
        var senders: [String: Int] = [:]
        var sendersTotal = 0
        var finished: [Finished] = []
        var stopped = false
    }

    private let state = Mutex(State())

    var queuedTotal: Int { state.withLock { $0.queuedTotal } }

    /// Whether requests are in flight (results will come in soon).
    var isBusy: Bool { state.withLock { $0.sendersTotal > 0 } }

    /// Whether an endpoint's queue is down to half of `queueLimit` (time to take more).
    func hasHungryEndpoint(_ queueLimit: Int) -> Bool {
        state.withLock { $0.queues.values.contains { $0.count <= queueLimit / 2 } }
    }

    /// Endpoints whose queue holds `queueLimit` deliveries.
    func full(_ queueLimit: Int) -> Set<String> {
        state.withLock { Set($0.queues.filter { $0.value.count >= queueLimit }.keys) }
    }

    /// What of `due` fits in the endpoints' queues (and is not already held).
    func select(_ due: [OutboxEntry], queueLimit: Int) -> [OutboxEntry] {
        state.withLock { state in
            var counts: [String: Int] = [:]
            return due.filter { entry in
                guard !state.ids.contains(entry.id) else { return false }
                let endpoint = entry.endpoint
                let count = counts[endpoint] ?? state.queues[endpoint]?.count ?? 0
                guard count < queueLimit else { return false }
                counts[endpoint] = count + 1
                return true
            }
        }
    }

    func enqueue(_ leased: [Leased]) {
        state.withLock { state in
            for item in leased where state.ids.insert(item.entry.id).inserted {
                state.queues[item.entry.endpoint, default: []].append(item)
                state.queuedTotal += 1
            }
        }
    }

    /// Endpoints to start a sender for, one element per sender, counted as running.
    func newSenders(maxPerEndpoint: Int, maxTotal: Int) -> [String] {
        state.withLock { state in
            guard !state.stopped else { return [] }
            var started: [String] = []
            for (endpoint, queue) in state.queues.sorted(by: { $0.key < $1.key }) {
                let running = state.senders[endpoint, default: 0]
                // Running senders may be in the middle of a request: a free slot takes a queued delivery now.
                let wanted = min(maxPerEndpoint - running, queue.count, maxTotal - state.sendersTotal)
                guard wanted > 0 else { continue }
                state.senders[endpoint] = running + wanted
                state.sendersTotal += wanted
                started += Array(repeating: endpoint, count: wanted)
            }
            return started
        }
    }

    /// The next delivery for a sender of `endpoint`; nil (and the sender is done) when there is
    /// none or the relay stops. While all `maxTotal` slots are taken and another endpoint has
    /// deliveries queued but no sender, the sender's slot moves to that endpoint (`endpoint` is
    /// changed): a backlog for some endpoints would otherwise keep every slot for as long as it
    /// lasts, and the others' deliveries would wait for it.
    func next(_ endpoint: inout String, maxTotal: Int) -> Leased? {
        state.withLock { state in
            if state.sendersTotal >= maxTotal, !state.stopped,
               let waiting = state.queues.first(where: { $0.key != endpoint && !$0.value.isEmpty && state.senders[$0.key] == nil })?.key {
                let left = state.senders[endpoint, default: 1] - 1
                state.senders[endpoint] = left > 0 ? left : nil
                if state.queues[endpoint]?.isEmpty == true { state.queues[endpoint] = nil }
                state.senders[waiting] = 1
                endpoint = waiting
            }
            if !state.stopped, var queue = state.queues[endpoint], !queue.isEmpty {
                let item = queue.removeFirst()
                state.queues[endpoint] = queue
                state.queuedTotal -= 1
                return item
            }
            let left = state.senders[endpoint, default: 1] - 1
            state.senders[endpoint] = left > 0 ? left : nil
            state.sendersTotal -= 1
            if state.queues[endpoint]?.isEmpty == true { state.queues[endpoint] = nil }
            return nil
        }
    }

    func finish(_ result: Finished) {
        state.withLock { state in
            state.ids.remove(result.entry.id)
            state.finished.append(result)
        }
    }

    /// Results the store refused, written again with the next ones.
    func retry(_ unrecorded: [Finished]) {
        guard !unrecorded.isEmpty else { return }
        state.withLock { $0.finished.insert(contentsOf: unrecorded, at: 0) }
    }

    func takeFinished() -> [Finished] {
        state.withLock { state in
            defer { state.finished = [] }
            return state.finished
        }
    }

    /// Senders take nothing more.
    func stop() {
        state.withLock { $0.stopped = true }
    }

    /// Queued deliveries no sender took.
    func takeUnsent() -> [Leased] {
        state.withLock { state in
            defer {
                state.queues = [:]
                state.queuedTotal = 0
            }
            return state.queues.values.flatMap { $0 }
        }
    }
}
