public import Logging
public import MediaQueueCore
public import ServiceLifecycle

/// How long ended jobs, their deliveries and ended workflow runs are kept.
public struct RetentionOptions: Sendable {
    /// Records older than this are removed.
    public var retention: Duration
    /// How often the store is swept.
    public var interval: Duration
    /// Records of each kind removed per transaction, so other writers wait at most one batch.
    public var batchSize: Int
    /// Running workflow runs read per store call while looking for the tasks they still need.
    public var runsPageSize: Int

    public init(retention: Duration, interval: Duration = .seconds(3600), batchSize: Int = 1000, runsPageSize: Int = 100) {
        self.retention = retention
        self.interval = interval
        self.batchSize = batchSize
        precondition(runsPageSize > 0, "a page of no runs would find no tasks to keep")
        self.runsPageSize = runsPageSize
    }
}

/// Keeps the store from growing for ever: every `interval`, removes the jobs that ended more than
/// `retention` ago (once none of their callbacks is still to be delivered, and unless they are
/// tasks of a run still going), the deliveries queued before then that were delivered or went
/// dead, and the workflow runs that ended before then and whose end was announced
/// (`JobStore.purgeEnded`). Any node may sweep at any time; two sweeps at once remove each
/// record once.
public struct RetentionService: Service {
    let store: any JobStore
    let options: RetentionOptions
    let time: any TimeSource
    let logger: Logger

    public init(store: any JobStore, options: RetentionOptions, time: any TimeSource = SystemTimeSource(), logger: Logger) {
        self.store = store
        self.options = options
        self.time = time
        self.logger = logger
    }

    public func run() async throws {
        // A sweep may stop between any two batches: each is a transaction of its own.
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await sweep()
                try? await time.sleep(for: options.interval)
            }
        }
    }

    /// Removes everything over at this moment, a batch at a time; returns what went.
    @discardableResult
    public func sweep() async -> PurgedRecords {
        let cutoff = time.now - options.retention
        var removed = PurgedRecords()
        do {
            // A run that is still going reads its ended tasks' results for its next steps. A run
            // that starts after this look has no task old enough to be removed.
            let keeping = try await tasksOfRunningRuns()
            while !Task.isCancelled {
                let batch = try await store.purgeEnded(before: cutoff, limit: options.batchSize, keeping: keeping)
                removed.jobs += batch.jobs
                removed.deliveries += batch.deliveries
                removed.runs += batch.runs
                if max(batch.jobs, batch.deliveries, batch.runs) < options.batchSize { break }
            }
        } catch is CancellationError {
            // Stopping: the next start sweeps again.
        } catch {
            logger.error("cannot remove ended jobs past their retention", metadata: ["error": "\(error)"])
        }
        if removed.total > 0 {
            logger.info("removed records past their retention", metadata: [
                "jobs": "\(removed.jobs)", "deliveries": "\(removed.deliveries)", "runs": "\(removed.runs)",
            ])
        }
        return removed
    }

    private func tasksOfRunningRuns() async throws -> Set<JobID> {
        var jobs: Set<JobID> = []
        var after: Int64 = 0
        while true {
            let page = try await store.runningRuns(after: after, limit: options.runsPageSize)
            for run in page { jobs.formUnion(run.tasks.compactMap(\.jobID)) }
            guard page.count == options.runsPageSize, let last = page.last else { return jobs }
            after = last.sequence
        }
    }
}
