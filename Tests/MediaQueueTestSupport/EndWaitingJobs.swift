public import MediaQueueCore

extension JobStore {
    /// Claims up to `limit` waiting jobs as `owner` and ends them in `state` at `now`, as a
    /// dispatcher that ran them would; returns them as claimed.
    @discardableResult
    public func endWaitingJobs(_ state: JobState, owner: String, now: Timestamp, limit: Int = 10) async throws -> [Job] {
        let claimed = try await claimJobs(owner: owner, now: now, leaseUntil: now + .seconds(60), limit: limit)
        _ = try await finish(claimed.map { job in
            var done = job
            done.state = state
            done.endTime = now
            return FinishedJob(job: done, outbox: [])
        }, owner: owner)
        return claimed
    }
}
