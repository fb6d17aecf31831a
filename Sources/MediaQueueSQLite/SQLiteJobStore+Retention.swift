import GRDB
public import MediaQueueCore

/// Removing what is over (the retention service's sweep; see `JobStore.purgeEnded`).
extension SQLiteJobStore {
    /// Every id used here grows with time, so "made before the cutoff" is a range of a unique
    /// index: a sweep reads the old end of each table, not the whole of it.
    public func purgeEnded(before cutoff: Timestamp, limit: Int, keeping: Set<JobID>) async throws -> PurgedRecords {
        try await transaction { db in
            var purged = PurgedRecords()
            // Pending deliveries are few, and found on the `outbox_due` index. A run's own
            // deliveries carry its id as their job id.
            let candidates = try Row.fetchAll(
                db,
                sql: """
                    SELECT seq, id FROM jobs
                    WHERE id < ? AND state IN ('Success', 'Failed', 'Cancel') AND end_time < ?
                        AND id NOT IN (SELECT job_id FROM outbox WHERE status = 'pending')
                    ORDER BY id LIMIT ?
                    """,
                arguments: [timeOrderedIDFloor("j", at: cutoff), cutoff.milliseconds, limit + keeping.count]
            )
            let delete = try db.cachedStatement(sql: "DELETE FROM jobs WHERE seq = ?")
            for row in candidates where purged.jobs < limit && !keeping.contains(JobID(rawValue: row[1])) {
                try delete.execute(arguments: [row[0] as Int64])
                purged.jobs += 1
            }
            // `+status`: on the `outbox_due` index SQLite would read every delivered row, and sort.
            try db.execute(
                sql: """
                    DELETE FROM outbox WHERE id IN (
                        SELECT id FROM outbox WHERE id < ? AND +status IN ('delivered', 'dead') ORDER BY id LIMIT ?)
                    """,
                arguments: [timeOrderedIDFloor("e", at: cutoff), limit]
            )
            purged.deliveries = db.changesCount
            // A run's end is in its document (`updateTime`, its last change).
            let runs = try Row.fetchAll(
                db,
                sql: """
                    SELECT seq, version, body FROM workflow_runs
                    WHERE id < ? AND state != 'Running' AND id NOT IN (SELECT job_id FROM outbox WHERE status = 'pending')
                    ORDER BY id LIMIT ?
                    """,
                arguments: [timeOrderedIDFloor("i", at: cutoff), limit]
            ).map(Self.run)
            for run in runs where run.updateTime < cutoff {
                try db.execute(sql: "DELETE FROM workflow_runs WHERE seq = ?", arguments: [run.sequence])
                purged.runs += 1
            }
            return purged
        }
    }
}
