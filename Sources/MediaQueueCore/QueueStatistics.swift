/// What one queue holds right now: its unfinished jobs by state and level, for metrics and the
/// console.
public struct QueueStatistics: Sendable, Hashable {
    public var queueID: QueueID
    public var bucket: String
    /// Jobs `Running`.
    public var running: Int
    /// Jobs waiting to run (`Submitted`, or `Pause` while the queue is paused), by `JobLevel`:
    /// index 0, 1 and 2.
    public var waitingByLevel: [Int]
    /// The submission time of the oldest waiting job; nil when none waits.
    public var oldestWaiting: Timestamp?

    public init(queueID: QueueID, bucket: String, running: Int = 0, waitingByLevel: [Int] = [0, 0, 0], oldestWaiting: Timestamp? = nil) {
        self.queueID = queueID
        self.bucket = bucket
        self.running = running
        self.waitingByLevel = waitingByLevel
        self.oldestWaiting = oldestWaiting
    }

    /// Jobs waiting at every level.
    public var waiting: Int { waitingByLevel.reduce(0, +) }

    /// Counts one unfinished job.
    public mutating func count(state: JobState, level: Int, jobs: Int = 1, created: Timestamp?) {
        switch state {
        case .running:
            running += jobs
        case .submitted, .pause:
            waitingByLevel[min(max(level, 0), waitingByLevel.count - 1)] += jobs
            if let created, oldestWaiting.map({ created < $0 }) ?? true { oldestWaiting = created }
        case .success, .failed, .cancel:
            break
        }
    }
}
