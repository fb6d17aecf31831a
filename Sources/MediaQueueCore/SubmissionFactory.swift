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

    public init(
        queues: QueueDirectory, workers: WorkerRegistry, limits: SubmissionLimits = SubmissionLimits(),
        templates: TemplateResolver? = nil, checkCallbackURL: (@Sendable (String) throws(CIError) -> Void)? = nil
    ) {
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
            var request = try CreateMediaJobsRequest.parse(body, limits: limits) { _ throws(CIError) in }
            for index in request.operations.indices {
                try await templates?.resolve(&request.operations[index], bucket: bucket)
                try workers.validate(request.operations[index])
            }
            if let url = request.callback.url, !request.callback.isSilenced {
                try checkCallbackURL?(url)
            }
            let queue = try await queues.resolve(bucket: bucket, queueID: request.queueID)
            let jobs = request.operations.map { operation in
                Job(
                    bucket: bucket, queueID: queue.id, tag: operation.tag, jobLevel: operation.jobLevel,
                    input: operation.input, operation: operation.operation, callback: request.callback, creationTime: now
                )
            }
            return .success(Submission(idempotencyKey: idempotencyKey.map { "\(bucket)/\($0)" }, jobs: jobs))
        } catch {
            return .failure(error)
        }
    }
}
