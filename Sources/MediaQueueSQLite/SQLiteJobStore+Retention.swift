import GRDB
public import MediaQueueCore

/// Removing what is over (the retention service's sweep; see `JobStore.purgeEnded`).
extension SQLiteJobStore {
    /// Every id used here grows with time, so "made before the cutoff" is a range of a unique
    /// index: a sweep reads the old end of each table, not the whole of it.
    public func purgeEnded(before cutoff: Timestamp, limit: Int) async throws -> PurgedRecords {
        try await transaction { db in
            var purged = PurgedRecords()
            // Pending deliveries are few, and found on the `outbox_due` index.
            try db.execute(
                sql: """
                    DELETE FROM jobs WHERE seq IN (
                        SELECT seq FROM jobs
                        WHERE id < ? AND state IN ('Success', 'Failed', 'Cancel') AND end_time < ?
                            AND id NOT IN (SELECT job_id FROM outbox WHERE status = 'pending')
                        ORDER BY id LIMIT ?)
                    """,
                arguments: [timeOrderedIDFloor("j", at: cutoff), cutoff.milliseconds, limit]
            )
            purged.jobs = db.changesCount
            // `+status`: on the `outbox_due` index SQLite would read every delivered row, and sort.
            try db.execute(
                sql: """
                    DELETE FROM outbox WHERE id IN (
                        SELECT id FROM outbox WHERE id < ? AND +status IN ('delivered', 'dead') ORDER BY id LIMIT ?)
                    """,
                arguments: [timeOrderedIDFloor("e", at: cutoff), limit]
            )
            purged.deliveries = db.changesCount
            try db.execute(
                sql: """
                    DELETE FROM workflow_runs WHERE seq IN (
                        SELECT seq FROM workflow_runs WHERE id < ? AND state != 'Running' ORDER BY id LIMIT ?)
                    """,
                arguments: [timeOrderedIDFloor("i", at: cutoff), limit]
            )
            purged.runs = db.changesCount
            return purged
        }
    }
}
