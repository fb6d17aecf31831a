public import Logging
public import MediaQueueCore
public import ServiceLifecycle
import Synchronization

/// Settings of the workflow service.
public struct WorkflowServiceOptions: Sendable {
    /// How often every running run is looked at, and the uploads a crash interrupted replayed.
    public var scanInterval: Duration
    /// How old an upload's arrival must be before it is replayed (its upload may still be in progress before).
    public var arrivalGrace: Duration
    /// Runs read per store call while looking through the running ones.
    public var pageSize: Int

    public init(scanInterval: Duration = .seconds(10), arrivalGrace: Duration = .seconds(300), pageSize: Int = 100) {
        self.scanInterval = scanInterval
        self.arrivalGrace = arrivalGrace
        precondition(pageSize > 0, "a page of no runs would look at none")
        self.pageSize = pageSize
    }
}

/// Moves workflow runs on with `WorkflowRunner.advance`, which starts what a run's ended jobs
/// made ready and announces the runs that ended: at once for the runs whose jobs this node's
/// dispatcher ended (`RunsToAdvance`), and every `scanInterval` for every running run (jobs ended
/// elsewhere: cancelled through the API, or on a node that died before it advanced the run). At
/// that interval it also replays the uploads whose runs a crash kept from starting. Any node's
/// service may do either for any run: the runner's versioned updates and the runs' origins keep
/// each step once.
public struct WorkflowService: Service {
    let runner: WorkflowRunner
    let store: any JobStore
    let storage: any ObjectStorage
    let endedRuns: RunsToAdvance
    let options: WorkflowServiceOptions
    let time: any TimeSource
    let logger: Logger

    public init(
        runner: WorkflowRunner, store: any JobStore, storage: any ObjectStorage, endedRuns: RunsToAdvance,
        options: WorkflowServiceOptions = WorkflowServiceOptions(), time: any TimeSource = SystemTimeSource(), logger: Logger
    ) {
        self.time = time
        self.runner = runner
        self.store = store
        self.storage = storage
        self.options = options
        self.endedRuns = endedRuns
        self.logger = logger
    }

    public func run() async throws {
        var lastScan: Timestamp?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if let last = lastScan, time.now < last + options.scanInterval {
                await advance(endedRuns.take())
                // A shutdown ends the wait: stopping should not take up to a scan interval.
                let timeout = Duration.milliseconds((last + options.scanInterval).milliseconds - time.now.milliseconds)
                await cancelWhenGracefulShutdown { [endedRuns] in await endedRuns.wait(upTo: timeout) }
                continue
            }
            _ = endedRuns.take()  // the scan looks at them too
            do {
                // A shutdown ends the replay between arrivals: with object storage away, each can
                // wait out a timeout, and the rest wait for the next start.
                let failures = try await cancelWhenGracefulShutdown { [runner, options, storage] in
                    try await runner.replayArrivals(olderThan: options.arrivalGrace, storage: storage)
                }
                for (arrival, error) in failures {
                    logger.error("cannot start the workflow runs of an upload", metadata: [
                        "bucket": "\(arrival.bucket)", "object": "\(arrival.key)", "error": "\(error)",
                    ])
                }
            } catch {
                logger.error("cannot replay the uploads a crash interrupted", metadata: ["error": "\(error)"])
            }
            guard !Task.isShuttingDownGracefully else { break }
            await advanceRunningRuns()
            // From its end: a scan that takes longer than the interval is not followed by
            // another at once, and the runs named meanwhile are advanced first.
            lastScan = time.now
        }
    }

    /// Advances the runs named, as they are now.
    func advance(_ ids: Set<String>) async {
        for id in ids {
            do {
                if let run = try await store.run(id: id) { try await runner.advance(run) }
            } catch {
                logAdvanceFailure(error, run: id)
            }
        }
    }

    /// A node waiting for room in its full queue is a wait, not a failure: a burst of uploads
    /// would otherwise log an error for each of its runs on every scan, for up to the hour.
    private func logAdvanceFailure(_ error: any Error, run: String) {
        if let refusal = error as? CIError, refusal.code == .queueFull {
            logger.debug("a workflow run waits for room in its queue", metadata: ["run.id": "\(run)"])
        } else {
            logger.error("cannot advance a workflow run", metadata: ["run.id": "\(run)", "error": "\(error)"])
        }
    }

    /// One look at every running run.
    public func advanceRunningRuns() async {
        var after: Int64 = 0
        while !Task.isCancelled {
            let page: [WorkflowRun]
            do {
                page = try await store.runningRuns(after: after, limit: options.pageSize)
            } catch {
                logger.error("cannot read the running workflow runs", metadata: ["error": "\(error)"])
                return
            }
            for run in page {
                do {
                    try await runner.advance(run)
                } catch {
                    logAdvanceFailure(error, run: run.id)
                }
            }
            guard page.count == options.pageSize, let last = page.last else { return }
            after = last.sequence
        }
    }
}

/// The runs whose jobs this node's dispatcher recorded as ended, for the workflow service to
/// advance; the dispatcher adds them after each completion batch.
public final class RunsToAdvance: Sendable {
    private let ids = Mutex<Set<String>>([])
    private let wakeup: Wakeup

    public init(time: any TimeSource = SystemTimeSource()) {
        wakeup = Wakeup(time: time)
    }

    func add(_ runIDs: [String]) {
        guard !runIDs.isEmpty else { return }
        ids.withLock { $0.formUnion(runIDs) }
        wakeup.signal()
    }

    /// The runs added since the last call.
    func take() -> Set<String> {
        ids.withLock { ids in
            defer { ids = [] }
            return ids
        }
    }

    /// Returns when runs were added, or after `timeout`.
    func wait(upTo timeout: Duration) async {
        await wakeup.wait(upTo: timeout)
    }
}
