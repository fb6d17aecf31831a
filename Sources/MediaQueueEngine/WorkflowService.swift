public import Logging
public import MediaQueueCore
public import ServiceLifecycle

/// Moves workflow runs on: on a wake-up (the dispatcher ended a workflow's job) and on every
/// poll, it looks at each running run and lets `WorkflowRunner.advance` start what its ended
/// jobs made ready and announce the runs that ended. Any node's service may advance any run;
/// the runner's versioned updates keep each step once.
public struct WorkflowService: Service {
    let runner: WorkflowRunner
    let store: any JobStore
    let wakeup: Wakeup
    let pollInterval: Duration
    let logger: Logger

    /// Runs read per store call while looking through the running ones.
    static let pageSize = 100

    public init(runner: WorkflowRunner, store: any JobStore, wakeup: Wakeup, pollInterval: Duration = .seconds(1), logger: Logger) {
        self.runner = runner
        self.store = store
        self.wakeup = wakeup
        self.pollInterval = pollInterval
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
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
