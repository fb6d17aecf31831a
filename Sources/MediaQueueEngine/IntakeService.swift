public import Logging
public import MediaQueueAMQP
public import MediaQueueCore
import MediaQueueXML
public import ServiceLifecycle

/// Settings of the AMQP intake.
public struct IntakeOptions: Sendable {
    /// The queue producers publish CreateMediaJobs requests to.
    public var queue: String
    /// Where submissions that cannot be accepted go, with the reason in headers.
    public var deadLetterQueue: String
    /// The kind of both queues: quorum queues are replicated over a RabbitMQ cluster's nodes.
    public var queueType: QueueType
    /// Unacknowledged deliveries the broker may push ahead; bounds memory, not order (the store orders).
    public var prefetch: UInt16
    /// At most this many messages are stored in one transaction.
    public var batchSize: Int
    /// How long a batch smaller than `batchSize` waits for more messages before it is stored,
    /// while the intake is busy (a lone message on an idle intake is stored at once).
    public var linger: Duration
    /// The bucket of messages without an `x-ci-bucket` header.
    public var defaultBucket: String
    /// How long a `message-id` is remembered: a copy arriving within this window creates no job.
    public var idempotencyWindow: Duration
    /// How often keys older than the window are purged.
    public var purgeInterval: Duration
    /// The pause after a batch that could not be stored, or whose dead letters could not be
    /// published, before the next one (the cause is likely still there); also the pause before
    /// consuming again after the broker ended the consumer, and the first of the doubling pauses
    /// after a declare the connection dropped under.
    public var retryPause: Duration
    /// The longest of those doubling pauses.
    public var longestRetryPause: Duration
    /// How long a batch's dead letters and answers may wait for the broker once the service
    /// shuts down; then the submissions whose dead letters are not confirmed go back to the
    /// queue, and the intake stops.
    public var shutdownGrace: Duration

    public enum QueueType: String, Sendable, CaseIterable {
        case classic, quorum
    }

    public init(
        queue: String = "mediaqueue.jobs", deadLetterQueue: String = "mediaqueue.jobs.dead", queueType: QueueType = .classic, prefetch: UInt16 = 500,
        batchSize: Int = 250, linger: Duration = .milliseconds(5), defaultBucket: String,
        idempotencyWindow: Duration = .seconds(24 * 3600), purgeInterval: Duration = .seconds(3600), retryPause: Duration = .seconds(1),
        longestRetryPause: Duration = .seconds(30), shutdownGrace: Duration = .seconds(5)
    ) {
        self.shutdownGrace = shutdownGrace
        self.longestRetryPause = longestRetryPause
        self.idempotencyWindow = idempotencyWindow
        self.purgeInterval = purgeInterval
        self.retryPause = retryPause
        self.queue = queue
        self.deadLetterQueue = deadLetterQueue
        self.queueType = queueType
        self.prefetch = prefetch
        self.batchSize = batchSize
        self.linger = linger
        self.defaultBucket = defaultBucket
    }

    /// Header that names a submission's bucket.
    public static let bucketHeader = "x-ci-bucket"
    /// Header with an idempotency key, for producers that cannot set `message-id`.
    public static let clientTokenHeader = "ClientToken"
}

extension SubmissionOutcome {
    /// Whether the submission created jobs.
    fileprivate var createdJobs: Bool {
        if case .created(let jobs) = self { !jobs.isEmpty } else { false }
    }
}

/// Takes CreateMediaJobs requests from the intake queue into the store.
///
/// Messages are stored in batches, one transaction each, and acknowledged only after the commit:
/// a crash between commit and ack redelivers them, and the idempotency key (`message-id`) turns
/// the redelivery into a no-op. A message that cannot be accepted is published to the
/// dead-letter queue with the reason (confirmed) before it is acknowledged.
///
/// With a dispatcher in the same process (`dispatcher`), the transaction that stores a batch
/// also claims jobs for the dispatcher's free slots, and the claimed jobs are handed to it in
/// memory.
public struct IntakeService: Service {
    let broker: any MessageBroker
    let store: any JobStore
    let factory: SubmissionFactory
    let options: IntakeOptions
    let formatting: CIFormatting
    let time: any TimeSource
    let dispatcher: DispatcherHandle?
    let writeHealth: StoreWriteHealth
    /// Whether the broker refuses the intake's queue (after it had been consumed), for readiness.
    let queueHealth: StoreWriteHealth
    let logger: Logger

    public init(
        broker: any MessageBroker, store: any JobStore, factory: SubmissionFactory, options: IntakeOptions, formatting: CIFormatting, time: any TimeSource = SystemTimeSource(),
        dispatcher: DispatcherHandle? = nil, writeHealth: StoreWriteHealth = StoreWriteHealth(), queueHealth: StoreWriteHealth = StoreWriteHealth(),
        logger: Logger
    ) {
        self.writeHealth = writeHealth
        self.queueHealth = queueHealth
        self.dispatcher = dispatcher
        self.broker = broker
        self.store = store
        self.factory = factory
        self.options = options
        self.formatting = formatting
        self.time = time
        self.logger = logger
    }

    /// The intake queue and its dead-letter queue, both durable and of the configured type. A
    /// classic queue is declared without arguments, as before quorum queues were offered.
    public var topology: AMQPTopology {
        let arguments: AMQPTable = options.queueType == .quorum ? ["x-queue-type": .string("quorum")] : [:]
        return AMQPTopology(queues: [
            AMQPQueue(name: options.queue, durable: true, arguments: arguments),
            AMQPQueue(name: options.deadLetterQueue, durable: true, arguments: arguments),
        ])
    }

    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await forgetOldIdempotencyKeys() }
            var consumer = try await subscribe()
            if consumer == nil { logger.info("intake stopped before the broker was reached") }
            while let current = consumer {
                logger.info("intake consuming", metadata: ["queue": "\(options.queue)"])
                await drain(current)
                // Everything it delivered is settled now; one the broker ended gives its channel back.
                await current.cancel()
                if Task.isShuttingDownGracefully || Task.isCancelled { break }
                // The broker cancels a consumer when its queue is deleted (or it could not be resumed
                // after a reconnect): declare the queues and consume again, after a pause, so that a
                // consumer ended at once each time does not make a busy loop.
                logger.warning(
                    "the broker ended the intake's consumer; declaring its queues and consuming again",
                    metadata: ["queue": "\(options.queue)", "retryIn": "\(options.retryPause)"]
                )
                guard await pause(options.retryPause) else { break }
                consumer = try await subscribe(again: true)
            }
            group.cancelAll()
        }
        logger.debug("intake stopped")
    }

    /// Declares the queues and consumes the intake queue; nil once the service shuts down. Both
    /// wait for a broker that is not there; one that drops the connection meanwhile (a quorum
    /// queue that could not start in time closes it) is asked again after a pause that doubles up
    /// to `longestRetryPause`. What the broker refuses (a queue that exists with other
    /// arguments, no permission) is thrown at start, where it is a setting to fix. Once the
    /// intake has consumed (`again`), a refusal is an operator's change in progress (a queue
    /// being recreated as another type): it is asked again in the same way, and shown in
    /// readiness, instead of ending the node and the jobs it is running.
    private func subscribe(again: Bool = false) async throws -> (any MessageConsumer)? {
        var next = options.retryPause
        while true {
            do {
                let consumer = try await cancelWhenGracefulShutdown {
                    try await broker.declare(topology, remember: true)
                    return try await broker.consume(queue: options.queue, prefetch: options.prefetch)
                }
                if again { queueHealth.record(nil, at: time.now) }
                return consumer
            } catch is CancellationError {
                return nil
            } catch let error as AMQPError where error.code == .connectionLost {
                logger.warning(
                    "intake lost the broker while declaring or consuming its queue; trying again",
                    metadata: ["queue": "\(options.queue)", "error": "\(error)", "retryIn": "\(next)"]
                )
            } catch where again {
                logger.error(
                    "the broker refuses the intake's queue; trying again",
                    metadata: ["queue": "\(options.queue)", "error": "\(error)", "retryIn": "\(next)"]
                )
                queueHealth.record(IntakeQueueRefused(queue: options.queue, reason: "\(error)"), at: time.now)
            }
            guard await pause(next) else { return nil }
            next = min(next * 2, max(options.retryPause, options.longestRetryPause))
        }
    }

    /// Waits `duration` on the injected clock; false if the service shuts down first.
    private func pause(_ duration: Duration) async -> Bool {
        do {
            try await cancelWhenGracefulShutdown { try await time.sleep(for: duration) }
            return true
        } catch {
            return false
        }
    }

    /// Stores what `consumer` delivers until it ends or the service shuts down (what was delivered
    /// but not acked is then redelivered).
    private func drain(_ consumer: some MessageConsumer) async {
        await withGracefulShutdownHandler {
            var linger = BatchLinger(options.linger)
            while let batch = await nextBatch(of: consumer, linger: linger) {
                linger.record(size: batch.count)
                await handle(batch)
            }
        } onGracefulShutdown: {
            Task { await consumer.cancel() }
        }
    }

    /// The next deliveries, up to `batchSize`; when fewer are there and the intake is busy
    /// (`BatchLinger`), waits `linger` once for more: a busy intake then stores a few larger
    /// batches instead of many small ones, each of which costs a transaction.
    private func nextBatch(of consumer: some MessageConsumer, linger: BatchLinger) async -> [AMQPMessage]? {
        guard var batch = await consumer.nextBatch(max: options.batchSize) else { return nil }
        if linger.shouldWait(size: batch.count, limit: options.batchSize) {
            try? await time.sleep(for: linger.duration)
            batch += consumer.takeBuffered(max: options.batchSize - batch.count)
        }
        return batch
    }

    /// Purges idempotency keys older than the window, every `purgeInterval`.
    private func forgetOldIdempotencyKeys() async {
        while !Task.isCancelled {
            do {
                try await store.purgeIdempotencyKeys(before: time.now - options.idempotencyWindow)
            } catch {
                logger.warning("intake could not purge old idempotency keys", metadata: ["error": "\(error)"])
            }
            try? await time.sleep(for: options.purgeInterval)
        }
    }

    /// Stores one batch, answers and dead-letters what needs it, then acknowledges.
    func handle(_ batch: [AMQPMessage]) async {
        var accepted: [(message: AMQPMessage, submission: Submission)] = []
        var rejected: [(message: AMQPMessage, error: CIError)] = []
        // Messages the store could not be read for (a template, a queue): back to the broker on
        // their own, so that one whose read keeps failing holds up no other.
        var unchecked: [(message: AMQPMessage, error: CIError)] = []
        // Refused now, but their keys' jobs were stored before (a redelivery after the template
        // was deleted, say): settled as the duplicates they are.
        var storedBefore: [(message: AMQPMessage, ids: [JobID])] = []
        let now = time.now
        // Nil: the message goes back to the broker (the batch failed, and its jobs are not stored).
        var outcomes: [SubmissionOutcome?]
        do {
            for message in batch {
                switch await submission(for: message, now: now) {
                case .success(let submission):
                    accepted.append((message, submission))
                case .failure(let error) where error.code == .internalError:
                    unchecked.append((message, error))
                case .failure(let error):
                    if let ids = await jobsStoredBefore(message) {
                        storedBefore.append((message, ids))
                    } else {
                        rejected.append((message, error))
                    }
                }
            }
            // None could be checked: the store is likely away.
            if let first = unchecked.first, accepted.isEmpty, rejected.isEmpty, storedBefore.isEmpty { throw first.error }
            do {
                // A batch of refused messages alone needs no store: they are dead-lettered even
                // while it is away.
                outcomes = accepted.isEmpty ? [] : try await storeBatch(accepted.map(\.submission))
                if !accepted.isEmpty { writeHealth.record(nil, at: time.now) }
            } catch {
                writeHealth.record(error, at: time.now)
                throw error
            }
        } catch {
            // The store failed (disk full, locked too long, connection lost): the messages are
            // fine, so they go back to the broker rather than to the dead-letter queue, except
            // those whose jobs were stored after all.
            logger.error("intake could not store a batch", metadata: ["error": "\(error)", "messages": "\(batch.count)"])
            guard let stored = await jobsStored(by: accepted.map(\.submission)), stored.contains(where: { $0 != nil }) else {
                for message in batch { broker.nack(message.deliveryTag, multiple: false, requeue: true) }
                try? await time.sleep(for: options.retryPause)
                return
            }
            logger.warning("the batch the store failed on was stored; its messages are settled as stored")
            writeHealth.record(nil, at: time.now)
            outcomes = stored.map { jobs in jobs.map(SubmissionOutcome.created) }
            // Jobs its transaction stored without claiming wait for the dispatcher, which is told.
            // Jobs it claimed were never handed over: they run when their leases end.
            dispatcher?.jobsStored()
        }

        var replies: [AMQPOutgoingMessage] = []
        var requeued: Set<AMQPDeliveryTag> = []
        for ((message, _), outcome) in zip(accepted, outcomes) {
            switch outcome {
            case nil:
                requeued.insert(message.deliveryTag)
            case .created(let jobs):
                if let reply = reply(to: message, jobs: jobs) { replies.append(reply) }
            case .duplicate(let ids):
                logger.debug("intake ignored a redelivered submission", metadata: ["message.id": "\(message.properties.messageID ?? "")"])
                if message.properties.replyTo != nil, let reply = reply(to: message, jobs: (try? await store.jobs(ids: ids)) ?? []) {
                    replies.append(reply)
                }
            case .refused(let error):
                rejected.append((message, error))
            }
        }
        for (message, ids) in storedBefore where message.properties.replyTo != nil {
            if let reply = reply(to: message, jobs: (try? await store.jobs(ids: ids)) ?? []) { replies.append(reply) }
        }
        // A refused message's producer is answered each time it is handled, also while its dead
        // letter cannot be confirmed (it is refused either way).
        for (message, error) in rejected {
            if let reply = errorReply(to: message, error: error) { replies.append(reply) }
        }

        // Each message on its own outcome, and the stored ones before anything is published: a
        // broker under a resource alarm holds a connection's publishes (and stops reading it)
        // once it publishes, and if the connection drops meanwhile, a stored message not acked
        // yet comes back, and without an idempotency key becomes a second job.
        let refusedTags = Set(rejected.map(\.message.deliveryTag))
        for (message, error) in unchecked {
            logger.warning(
                "intake could not check a submission; it goes back to the queue",
                metadata: ["error": "\(error)", "message.id": "\(message.properties.messageID ?? "")"]
            )
            broker.nack(message.deliveryTag, multiple: false, requeue: true)
        }
        if refusedTags.isEmpty && requeued.isEmpty && unchecked.isEmpty {
            // One consumer per channel and batches handled in order: everything up to the last tag is settled.
            if let last = batch.last { broker.ack(last.deliveryTag, multiple: true) }
        } else {
            for (message, _) in accepted where !refusedTags.contains(message.deliveryTag) {
                if requeued.contains(message.deliveryTag) {
                    broker.nack(message.deliveryTag, multiple: false, requeue: true)
                } else {
                    broker.ack(message.deliveryTag, multiple: false)
                }
            }
            for (message, _) in storedBefore { broker.ack(message.deliveryTag, multiple: false) }
        }

        // Dead letters first in the batch, so their results line up with `rejected`. A broker
        // that is away holds a shutdown for `shutdownGrace` at most: what it has not confirmed by
        // then is `.cancelled`, and its submissions go back to the queue.
        let outgoing = rejected.map { deadLetter($0.message, error: $0.error) } + replies
        let results = outgoing.isEmpty
            ? [] : await cancellingAfterShutdownGrace(options.shutdownGrace, time: time) { [broker] in await broker.publish(batch: outgoing) }
        if let failure = results.dropFirst(rejected.count).first(where: \.isFailure) {
            // The submissions are settled (stored, or dead-lettered below); a lost answer is
            // only logged: redelivering a stored message could make a second job of it.
            logger.warning("intake could not publish a reply", metadata: ["error": "\(failure)"])
        }
        // A refused message is acked only once its dead letter is confirmed, otherwise it goes
        // back to the broker.
        var undeadLettered = 0
        for ((message, error), result) in zip(rejected, results) {
            if result.isFailure {
                undeadLettered += 1
                broker.nack(message.deliveryTag, multiple: false, requeue: true)
            } else {
                logger.notice("intake dead-lettered a submission", metadata: ["error": "\(error)", "message.id": "\(message.properties.messageID ?? "")"])
                broker.ack(message.deliveryTag, multiple: false)
            }
        }
        if undeadLettered > 0 {
            logger.warning("intake could not dead-letter submissions; they go back to the queue", metadata: ["messages": "\(undeadLettered)"])
        }
        guard undeadLettered > 0 || !requeued.isEmpty || !unchecked.isEmpty else { return }
        // Not at once again: the dead-letter queue or the store is likely still unreachable.
        try? await time.sleep(for: options.retryPause)
    }

    /// After a batch failed: each submission's jobs as the store holds them, nil where it holds
    /// none. A failure may come after the commit (a store that commits and then fails; the
    /// PostgreSQL store asks the server itself how a `COMMIT` whose reply was lost ended, but
    /// gives up if it cannot ask for some seconds), and a message whose jobs were stored must not
    /// be stored again when it is redelivered: without an idempotency key it would become a
    /// second job. The batch is one transaction, so every job
    /// it created is there or none is (unless its commit is still going on when this reads); a
    /// submission without jobs in a stored batch was a duplicate or refused, and is handled again
    /// when redelivered. Asks again, after a pause, until the store answers; once the service
    /// shuts down, for `shutdownGrace` more (the batch then goes back, and a message of it
    /// without a key could become a second job); nil if it stops before an answer.
    private func jobsStored(by submissions: [Submission]) async -> [[Job]?]? {
        var deadline: Timestamp?
        while true {
            if deadline == nil, Task.isShuttingDownGracefully { deadline = time.now + options.shutdownGrace }
            // A read that hangs (a database that does not answer) ends with the shutdown's grace.
            let grace = deadline.map { Duration.milliseconds($0.milliseconds - time.now.milliseconds) } ?? options.shutdownGrace
            guard grace > .zero else { return nil }
            let attempt = await cancellingAfterShutdownGrace(grace, time: time) { [store] in await Self.read(submissions, in: store) }
            switch attempt {
            case .success(let stored): return stored
            case .failure(let error):
                logger.warning("intake cannot read whether a failed batch was stored; it asks again", metadata: ["error": "\(error)"])
            }
            guard !Task.isCancelled else { return nil }
            if let deadline {
                let left = Duration.milliseconds(deadline.milliseconds - time.now.milliseconds)
                guard left > .zero, (try? await time.sleep(for: min(options.retryPause, left))) != nil else { return nil }
            } else {
                _ = await pause(options.retryPause)  // a shutdown ends it, and sets the deadline above
            }
        }
    }

    /// Each submission's jobs as `store` holds them, nil where it holds none.
    private static func read(_ submissions: [Submission], in store: any JobStore) async -> Result<[[Job]?], any Error> {
        do {
            var stored: [[Job]?] = []
            for submission in submissions {
                let jobs = try await store.jobs(ids: submission.jobs.map(\.id))
                stored.append(jobs.isEmpty ? nil : jobs)
            }
            return .success(stored)
        } catch {
            return .failure(error)
        }
    }

    /// Stores a batch. With a dispatcher in this process, the same transaction claims jobs for
    /// its free slots (up to the batch's job count) and hands them over; otherwise the dispatchers
    /// of other processes find the jobs when they poll.
    private func storeBatch(_ submissions: [Submission]) async throws -> [SubmissionOutcome] {
        guard let dispatcher else { return try await store.submit(submissions) }
        return try await dispatcher.claim(upTo: submissions.reduce(0) { $0 + $1.jobs.count }, now: time.now) { claim in
            guard let claim else {
                // No free slot: the jobs wait, and the claims of the jobs ending now take them.
                let outcomes = try await store.submit(submissions)
                return (outcomes, ClaimResult(jobs: [], moreWaiting: outcomes.contains(where: \.createdJobs)))
            }
            return try await store.submit(submissions, thenClaim: claim)
        }
    }

    /// The jobs a message asks for, or why it cannot be accepted.
    func submission(for message: AMQPMessage, now: Timestamp) async -> Result<Submission, CIError> {
        if let size = message.oversizedBodyBytes {
            // Not read at all (the intake's connection keeps no larger body): refused as one read.
            do throws(CIError) {
                try factory.limits.checkBodySize(size)
            } catch {
                return .failure(error)
            }
        }
        let (bucket, key) = idempotencyKey(of: message)
        return await factory.submission(body: message.body, bucket: bucket, idempotencyKey: key, now: now)
    }

    /// The bucket a message submits to, and its idempotency key. An empty message-id is no key
    /// (some clients send one when none was set): the `ClientToken` header then is.
    func idempotencyKey(of message: AMQPMessage) -> (bucket: String, key: String?) {
        let bucket = message.properties.headers[IntakeOptions.bucketHeader]?.stringValue ?? options.defaultBucket
        let key = [message.properties.messageID, message.properties.headers[IntakeOptions.clientTokenHeader]?.stringValue]
            .lazy.compactMap { $0 }.first { !$0.isEmpty }
        return (bucket, key)
    }

    /// The jobs a refused message's key stored before, if it has a key the store knows; nil
    /// also when the store cannot be read (the message is then refused, as without a key).
    func jobsStoredBefore(_ message: AMQPMessage) async -> [JobID]? {
        let (bucket, key) = idempotencyKey(of: message)
        return try? await store.jobsStoredBefore(clientKey: key, bucket: bucket)
    }

    func reply(to message: AMQPMessage, jobs: [Job]) -> AMQPOutgoingMessage? {
        guard let replyTo = message.properties.replyTo, !replyTo.isEmpty else { return nil }
        let body = XMLTree("Response", children: jobs.map { $0.jobsDetail(formatting) })
        return AMQPOutgoingMessage(
            routingKey: replyTo, body: body.xmlBytes(),
            properties: AMQPProperties(contentType: "application/xml", correlationID: message.properties.correlationID ?? message.properties.messageID)
        )
    }

    func errorReply(to message: AMQPMessage, error: CIError) -> AMQPOutgoingMessage? {
        guard let replyTo = message.properties.replyTo, !replyTo.isEmpty else { return nil }
        return AMQPOutgoingMessage(
            routingKey: replyTo, body: error.xml(requestID: message.properties.messageID ?? "").xmlBytes(),
            properties: AMQPProperties(contentType: "application/xml", correlationID: message.properties.correlationID ?? message.properties.messageID)
        )
    }

    func deadLetter(_ message: AMQPMessage, error: CIError) -> AMQPOutgoingMessage {
        var properties = message.properties
        properties.persistent = true
        // Kept until someone reads it: the producer's per-message TTL would drop it unread.
        properties.expiration = nil
        // Bounded: a message may quote what the client sent at any length, and a header frame
        // larger than the connection's frame size cannot be sent at all, so the dead letter
        // would fail, and the message come back, forever.
        var reason: AMQPTable = [
            "x-mediaqueue-error-code": .string(Self.headerText(error.code.rawValue)),
            "x-mediaqueue-error-message": .string(Self.headerText(error.message)),
            "x-mediaqueue-source-queue": .string(options.queue),
        ]
        if let element = error.element { reason["x-mediaqueue-error-element"] = .string(Self.headerText(element)) }
        properties.headers.merge(reason) { _, ours in ours }
        // Mandatory: a dead-letter queue that is gone returns the message instead of dropping it.
        var letter = AMQPOutgoingMessage(routingKey: options.deadLetterQueue, body: message.body, properties: properties, mandatory: true)
        if letter.encodingProblem(frameMax: broker.frameMax) != nil {
            // What the message brought leaves no room for the reason (headers filling its frame),
            // or cannot be sent again (a name that grew past 255 bytes when invalid UTF-8 was
            // repaired). The reason goes with the body and what of the rest fits.
            reason["x-mediaqueue-headers-dropped"] = .string("\(message.properties.headers.encodedSize) bytes of headers; with the reason the message's properties could not be sent")
            letter.properties = properties.withoutOverlongShortStrings()
            letter.properties.headers = reason
        }
        return letter
    }

    /// The most bytes of text one dead-letter header carries.
    static let maxHeaderTextBytes = 1024

    /// `text` cut to `maxHeaderTextBytes` at a character's end, with `…` when cut.
    static func headerText(_ text: String) -> String {
        guard text.utf8.count > maxHeaderTextBytes else { return text }
        var cut = ""
        for character in text {
            if cut.utf8.count + character.utf8.count > maxHeaderTextBytes - 3 { break }
            cut.append(character)
        }
        return cut + "…"
    }
}

extension Result {
    var isFailure: Bool {
        if case .failure = self { true } else { false }
    }
}

extension AMQPFieldValue {
    /// The value as text, for headers producers may send as strings or as bytes.
    var stringValue: String? {
        switch self {
        case .string(let value): value
        case .bytes(let bytes): String(decoding: bytes, as: UTF8.self)
        case .int(let value): String(value)
        default: nil
        }
    }
}

/// The broker refused to declare or consume the intake queue after the intake had consumed it.
struct IntakeQueueRefused: Error, CustomStringConvertible {
    let queue: String
    let reason: String
    var description: String { "the broker refuses the queue \(queue): \(reason)" }
}
