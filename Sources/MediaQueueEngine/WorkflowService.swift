public import Logging
public import MediaQueueCore
public import ServiceLifecycle

/// Moves workflow runs on: on a wake-up (the dispatcher ended a workflow's job) and on every
/// poll, it looks at each running run and lets `WorkflowRunner.advance` start what its ended
/// jobs made ready and announce the runs that ended; and it replays the uploads whose runs a
/// crash kept from starting. Any node's service may do either for any run: the runner's
/// versioned updates and the runs' origins keep each step once.
public struct WorkflowService: Service {
    let runner: WorkflowRunner
    let store: any JobStore
    let storage: any ObjectStorage
    let wakeup: Wakeup
    let pollInterval: Duration
    /// How old an upload's arrival must be before it is replayed (its upload may still be in progress before).
    let arrivalGrace: Duration
    let logger: Logger

    /// Runs read per store call while looking through the running ones.
    static let pageSize = 100

    public init(
        runner: WorkflowRunner, store: any JobStore, storage: any ObjectStorage, wakeup: Wakeup, pollInterval: Duration = .seconds(1),
        arrivalGrace: Duration = .seconds(300), logger: Logger
    ) {
        self.runner = runner
        self.store = store
        self.storage = storage
        self.arrivalGrace = arrivalGrace
        self.wakeup = wakeup
        self.pollInterval = pollInterval
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                for (arrival, error) in try await runner.replayArrivals(olderThan: arrivalGrace, storage: storage) {
                    logger.error("cannot start the workflow runs of an upload", metadata: [
                        "bucket": "\(arrival.bucket)", "object": "\(arrival.key)", "error": "\(error)",
                    ])
                }
            } catch {
                logger.error("cannot replay the uploads a crash interrupted", metadata: ["error": "\(error)"])
            }
            await advanceRunningRuns()
            await wakeup.wait(upTo: pollInterval)
        }
    }

    /// One look at every running run.
    public func advanceRunningRuns() async {
        var after: Int64 = 0
        while !Task.isCancelled {
            let page: [WorkflowRun]
            do {
                page = try await store.runningRuns(after: after, limit: Self.pageSize)
            } catch {
                logger.error("cannot read the running workflow runs", metadata: ["error": "\(error)"])
                return
            }
            for run in page {
                do {
                    try await runner.advance(run)
                } catch {
                    logger.error("cannot advance a workflow run", metadata: ["run.id": "\(run.id)", "error": "\(error)"])
                }
            }
            guard page.count == Self.pageSize, let last = page.last else { return }
            after = last.sequence
        }
    }
}
