public import MediaQueueCore
import PostgresNIO

/// Counts for metrics and the console, read from the indexes the claims and the relays use, so
/// finished jobs and delivered rows are never scanned.
extension PostgresJobStore {
    public func queueStatistics(bucket: String?) async throws -> [QueueStatistics] {
        let queues: PostgresQuery = if let bucket {
            "SELECT id, bucket FROM queues WHERE bucket = \(bucket) ORDER BY ordinal"
        } else {
            "SELECT id, bucket FROM queues ORDER BY ordinal"
        }
        return try await read { connection in
            var result: [QueueStatistics] = []
            for row in try await connection.rows(queues, logger: logger) {
                var columns = Columns(row)
                var statistics = QueueStatistics(queueID: QueueID(rawValue: try columns.next()), bucket: try columns.next())
                let counts: PostgresQuery = """
                    SELECT state, job_level, COUNT(*), MIN(seq) FROM jobs
                    WHERE queue_id = \(statistics.queueID.rawValue) AND state IN ('Submitted', 'Pause', 'Running')
                    GROUP BY state, job_level
                    """
                var oldestSequence: Int64?
                for count in try await connection.rows(counts, logger: logger) {
                    var columns = Columns(count)
                    guard let state = JobState(rawValue: try columns.next(String.self)) else { continue }
                    let level: Int = try columns.next()
                    let jobs: Int = try columns.next()
                    let first: Int64 = try columns.next()
                    statistics.count(state: state, level: level, jobs: jobs, created: nil)
                    if state != .running, oldestSequence.map({ first < $0 }) ?? true { oldestSequence = first }
                }
                if let oldestSequence,
                   let created = try await connection.value("SELECT creation_time FROM jobs WHERE seq = \(oldestSequence)", as: Int64.self, logger: logger) {
                    statistics.oldestWaiting = Timestamp(milliseconds: created)
                }
                result.append(statistics)
            }
            return result
        }
    }

    public func outboxStatistics() async throws -> OutboxStatistics {
        try await read { connection in
            var statistics = OutboxStatistics()
            // One query per status: each is answered by its partial index (`outbox_due`,
            // `outbox_dead`), where `status IN (…)` matched neither and read every delivered row.
            let select: PostgresQuery = """
                SELECT 'pending', kind, COUNT(*) FROM outbox WHERE status = 'pending' GROUP BY kind
                UNION ALL SELECT 'dead', kind, COUNT(*) FROM outbox WHERE status = 'dead' GROUP BY kind
                """
            for row in try await connection.rows(select, logger: logger) {
                var columns = Columns(row)
                let status: String = try columns.next()
                let channel: NotifyConfig.Channel = try columns.next(String.self) == Self.kind(.url) ? .url : .tdmq
                let count: Int = try columns.next()
                if status == "dead" {
                    statistics.dead[channel, default: 0] += count
                } else {
                    statistics.pending[channel, default: 0] += count
                }
            }
            return statistics
        }
    }

    /// The jobs submitted since `since`, read from the first one's sequence number on (a binary
    /// search over the primary key, since submission times grow with it) through `jobs_bucket`.
    public func activity(bucket: String, since: Timestamp, now: Timestamp) async throws -> JobActivity {
        try await read { connection in
            let first = try await Self.firstSequence(createdAtOrAfter: since, connection, logger: logger)
            var activity = JobActivity()
            let select: PostgresQuery = "SELECT state, end_time FROM jobs WHERE bucket = \(bucket) AND seq >= \(first)"
            for try await (state, endTime) in try await connection.query(select, logger: logger).decode((String, Int64?).self) {
                guard let state = JobState(rawValue: state) else { continue }
                activity.count(state: state, endTime: endTime.map(Timestamp.init(milliseconds:)), now: now)
            }
            return activity
        }
    }

    /// The sequence number of the first job submitted at or after `time` (one past the last job
    /// when none was).
    static func firstSequence(createdAtOrAfter time: Timestamp, _ connection: PostgresConnection, logger: Logger) async throws -> Int64 {
        var low: Int64 = 0
        var high = (try await connection.value("SELECT COALESCE(MAX(seq), 0) FROM jobs", as: Int64.self, logger: logger) ?? 0) + 1
        while low < high {
            let middle = low + (high - low) / 2
            let next: PostgresQuery = "SELECT seq, creation_time FROM jobs WHERE seq >= \(middle) ORDER BY seq LIMIT 1"
            guard let row = try await connection.row(next, logger: logger) else {
                high = middle
                continue
            }
            var columns = Columns(row)
            let sequence: Int64 = try columns.next()
            if try columns.next(Int64.self) >= time.milliseconds {
                high = middle
            } else {
                low = sequence + 1
            }
        }
        return low
    }
}
