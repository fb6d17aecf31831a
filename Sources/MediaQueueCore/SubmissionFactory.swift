import MediaQueueXML

/// Turns a CreateMediaJobs request body into the jobs to store, the same way for every way in
/// (AMQP intake, `POST /jobs`): parse, validate each operation with its tag's worker, find the
/// queue, and build `Submitted` jobs.
public struct SubmissionFactory: Sendable {
    public let queues: QueueDirectory
    public let workers: WorkerRegistry
    public let limits: SubmissionLimits
    /// Refuses a job's own `CallBack` URL early (e.g. a literal private address the delivery's
    /// SSRF guard would refuse anyway); nil checks nothing.
    let checkCallbackURL: (@Sendable (String) throws(CIError) -> Void)?
    /// Gives operations naming a custom template its parameters; nil knows only built-in ones.
    public let templates: TemplateResolver?
    /// Which queues and exchanges a job's own TDMQ callback may name.
    let mqNames: MqNamePolicy

    public init(
        queues: QueueDirectory, workers: WorkerRegistry, limits: SubmissionLimits = SubmissionLimits(),
        templates: TemplateResolver? = nil, mqNames: MqNamePolicy = MqNamePolicy(),
        checkCallbackURL: (@Sendable (String) throws(CIError) -> Void)? = nil
    ) {
        self.mqNames = mqNames
        self.limits = limits
        self.templates = templates
        self.queues = queues
        self.workers = workers
        self.checkCallbackURL = checkCallbackURL
    }

    /// The submission for `body` in `bucket`, or the `CIError` that refuses it. A store that cannot
    /// be read gives `InternalError`, which callers treat as "try again", not as bad input.
    public func submission(body: [UInt8], bucket: String, idempotencyKey: String?, now: Timestamp) async -> Result<Submission, CIError> {
        do {
            try BucketName.validate(bucket)
            let key = try Self.checkedIdempotencyKey(idempotencyKey)
            var request = try CreateMediaJobsRequest.parse(body, limits: limits) { _ throws(CIError) in }
            for index in request.operations.indices {
                try await templates?.resolve(&request.operations[index], bucket: bucket)
                try workers.validate(request.operations[index])
                try Self.checkOutputBucket(request.operations[index], bucket: bucket)
            }
            if let url = request.callback.url, !request.callback.isSilenced {
                try checkCallbackURL?(url)
            }
            if let mq = request.callback.mq { try mqNames.check(mq.name, bucket: bucket, element: "CallBackMqConfig.MqName") }
            let queue = try await queues.resolve(bucket: bucket, queueID: request.queueID)
            let jobs = request.operations.map { operation in
                Job(
                    bucket: bucket, queueID: queue.id, tag: operation.tag, jobLevel: operation.jobLevel,
                    input: operation.input, operation: operation.operation, callback: request.callback, creationTime: now
                )
            }
            return .success(Submission(idempotencyKey: key.flatMap { Self.storedKey($0, bucket: bucket) }, jobs: jobs))
        } catch {
            return .failure(error)
        }
    }

    /// The key a client's idempotency key is stored under: per bucket, so that two buckets'
    /// clients never meet on one.
    static func storedKey(_ key: String?, bucket: String) -> String? {
        key.map { "\(bucket)/\($0)" }
    }

    /// Outputs are written to the job's own bucket: an `Output.Bucket` naming another is refused
    /// rather than ignored (the output would land where the client did not ask).
    static func checkOutputBucket(_ operation: CreateMediaJobsRequest.Operation, bucket: String) throws(CIError) {
        guard let named = operation.operation["Output"]?.text("Bucket")?.trimmed, !named.isEmpty, named != bucket else { return }
        throw CIError.invalid("Operation.Output.Bucket", "outputs are written to the job's bucket \(bucket), not to \(named)")
    }

    /// The most bytes of an idempotency key (an AMQP `message-id` holds at most 255).
    public static let maxIdempotencyKeyBytes = 255

    /// `key` as the submission's idempotency key. An empty key is none: as a key it would make
    /// every submission that sends one the same job. A longer key, or one with control
    /// characters (PostgreSQL refuses NUL), is refused as bad input rather than left for the
    /// store to fail on, which would send the message back again and again.
    static func checkedIdempotencyKey(_ key: String?) throws(CIError) -> String? {
        guard let key, !key.isEmpty else { return nil }
        let element = "ClientToken"
        guard key.utf8.count <= maxIdempotencyKeyBytes else {
            throw CIError.invalid(element, "the idempotency key (message-id, ClientToken or x-ci-client-token) is \(key.utf8.count) bytes; at most \(maxIdempotencyKeyBytes)")
        }
        guard !key.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw CIError.invalid(element, "the idempotency key (message-id, ClientToken or x-ci-client-token) contains control characters")
        }
        return key
    }
}

extension JobStore {
    /// The jobs a submission to `bucket` with the client's idempotency key `key` created before,
    /// nil when there is no key or the store does not know it: a retry that the checks now
    /// refuse (its template or queue deleted since) still gets them.
    public func jobsStoredBefore(clientKey key: String?, bucket: String) async throws -> [JobID]? {
        guard let stored = SubmissionFactory.storedKey(key, bucket: bucket) else { return nil }
        return try await jobIDs(idempotencyKey: stored)
    }
}
