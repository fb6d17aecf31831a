public import Logging
public import MediaQueueCore
import MediaQueueXML

/// Runs `MediaInfo` jobs: ffprobe on `Input.Object` (or `Input.Url`), reported as CI's `<MediaInfo>`.
///
/// Failures: `InputNotExist` when the object is missing, `InvalidInput` with ffprobe's reason
/// when the file is not readable media, `JobTimeout`, `InternalError` when ffprobe cannot start.
public struct MediaInfoWorker: MediaWorker, FFmpegWorker {
    public let tag = "MediaInfo"

    let configuration: FFmpegConfiguration
    private let logger: Logger

    /// - Parameters:
    ///   - configuration: where ffprobe is.
    ///   - logger: receives one debug line per job; the worker never creates a logger itself.
    public init(configuration: FFmpegConfiguration = FFmpegConfiguration(), logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// MediaInfo writes no file.
    static var writesOutput: Bool { false }

    /// A MediaInfo operation has no fields of its own.
    static func options(_ operation: XMLTree) throws(CIError) {}

    /// Probes the input and returns `WorkResult(mediaInfo:)`; failures are `WorkFailure`s.
    func perform(_ job: Job, input: JobInput, options: Void, context: WorkContext) async throws -> WorkResult {
        logger.debug("probing media", metadata: ["job.id": "\(job.id)", "input": "\(input.displayName)"])
        let probe = try await MediaProbe.run(path: input.path, displayName: input.displayName, configuration: configuration)
        context.reportProgress(100)
        return WorkResult(mediaInfo: probe.mediaInfo())
    }
}
