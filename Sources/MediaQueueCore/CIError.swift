/// An error reported to a client the way CI reports it: a code, a message, and the element or
/// resource it is about.
///
/// Over HTTP it becomes CI's `<Error>` body; over AMQP the submission is dead-lettered with the
/// code and message in headers.
public struct CIError: Error, Sendable, Hashable, CustomStringConvertible {
    /// CI-style error codes (`InvalidArgument`, `NoSuchJob`, ...).
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// Malformed XML, a missing required element, a value out of range.
        public static let invalidArgument = Code("InvalidArgument")
        /// A job type MediaQueue does not run.
        public static let unsupportedTag = Code("InvalidArgument")
        /// The queue named by `QueueId` does not exist in the bucket.
        public static let noSuchQueue = Code("NoSuchQueue")
        /// The job id is unknown.
        public static let noSuchJob = Code("NoSuchJob")
        /// The bucket has no object with that key.
        public static let noSuchKey = Code("NoSuchKey")
        /// The template id is unknown in the bucket.
        public static let noSuchTemplate = Code("NoSuchTemplate")
        /// The workflow id is unknown in the bucket.
        public static let noSuchWorkflow = Code("NoSuchWorkflow")
        /// The template or workflow is in use and cannot be removed.
        public static let resourceInUse = Code("ResourceInUse")
        /// The queue already holds `MaxSize` unfinished jobs.
        public static let queueFull = Code("QueueFull")
        /// The job is in a state that does not allow the operation (e.g. cancelling a finished job).
        public static let invalidJobState = Code("InvalidJobState")
        /// The request is not signed, or signed wrongly, or its key may not do this.
        public static let accessDenied = Code("AccessDenied")
        /// Something failed inside MediaQueue; details are in its log.
        public static let internalError = Code("InternalError")
    }

    public var code: Code
    public var message: String
    /// The element the error is about, e.g. `Operation.JobLevel`; nil when it is about the whole request.
    public var element: String?

    public init(_ code: Code, _ message: String, element: String? = nil) {
        self.code = code
        self.message = message
        self.element = element
    }

    public var description: String { "\(code): \(message)" }

    static func invalid(_ element: String, _ message: String) -> CIError {
        CIError(.invalidArgument, "\(element): \(message)", element: element)
    }

    /// A queue created or renamed to a name its bucket's other queue has.
    public static func queueNameTaken(_ name: String) -> CIError {
        invalid("Name", "the bucket already has a queue named '\(name)'")
    }
}
