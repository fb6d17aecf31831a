/// Which callback deliveries a listing or a redrive is about (every field optional; all given
/// must match).
public struct DeliveryFilter: Sendable, Hashable {
    public var bucket: String?
    /// The queue of the delivery's job.
    public var queueID: QueueID?
    /// `OutboxEntry.endpoint`: `host:port` of a URL, `mq:<region>` of a TDMQ destination.
    public var endpoint: String?
    public var createdFrom: Timestamp?
    public var createdTo: Timestamp?
    /// Event ids (a redrive of one delivery).
    public var ids: Set<String>?

    public init(
        bucket: String? = nil, queueID: QueueID? = nil, endpoint: String? = nil, createdFrom: Timestamp? = nil, createdTo: Timestamp? = nil,
        ids: Set<String>? = nil
    ) {
        self.bucket = bucket
        self.queueID = queueID
        self.endpoint = endpoint
        self.createdFrom = createdFrom
        self.createdTo = createdTo
        self.ids = ids
    }

    /// Whether `entry`, a delivery of a job in `queueID`, matches.
    public func matches(_ entry: OutboxEntry, queueID jobQueue: QueueID?) -> Bool {
        (bucket.map { entry.bucket == $0 } ?? true)
            && (queueID.map { jobQueue == $0 } ?? true)
            && (endpoint.map { entry.endpoint == $0 } ?? true)
            && (createdFrom.map { entry.createdAt >= $0 } ?? true)
            && (createdTo.map { entry.createdAt <= $0 } ?? true)
            && (ids.map { $0.contains(entry.id) } ?? true)
    }
}
