/// The workers this process runs, by tag: what the intake validates against and what the
/// dispatcher runs.
public struct WorkerRegistry: Sendable {
    private let workers: [String: any MediaWorker]

    public init(_ workers: [any MediaWorker]) {
        self.workers = Dictionary(workers.map { ($0.tag, $0) }, uniquingKeysWith: { _, last in last })
    }

    public var tags: [String] { workers.keys.sorted() }

    public func worker(for tag: String) -> (any MediaWorker)? { workers[tag] }

    /// Refuses an operation whose tag no worker runs, then lets the tag's worker check its fields.
    public func validate(_ operation: CreateMediaJobsRequest.Operation) throws(CIError) {
        guard let worker = workers[operation.tag] else {
            throw CIError(
                .unsupportedTag,
                "Tag: '\(operation.tag)' is not a job type this service runs (supported: \(tags.joined(separator: ", ")))",
                element: "Tag"
            )
        }
        try worker.validate(operation)
    }
}

/// Bucket names as CI spells them (`<name>-<appid>`): they also name folders in storage, so
/// nothing but lowercase letters, digits and `-` is allowed.
public enum BucketName {
    public static func validate(_ name: String) throws(CIError) {
        let valid = (1...63).contains(name.utf8.count)
            && name.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }
            && !name.hasPrefix("-")
        if !valid {
            throw CIError(.invalidArgument, "bucket name '\(name)' may hold only lowercase letters, digits and '-' (1 to 63)", element: "Bucket")
        }
    }
}
