public import MediaQueueXML

/// One media job: what was asked (`input`, `operation` as submitted), where it waits, and how far
/// it got.
public struct Job: Sendable, Hashable {
    /// What was asked, fixed when the job is created and shared by every copy of the job: a job
    /// is copied at each step of its way (store, claim, worker, completion), and copying these
    /// fields one by one (two dozen reference counts) showed in profiles of the dispatch path.
    /// Each field is read as `shared.request.x`: a computed `request` would copy the whole struct,
    /// counting all its references, to return one field.
    private let shared: Shared

    public var id: JobID { shared.request.id }
    public var bucket: String { shared.request.bucket }
    public var queueID: QueueID { shared.request.queueID }
    public var tag: String { shared.request.tag }
    /// CI's `JobLevel`: 0, 1 or 2; higher runs first.
    public var jobLevel: Int { shared.request.jobLevel }
    /// The `<Input>` element as submitted.
    public var input: XMLTree { shared.request.input }
    /// The `<Operation>` element as submitted (without `Tag`), echoed back in `JobsDetail`.
    public var operation: XMLTree { shared.request.operation }
    public var callback: CallbackOverride { shared.request.callback }
    public var creationTime: Timestamp { shared.request.creationTime }

    public var state: JobState
    /// Submission order within the store, assigned when the job is stored; ties in `jobLevel` run
    /// in this order.
    public var sequence: Int64
    public var startTime: Timestamp?
    public var endTime: Timestamp?
    public var progress: Int
    /// `Success` unless the job failed; then a CI-style failure code.
    public var code: String
    public var message: String
    /// `<MediaResult>` once the job succeeded.
    public var mediaResult: XMLTree?
    /// `<MediaInfo>` of the output (or, for MediaInfo jobs, of the input).
    public var mediaInfo: XMLTree?
    /// Which process runs the job, and until when its claim holds unless renewed.
    public var lease: Lease?
    /// How many times the job has been claimed and not handed back (more than once after a
    /// process died while running it; see `DispatcherOptions.maxAttempts`).
    public var attempts: Int
    /// Set when a running job was asked to stop; the process running it ends it as `Cancel`.
    public var cancelRequested: Bool

    public struct Lease: Sendable, Hashable {
        public var owner: String
        public var expiresAt: Timestamp
        public init(owner: String, expiresAt: Timestamp) {
            self.owner = owner
            self.expiresAt = expiresAt
        }
    }

    public init(
        id: JobID = .generate(), bucket: String, queueID: QueueID, tag: String, state: JobState = .submitted,
        jobLevel: Int = 0, sequence: Int64 = 0, input: XMLTree, operation: XMLTree,
        callback: CallbackOverride = CallbackOverride(), creationTime: Timestamp, startTime: Timestamp? = nil,
        endTime: Timestamp? = nil, progress: Int = 0, code: String = "Success", message: String = "",
        mediaResult: XMLTree? = nil, mediaInfo: XMLTree? = nil, lease: Lease? = nil, attempts: Int = 0,
        cancelRequested: Bool = false
    ) {
        self.shared = Shared(Request(
            id: id, bucket: bucket, queueID: queueID, tag: tag, jobLevel: jobLevel, input: input, operation: operation,
            callback: callback, creationTime: creationTime
        ))
        self.state = state
        self.sequence = sequence
        self.startTime = startTime
        self.endTime = endTime
        self.progress = progress
        self.code = code
        self.message = message
        self.mediaResult = mediaResult
        self.mediaInfo = mediaInfo
        self.lease = lease
        self.attempts = attempts
        self.cancelRequested = cancelRequested
    }

    /// `Input.Object` or `Input.Url`, checked again as at submission (the stored XML is read back).
    public func inputSource() throws(CIError) -> InputSource { try InputSource(input) }

    /// `Operation.UserData`.
    public var userData: String? { operation.text("UserData") }

    private struct Request: Sendable, Hashable {
        let id: JobID
        let bucket: String
        let queueID: QueueID
        let tag: String
        let jobLevel: Int
        let input: XMLTree
        let operation: XMLTree
        let callback: CallbackOverride
        let creationTime: Timestamp
    }

    /// The one allocation every copy of a job shares.
    private final class Shared: Sendable, Hashable {
        let request: Request
        init(_ request: Request) { self.request = request }
        static func == (lhs: Shared, rhs: Shared) -> Bool { lhs === rhs || lhs.request == rhs.request }
        func hash(into hasher: inout Hasher) { hasher.combine(request) }
    }
}
