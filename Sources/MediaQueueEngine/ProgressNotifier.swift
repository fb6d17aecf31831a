public import Logging
import MediaQueueAMQP
public import MediaQueueCore
public import MediaQueueHTTPClient
import Synchronization

/// Settings of progress events.
public struct ProgressOptions: Sendable {
    /// At most one progress event per job this often.
    public var interval: Duration
    /// Longest a job's end waits for its progress event in flight, and longest a progress POST
    /// may take (see `ProgressNotifier`).
    public var sendTimeout: Duration

    public init(interval: Duration = .seconds(5), sendTimeout: Duration = .seconds(5)) {
        self.interval = interval
        self.sendTimeout = sendTimeout
    }
}

/// Sends `TaskProgress` events (beyond CI) for running jobs whose rule, or own `CallBackEvent`,
/// asks for them: on the channel of the job's callbacks, TDMQ with routing key
/// `job.<QueueId>.<Tag>.Progress`, or a signed POST.
///
/// Best effort, by design: a progress event is not stored in the outbox and not retried; one that
/// fails is logged and the next report tries again. At most one goes out per job every
/// `interval`, and only when the progress moved. None goes out after the job's `TaskFinish`:
/// the dispatcher calls `jobEnded` before it records the end, which stops new events and waits
/// for the one in flight, so that it is confirmed (or answered) before the `TaskFinish` exists.
/// That wait is bounded by `sendTimeout`, so a slow receiver never holds up a job's end: no event
/// is published while its broker is away (it would wait for the reconnection), and a POST gives
/// up after `sendTimeout`.
public final class ProgressNotifier: Sendable {
    /// A running job's last event: when, at what progress, and the send still under way.
    private struct Sent {
        var at: Timestamp?
        var progress: Int?
        var inFlight: Task<Void, Never>?
    }

    private let store: any JobStore
    private let regions: MQRegions
    private let client: HTTPClient
    private let options: ProgressOptions
    private let formatting: CIFormatting
    private let time: any TimeSource
    private let logger: Logger
    private let declared = DeclaredDestinations()
    private let signers: CallbackSigners
    private let jobs = Mutex<[JobID: Sent]>([:])

    public init(
        store: any JobStore, regions: MQRegions, client: HTTPClient, options: ProgressOptions, formatting: CIFormatting,
        time: any TimeSource = SystemTimeSource(), signers: CallbackSigners? = nil, logger: Logger
    ) {
        self.store = store
        self.regions = regions
        self.client = client
        self.options = options
        self.formatting = formatting
        self.time = time
        self.logger = logger
        self.signers = signers ?? CallbackSigners(store: store, time: time)
    }

    /// A job starts: its progress may be announced from now on.
    func jobStarted(_ id: JobID) {
        jobs.withLock { $0[id] = Sent() }
    }

    /// A running job's progress, as its worker reports it; sends an event when one is due.
    func report(_ job: Job, progress reported: Int) {
        let progress = min(100, max(0, reported))
        let now = time.now
        jobs.withLock { jobs in
            guard let sent = jobs[job.id], sent.inFlight == nil, sent.progress != progress else { return }
            if let last = sent.at, now < last + options.interval { return }
            var running = job
            running.state = .running
            running.progress = progress
            // Made under the lock, so the entry holds the task before the task can clear it.
            jobs[job.id] = Sent(at: now, progress: progress, inFlight: Task { await self.send(running) })
        }
    }

    /// The job ended: no event after this, and the one in flight has been sent (or has had
    /// `sendTimeout` to be, and is then cancelled, so that it cannot go out after the job's
    /// TaskFinish) when it returns.
    func jobEnded(_ id: JobID) async {
        guard let inFlight = jobs.withLock({ jobs in jobs.removeValue(forKey: id)?.inFlight }) else { return }
        let (done, finished) = AsyncStream<Void>.makeStream()
        let send = Task {
            await inFlight.value
            finished.yield()
        }
        let timer = Task {
            try? await time.sleep(for: options.sendTimeout)
            finished.yield()
        }
        for await _ in done { break }
        inFlight.cancel()
        send.cancel()
        timer.cancel()
    }

    private func send(_ job: Job) async {
        defer { jobs.withLock { $0[job.id]?.inFlight = nil } }
        do {
            guard let queue = try await store.queue(id: job.queueID),
                  let target = CallbackTarget.resolve(rule: queue.notifyConfig, override: job.callback, event: .taskProgress)
            else { return }
            // Given up by the job's end while it read the rule: not sent at all.
            try Task.checkCancellation()
            let body = CallbackBody.jobEvent(.taskProgress, job, format: target.format, formatting: formatting)
            let eventID = "e" + timeOrderedHex32()
            switch target.destination {
            case .mq(let mode, let name, let region):
                let broker = regions.broker(for: region)
                // Published now or not at all: a publish waits for a lost connection to come back.
                guard broker.isConnected else { throw ProgressNotDelivered(description: "the broker of region '\(region)' is not connected") }
                try await declared.ensure(target.destination, on: broker)
                var properties = AMQPProperties(contentType: body.contentType, messageID: eventID, persistent: true)
                properties.headers = ["x-ci-job-id": .string(job.id.rawValue), "x-ci-event": .string(NotifyConfig.Event.taskProgress.rawValue)]
                // Mandatory, as the relay's: a queue gone since it was declared returns the event,
                // and it is declared again for the next one.
                let message = mode == .topic
                    ? AMQPOutgoingMessage(exchange: name, routingKey: "job.\(job.queueID.rawValue).\(job.tag).Progress", body: body.bytes, properties: properties)
                    : AMQPOutgoingMessage(exchange: "", routingKey: name, body: body.bytes, properties: properties, mandatory: true)
                for result in await broker.publish(batch: [message]) {
                    if case .failure(let error) = result { declared.forgetIfGone(target.destination, after: error) }
                    try result.get()
                }
            case .url(let url):
                let timestamp = time.now.seconds
                let signature = try await signers.signature(bucket: job.bucket, id: eventID, timestamp: timestamp, body: body.bytes)
                try Task.checkCancellation()
                let response = try await client.post(HTTPRequest(url: url, headers: [
                    HTTPHeader("Content-Type", body.contentType),
                    HTTPHeader("webhook-id", eventID),
                    HTTPHeader("webhook-timestamp", String(timestamp)),
                    HTTPHeader("webhook-signature", signature),
                    HTTPHeader("x-ci-job-id", job.id.rawValue),
                    HTTPHeader("x-ci-event", NotifyConfig.Event.taskProgress.rawValue),
                ], body: body.bytes, timeout: options.sendTimeout))
                guard (200..<300).contains(response.status) else { throw ProgressNotDelivered(description: "HTTP \(response.status)") }
            }
        } catch {
            logger.debug("progress event not delivered (best effort, not retried)", metadata: ["job.id": "\(job.id)", "error": "\(error)"])
        }
    }
}

struct ProgressNotDelivered: Error, CustomStringConvertible {
    let description: String
}

extension ProgressNotifier {
    /// Waits for the job's send under way, if any (for tests).
    func waitForSends(_ id: JobID) async {
        await jobs.withLock { $0[id]?.inFlight }?.value
    }
}
