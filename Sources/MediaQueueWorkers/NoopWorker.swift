public import MediaQueueCore

/// Tag `Noop`: succeeds at once without touching storage. Exists for benchmarks of the job path
/// itself and is registered only when configuration enables it (`MEDIAQUEUE_ENABLE_NOOP=1`).
public struct NoopWorker: MediaWorker {
    public init() {}

    public var tag: String { "Noop" }

    public func validate(_ operation: CreateMediaJobsRequest.Operation) throws(CIError) {}

    public func run(_ job: Job, context: WorkContext) async throws -> WorkResult {
        WorkResult()
    }
}
