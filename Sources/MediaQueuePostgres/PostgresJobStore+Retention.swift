public import MediaQueueCore
import PostgresNIO

/// Removing what is over (the retention service's sweep; see `JobStore.purgeEnded`).
extension PostgresJobStore {
    /// Every id used here grows with time, so "made before the cutoff" is a range of a unique
    /// index: a sweep reads the old end of each table, not the whole of it. Each DELETE repeats
    /// its conditions: under READ COMMITTED a row another transaction changed meanwhile (a
    /// redriven delivery) is checked again against the DELETE's own conditions only.
    public func purgeEnded(before cutoff: Timestamp, limit: Int, keeping: Set<JobID>) async throws -> PurgedRecords {
        let (jobFloor, deliveryFloor, runFloor) = (
            timeOrderedIDFloor("j", at: cutoff), timeOrderedIDFloor("e", at: cutoff), timeOrderedIDFloor("i", at: cutoff)
        )
        let kept = keeping.map(\.rawValue)
        let logger = self.logger
        return try await transaction { connection in
            let jobs = try await connection.rows(
                """
                DELETE FROM jobs WHERE seq IN (
                    SELECT seq FROM jobs
                    WHERE id < \(jobFloor) AND state IN ('Success', 'Failed', 'Cancel') AND end_time < \(cutoff.milliseconds)
                        AND NOT (id = ANY(\(kept)))
                        AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.job_id = jobs.id AND outbox.status = 'pending')
                    ORDER BY id LIMIT \(limit))
                AND state IN ('Success', 'Failed', 'Cancel')
                AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.job_id = jobs.id AND outbox.status = 'pending')
                RETURNING 1
                """,
                logger: logger
            ).count
            let deliveries = try await connection.rows(
                """
                DELETE FROM outbox WHERE id IN (
                    SELECT id FROM outbox WHERE id < \(deliveryFloor) AND status IN ('delivered', 'dead') ORDER BY id LIMIT \(limit))
                AND status IN ('delivered', 'dead')
                RETURNING 1
                """,
                logger: logger
            ).count
            // A run's end is in its document (`updateTime`, its last change).
            let ended = try await connection.rows(
                """
                SELECT seq, version, body FROM workflow_runs
                WHERE id < \(runFloor) AND state != 'Running'
                    AND NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.job_id = workflow_runs.id AND outbox.status = 'pending')
                ORDER BY id LIMIT \(limit)
                """,
                logger: logger
            ).map(Self.run).filter { $0.updateTime < cutoff }.map(\.sequence)
            let runs = ended.isEmpty ? 0 : try await connection.rows(
                "DELETE FROM workflow_runs WHERE seq = ANY(\(ended)) AND state != 'Running' RETURNING 1", logger: logger
            ).count
            return PurgedRecords(jobs: jobs, deliveries: deliveries, runs: runs)
        }
    }
}
