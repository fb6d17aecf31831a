public import MediaQueueCore
import PostgresNIO

/// Removing what is over (the retention service's sweep; see `JobStore.purgeEnded`).
extension PostgresJobStore {
    /// Every id used here grows with time, so "made before the cutoff" is a range of a unique
    /// index: a sweep reads the old end of each table, not the whole of it.
    public func purgeEnded(before cutoff: Timestamp, limit: Int) async throws -> PurgedRecords {
        let (jobFloor, deliveryFloor, runFloor) = (
            timeOrderedIDFloor("j", at: cutoff), timeOrderedIDFloor("e", at: cutoff), timeOrderedIDFloor("i", at: cutoff)
        )
        let logger = self.logger
        return try await transaction { connection in
            let jobs = try await connection.rows(
                """
                DELETE FROM jobs WHERE seq IN (
                    SELECT seq FROM jobs
                    WHERE id < \(jobFloor) AND state IN ('Success', 'Failed', 'Cancel') AND end_time < \(cutoff.milliseconds)
                        AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.job_id = jobs.id AND outbox.status = 'pending')
                    ORDER BY id LIMIT \(limit))
                RETURNING 1
                """,
                logger: logger
            ).count
            let deliveries = try await connection.rows(
                """
                DELETE FROM outbox WHERE id IN (
                    SELECT id FROM outbox WHERE id < \(deliveryFloor) AND status IN ('delivered', 'dead') ORDER BY id LIMIT \(limit))
                RETURNING 1
                """,
                logger: logger
            ).count
            let runs = try await connection.rows(
                """
                DELETE FROM workflow_runs WHERE seq IN (
                    SELECT seq FROM workflow_runs WHERE id < \(runFloor) AND state != 'Running' ORDER BY id LIMIT \(limit))
                RETURNING 1
                """,
                logger: logger
            ).count
            return PurgedRecords(jobs: jobs, deliveries: deliveries, runs: runs)
        }
    }
}
