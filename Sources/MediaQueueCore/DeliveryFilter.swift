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

/// One callback delivery with where it stands.
public struct OutboxDelivery: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable {
        /// Waiting for its first attempt or a retry (`entry.nextAttempt`).
        case pending
        case delivered
        /// Used up its attempts; waits for a redrive.
        case dead
    }

    public var entry: OutboxEntry
    public var status: Status
    public var deliveredAt: Timestamp?

    public init(entry: OutboxEntry, status: Status, deliveredAt: Timestamp? = nil) {
        self.entry = entry
        self.status = status
        self.deliveredAt = deliveredAt
    }
}

/// What a bucket's jobs did lately: for the console's overview.
public struct JobActivity: Sendable, Hashable {
    /// Jobs submitted since the period's start, by their state now.
    public var byState: [JobState: Int]
    /// Of those, how many ended in each minute of the last hour, oldest minute first (60 values).
    public var endedPerMinute: [Int]

    public init(byState: [JobState: Int] = [:], endedPerMinute: [Int] = Array(repeating: 0, count: 60)) {
        self.byState = byState
        self.endedPerMinute = endedPerMinute
    }

    /// Counts a job submitted in the period; `now` places its end among the last hour's minutes.
    public mutating func count(state: JobState, endTime: Timestamp?, now: Timestamp) {
        byState[state, default: 0] += 1
        guard state.isTerminal, let endTime else { return }
        let minutesAgo = (now.milliseconds - endTime.milliseconds) / 60_000
        if endTime <= now, minutesAgo < Int64(endedPerMinute.count) {
            endedPerMinute[endedPerMinute.count - 1 - Int(minutesAgo)] += 1
        }
    }
}
