public import Logging
public import MediaQueueCore

/// Runs `MediaInfo` jobs: ffprobe on `Input.Object`, reported as CI's `<MediaInfo>`.
///
/// Failures: `InputNotExist` when the object is missing, `InvalidInput` with ffprobe's reason
/// when the file is not readable media, `JobTimeout`, `InternalError` when ffprobe cannot start.
public struct MediaInfoWorker: MediaWorker {
    public let tag = "MediaInfo"

    private let configuration: FFmpegConfiguration
    private let logger: Logger

    /// - Parameters:
    ///   - configuration: where ffprobe is.
    ///   - logger: receives one debug line per job; the worker never creates a logger itself.
    public init(configuration: FFmpegConfiguration = FFmpegConfiguration(), logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Requires `Input.Object`; a MediaInfo operation has no fields of its own.
    public func validate(_ operation: CreateMediaJobsRequest.Operation) throws(CIError) {
        _ = try operation.requireBucketInputObject()
    }

    /// Probes the input and returns `WorkResult(mediaInfo:)`; failures are `WorkFailure`s.
    public func run(_ job: Job, context: WorkContext) async throws -> WorkResult {
        try await withJobTimeout(configuration.jobTimeout) { [self] in
            try await probe(job, context: context)
        }
    }

    private func probe(_ job: Job, context: WorkContext) async throws -> WorkResult {
        let input = try BucketInput(job: job, context: context)
        logger.debug("probing media", metadata: ["job.id": "\(job.id)", "input": "\(input.object)"])
        let probe = try await MediaProbe.run(path: input.path, displayName: input.object, configuration: configuration)
        context.reportProgress(100)
        return WorkResult(mediaInfo: probe.mediaInfo())
    }
}
