import GRDB
public import MediaQueueCore

/// Counts for metrics and the console, read from the indexes the dispatcher and the relays use
/// (`jobs_dispatch`, `outbox_due`), so finished jobs and delivered rows are never scanned.
extension SQLiteJobStore {
    public func queueStatistics(bucket: String?) async throws -> [QueueStatistics] {
        try await read { db in
            let queues: [Row] = if let bucket {
                try Row.fetchAll(db, sql: "SELECT id, bucket FROM queues WHERE bucket = ? ORDER BY ordinal", arguments: [bucket])
            } else {
                try Row.fetchAll(db, sql: "SELECT id, bucket FROM queues ORDER BY ordinal")
            }
            let counts = try db.cachedStatement(sql: """
                SELECT state, job_level, COUNT(*), MIN(seq) FROM jobs
                WHERE queue_id = ? AND state IN ('Submitted', 'Pause', 'Running') GROUP BY state, job_level
                """)
            let created = try db.cachedStatement(sql: "SELECT creation_time FROM jobs WHERE seq = ?")
            return try queues.map { queue in
                var statistics = QueueStatistics(queueID: QueueID(rawValue: queue[0]), bucket: queue[1])
                var oldestSequence: Int64?
                for row in try Row.fetchAll(counts, arguments: [statistics.queueID.rawValue]) {
                    guard let state = JobState(rawValue: row[0]) else { continue }
                    statistics.count(state: state, level: row[1], jobs: row[2], created: nil)
                    let first: Int64 = row[3]
                    if state != .running, oldestSequence.map({ first < $0 }) ?? true { oldestSequence = first }
                }
                if let oldestSequence, let milliseconds = try Int64.fetchOne(created, arguments: [oldestSequence]) {
                    statistics.oldestWaiting = Timestamp(milliseconds: milliseconds)
                }
                return statistics
            }
        }
    }

    public func outboxStatistics() async throws -> OutboxStatistics {
        try await read { db in
            var statistics = OutboxStatistics()
            let rows = try Row.fetchAll(db, sql: "SELECT status, kind, COUNT(*) FROM outbox WHERE status IN ('pending', 'dead') GROUP BY status, kind")
            for row in rows {
                let channel: NotifyConfig.Channel = (row[1] as String) == Self.kind(.url) ? .url : .tdmq
                if (row[0] as String) == "dead" {
                    statistics.dead[channel, default: 0] += row[2]
                } else {
                    statistics.pending[channel, default: 0] += row[2]
                }
            }
            return statistics
        }
    }
}

extension SQLiteJobStore {
    /// Reads the jobs submitted since `since` from the first one's sequence number on (found by
    /// a binary search over the primary key, since submission times grow with it), through the
    /// `jobs_bucket` index: no index on submission times is needed, and older jobs are not read.
    public func activity(bucket: String, since: Timestamp, now: Timestamp) async throws -> JobActivity {
        try await read { db in
            let first = try Self.firstSequence(createdAtOrAfter: since, db)
            var activity = JobActivity()
            let rows = try Row.fetchCursor(db, sql: "SELECT state, end_time FROM jobs WHERE bucket = ? AND seq >= ?", arguments: [bucket, first])
            while let row = try rows.next() {
                guard let state = JobState(rawValue: row[0]) else { continue }
                activity.count(state: state, endTime: (row[1] as Int64?).map(Timestamp.init(milliseconds:)), now: now)
            }
            return activity
        }
    }

    /// The sequence number of the first job submitted at or after `time` (one past the last job
    /// when none was).
    static func firstSequence(createdAtOrAfter time: Timestamp, _ db: Database) throws -> Int64 {
        let next = try db.cachedStatement(sql: "SELECT seq, creation_time FROM jobs WHERE seq >= ? ORDER BY seq LIMIT 1")
        var low: Int64 = 0
        var high = (try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM jobs") ?? 0) + 1
        while low < high {
            let middle = low + (high - low) / 2
            guard let row = try Row.fetchOne(next, arguments: [middle]) else {
                high = middle
                continue
            }
            if (row[1] as Int64) >= time.milliseconds {
                high = middle
            } else {
                low = (row[0] as Int64) + 1
            }
        }
        return low
    }
}
