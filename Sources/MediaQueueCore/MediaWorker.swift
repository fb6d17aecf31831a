public import MediaQueueXML

/// Runs one kind of job (one CI `Tag`). The dispatcher finds workers by tag; the intake asks them
/// to validate operations before anything is stored.
public protocol MediaWorker: Sendable {
    /// The CI tag this worker runs, e.g. `Snapshot`.
    var tag: String { get }

    /// Throws a `CIError` naming the offending element when the operation cannot run.
    func validate(_ operation: CreateMediaJobsRequest.Operation) throws(CIError)

    /// Does the work. Task cancellation means the job was cancelled: stop promptly (end child
    /// processes) and throw `CancellationError`. Any other thrown error fails the job.
    func run(_ job: Job, context: WorkContext) async throws -> WorkResult
}

/// What a worker may use while it runs a job.
public struct WorkContext: Sendable {
    /// The job's bucket, as its objects are stored under.
    public var bucket: String
    /// Where the bucket's objects are read from and published to.
    public var storage: any ObjectStorage
    /// Fetches `Input.Url`; nil when this process does not fetch URLs (such jobs then fail).
    public var downloader: (any InputDownloader)?
    public var formatting: CIFormatting
    /// Reports progress, 0 to 100; cheap to call often (the dispatcher keeps the latest).
    public var reportProgress: @Sendable (Int) -> Void
    /// What the job's time limit is measured on.
    public var time: any TimeSource

    public init(
        bucket: String, storage: any ObjectStorage, downloader: (any InputDownloader)? = nil, formatting: CIFormatting,
        time: any TimeSource = SystemTimeSource(), reportProgress: @escaping @Sendable (Int) -> Void
    ) {
        self.bucket = bucket
        self.time = time
        self.storage = storage
        self.downloader = downloader
        self.formatting = formatting
        self.reportProgress = reportProgress
    }
}

/// A finished job's results.
public struct WorkResult: Sendable, Hashable {
    public var mediaResult: XMLTree?
    public var mediaInfo: XMLTree?

    public init(mediaResult: XMLTree? = nil, mediaInfo: XMLTree? = nil) {
        self.mediaResult = mediaResult
        self.mediaInfo = mediaInfo
    }
}

/// A failure that a worker reports as the job's `Code` and `Message` (e.g. `InputNotExist`).
public struct WorkFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    /// The object storage could not be reached, or kept failing, past its own retries: a
    /// failure of the service, not of the job, which the dispatcher hands back to its queue.
    public static let storageUnavailable = "StorageUnavailable"

    public static func inputNotExist(_ object: String) -> WorkFailure {
        WorkFailure(code: "InputNotExist", message: "the input object '\(object)' does not exist")
    }
}
