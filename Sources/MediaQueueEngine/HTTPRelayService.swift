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
    /// A delivery being sent is leased for the client's total timeout plus this: if the process
    /// dies meanwhile, the delivery is due again when the lease ends.
    public var leaseMargin: Duration

    public init(
        batchSize: Int = 500, pollInterval: Duration = .milliseconds(250), retrySchedule: RetrySchedule = .standard,
        maxPerEndpoint: Int = 8, maxInFlight: Int = 512, maxRetryAfter: Duration = .seconds(86_400), leaseMargin: Duration = .seconds(10)
    ) {
        self.batchSize = batchSize
        self.pollInterval = pollInterval
        self.retrySchedule = retrySchedule
        self.maxPerEndpoint = maxPerEndpoint
        self.maxInFlight = maxInFlight
        self.maxRetryAfter = maxRetryAfter
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
///   bucket's secret), and `x-ci-job-id`, `x-ci-event` as on TDMQ messages.
/// - At most `maxPerEndpoint` requests per `host:port`; due deliveries to endpoints at their
///   limit are left out of the outbox query, so they never hide deliveries to others.
/// - A delivery is leased while it is sent and marked only after the answer: a crash repeats it
///   (same `webhook-id`) and never loses it.
public struct HTTPRelayService: Service {
    let store: any JobStore
    let client: HTTPClient
    let options: HTTPRelayOptions
    let time: any TimeSource
    let wakeup: Wakeup
    let logger: Logger

    public init(store: any JobStore, client: HTTPClient, options: HTTPRelayOptions, time: any TimeSource = SystemTimeSource(), wakeup: Wakeup, logger: Logger) {
        self.store = store
        self.client = client
        self.options = options
        self.time = time
        self.wakeup = wakeup
        self.logger = logger
    }

    public func run() async throws {
        let flights = Flights()
        let signers = Signers(store: store)
        await withDiscardingTaskGroup { group in
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                await record(flights.takeFinished())
                do {
                    try await startDue(flights, signers: signers, group: &group)
                } catch {
                    logger.error("HTTP relay could not read the outbox", metadata: ["error": "\(error)"])
                }
                await wakeup.wait(upTo: options.pollInterval)
            }
        }
        // Every request has ended (answered, timed out, or cancelled with the task). Their
        // results are recorded outside the (possibly cancelled) task so the store takes them.
        let finished = flights.takeFinished()
        await Task { await record(finished) }.value
    }

    /// Starts what is due, endpoint limits allowing: a few reads, each leaving out the
    /// endpoints that are full, so a backlog for one endpoint cannot fill every read.
    func startDue(_ flights: Flights, signers: Signers, group: inout DiscardingTaskGroup) async throws {
        for _ in 0..<4 {
            let free = options.maxInFlight - flights.total
            guard free > 0 else { return }
            let now = time.now
            let limit = min(options.batchSize, free)
            let due = try await store.dueOutbox(.url, now: now, limit: limit, excludingEndpoints: flights.full(options.maxPerEndpoint))
            let chosen = flights.reserve(due, maxPerEndpoint: options.maxPerEndpoint, maxTotal: options.maxInFlight)
            guard !chosen.isEmpty else { return }
            let leaseUntil = now + client.configuration.timeout + options.leaseMargin
            let leased: Set<String>
            do {
                leased = Set(try await store.deferOutbox(chosen.map(\.id), dueBy: now, until: leaseUntil))
            } catch {
                flights.unreserve(chosen)
                throw error
            }
            // Taken by another relay since the read: not ours to send.
            flights.unreserve(chosen.filter { !leased.contains($0.id) })
            for entry in chosen where leased.contains(entry.id) {
                group.addTask {
                    let outcome = await attempt(entry, signers: signers)
                    flights.finish(Flights.Finished(entry: entry, outcome: outcome, leaseUntil: leaseUntil))
                    wakeup.signal()
                }
            }
            if due.count < limit { return }
        }
    }

    /// One POST of one delivery.
    func attempt(_ entry: OutboxEntry, signers: Signers) async -> HTTPDeliveryOutcome {
        guard case .url(let url) = entry.target else { return .gone("not a URL delivery") }
        let signer: WebhookSigner
        do {
            signer = try await signers.signer(bucket: entry.bucket)
        } catch {
            return .retry("could not read the bucket's signing secret: \(error)", retryAfter: nil)
        }
        let timestamp = time.now.seconds
        let request = HTTPRequest(url: url, headers: [
            HTTPHeader("Content-Type", entry.contentType),
            HTTPHeader("webhook-id", entry.id),
            HTTPHeader("webhook-timestamp", String(timestamp)),
            HTTPHeader("webhook-signature", signer.signature(id: entry.id, timestamp: timestamp, body: entry.body)),
            HTTPHeader("x-ci-job-id", entry.jobID.rawValue),
            HTTPHeader("x-ci-event", NotifyConfig.Event.taskFinish.rawValue),
        ], body: entry.body)
        do {
            return HTTPDeliveryOutcome(response: try await client.post(request), now: time.now)
        } catch is CancellationError {
            return .cancelled
        } catch {
            return .retry("\(error)", retryAfter: nil)
        }
    }

    /// Writes the results of finished requests to the store.
    func record(_ finished: [Flights.Finished]) async {
        guard !finished.isEmpty else { return }
        let now = time.now
        let delivered = finished.filter { $0.outcome == .delivered }.map(\.entry.id)
        do {
            try await store.markDelivered(delivered, at: now)
        } catch {
            // Delivered but not recorded: sent again when the lease ends, with the same webhook-id.
            logger.error("HTTP relay could not record deliveries", metadata: ["error": "\(error)"])
        }
        var released: [String] = []
        for item in finished {
            let entry = item.entry
            let metadata: Logger.Metadata = ["event.id": "\(entry.id)", "job.id": "\(entry.jobID)", "callback.endpoint": "\(entry.endpoint)"]
            let error: String
            let next: Timestamp?
            switch item.outcome {
            case .delivered:
                continue
            case .cancelled:
                released.append(entry.id)
                continue
            case .gone(let reason):
                error = reason
                next = nil
            case .retry(let reason, let retryAfter):
                error = reason
                next = options.retrySchedule.nextAttempt(after: entry.attempts + 1, now: now).map { scheduled in
                    retryAfter.map { now + min($0, options.maxRetryAfter) } ?? scheduled
                }
            }
            if next == nil {
                logger.error("callback delivery is dead", metadata: metadata.merging(["error": "\(error)", "attempts": "\(entry.attempts + 1)"]) { $1 })
            } else {
                logger.warning("callback delivery failed; it will be retried", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            }
            do {
                try await store.markAttemptFailed(entry.id, error: error, nextAttempt: next)
            } catch {
                logger.error("HTTP relay could not record a failed delivery", metadata: ["error": "\(error)"])
            }
        }
        if !released.isEmpty {
            // Interrupted by shutdown: due again at once rather than when the lease ends.
            let leaseEnd = finished.map(\.leaseUntil).max() ?? now
            _ = try? await store.deferOutbox(released, dueBy: leaseEnd, until: now)
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
    /// The relay stopped before the answer; not an attempt.
    case cancelled

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
            let snippet = String(decoding: response.body.prefix(200), as: UTF8.self).trimmedSpaces
            if !snippet.isEmpty { reason += ": \(snippet)" }
            self = .retry(reason, retryAfter: retryAfter)
        }
    }
}

/// Requests in flight, per endpoint, and the results waiting to be recorded.
final class Flights: Sendable {
    struct Finished: Sendable {
        var entry: OutboxEntry
        var outcome: HTTPDeliveryOutcome
        var leaseUntil: Timestamp
    }

    private struct State {
        var perEndpoint: [String: Int] = [:]
        var ids: Set<String> = []
        var finished: [Finished] = []
    }

    private let state = Mutex(State())

    var total: Int { state.withLock { $0.ids.count } }

    /// Endpoints with `maxPerEndpoint` requests in flight.
    func full(_ maxPerEndpoint: Int) -> Set<String> {
        state.withLock { Set($0.perEndpoint.filter { $0.value >= maxPerEndpoint }.keys) }
    }

    /// Takes from `due`, in order, what the limits allow, and counts it as in flight.
    func reserve(_ due: [OutboxEntry], maxPerEndpoint: Int, maxTotal: Int) -> [OutboxEntry] {
        state.withLock { state in
            var chosen: [OutboxEntry] = []
            for entry in due where state.ids.count < maxTotal && !state.ids.contains(entry.id) {
                let endpoint = entry.endpoint
                guard state.perEndpoint[endpoint, default: 0] < maxPerEndpoint else { continue }
                state.perEndpoint[endpoint, default: 0] += 1
                state.ids.insert(entry.id)
                chosen.append(entry)
            }
            return chosen
        }
    }

    func unreserve(_ entries: [OutboxEntry]) {
        state.withLock { state in
            for entry in entries where state.ids.remove(entry.id) != nil {
                Self.release(entry.endpoint, in: &state)
            }
        }
    }

    func finish(_ result: Finished) {
        state.withLock { state in
            if state.ids.remove(result.entry.id) != nil { Self.release(result.entry.endpoint, in: &state) }
            state.finished.append(result)
        }
    }

    func takeFinished() -> [Finished] {
        state.withLock { state in
            defer { state.finished = [] }
            return state.finished
        }
    }

    private static func release(_ endpoint: String, in state: inout State) {
        let left = state.perEndpoint[endpoint, default: 1] - 1
        state.perEndpoint[endpoint] = left > 0 ? left : nil
    }
}

/// Signers per bucket, read from the store once per process.
final class Signers: Sendable {
    private let store: any JobStore
    private let cache = Mutex<[String: WebhookSigner]>([:])

    init(store: any JobStore) {
        self.store = store
    }

    func signer(bucket: String) async throws -> WebhookSigner {
        if let signer = cache.withLock({ $0[bucket] }) { return signer }
        let secret = try await store.webhookSecret(bucket: bucket)
        guard let signer = WebhookSigner(secret: secret) else {
            throw SigningSecretError(description: "the signing secret of bucket \(bucket) is not whsec_ followed by base64")
        }
        cache.withLock { $0[bucket] = signer }
        return signer
    }
}

struct SigningSecretError: Error, CustomStringConvertible {
    let description: String
}
