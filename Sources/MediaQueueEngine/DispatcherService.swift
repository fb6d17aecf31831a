public import Logging
public import MediaQueueCore
import Synchronization
public import ServiceLifecycle

/// Settings of the dispatcher.
public struct DispatcherOptions: Sendable {
    /// Identifies this process in leases; unique per process.
    public var owner: String
    /// Where the buckets' objects are read and written.
    public var storage: any ObjectStorage
    /// Fetches jobs' `Input.Url`; nil: such jobs fail with `InputFetchFailed`.
    public var downloader: (any InputDownloader)?
    /// Jobs this process runs at once, over all queues (each queue also has its own MaxConcurrent).
    public var maxRunningJobs: Int
    /// How long a claim holds without renewal; a job whose process died runs again after this.
    public var leaseDuration: Duration
    /// How often leases of running jobs are renewed and cancel requests are looked for.
    public var housekeepingInterval: Duration
    /// How long the dispatcher sleeps when it finds nothing to do (a signal wakes it sooner).
    public var pollInterval: Duration
    /// On shutdown, how long running jobs may take to finish before they are stopped and handed back.
    public var drainTimeout: Duration
    /// The shortest time between two claims: jobs ending one by one would otherwise cost a claim
    /// transaction each; waiting this long lets one claim take them all.
    public var claimInterval: Duration

    public init(
        owner: String, storage: any ObjectStorage, downloader: (any InputDownloader)? = nil, maxRunningJobs: Int = 16, leaseDuration: Duration = .seconds(60),
        housekeepingInterval: Duration = .seconds(1), pollInterval: Duration = .milliseconds(250),
        drainTimeout: Duration = .seconds(30), claimInterval: Duration = .milliseconds(2)
    ) {
        self.claimInterval = claimInterval
        self.owner = owner
        self.storage = storage
        self.downloader = downloader
        self.maxRunningJobs = maxRunningJobs
        self.leaseDuration = leaseDuration
        self.housekeepingInterval = housekeepingInterval
        self.pollInterval = pollInterval
        self.drainTimeout = drainTimeout
    }
}

/// Runs jobs in the order the store gives them, within each queue's `MaxConcurrent` and this
/// process's `maxRunningJobs`, and ends each in one transaction with its callback deliveries.
///
/// Claims are leases: renewed while a job runs; if this process dies, another (or this one,
/// restarted) claims the job again once the lease expires.
public struct DispatcherService: Service {
    let store: any JobStore
    let workers: WorkerRegistry
    let options: DispatcherOptions
    let formatting: CIFormatting
    let time: any TimeSource
    let wakeup: Wakeup
    let relayWakeups: RelayWakeups
    let handoff: DeliveryHandoff?
    let jobHandoff: JobHandoff
    let logger: Logger

    public init(
        store: any JobStore, workers: WorkerRegistry, options: DispatcherOptions, formatting: CIFormatting,
        time: any TimeSource = SystemTimeSource(), wakeup: Wakeup, relayWakeups: RelayWakeups = RelayWakeups(), handoff: DeliveryHandoff? = nil,
        jobHandoff: JobHandoff? = nil, logger: Logger
    ) {
        self.handoff = handoff
        // Without an intake in this process the slots are the dispatcher's alone.
        precondition(jobHandoff.map { $0.owner == options.owner && $0.capacity == options.maxRunningJobs } ?? true, "the hand-off must be this dispatcher's")
        self.jobHandoff = jobHandoff ?? JobHandoff(
            capacity: options.maxRunningJobs, owner: options.owner, leaseDuration: options.leaseDuration, claimSignal: wakeup
        )
        self.store = store
        self.workers = workers
        self.options = options
        self.formatting = formatting
        self.time = time
        self.wakeup = wakeup
        self.relayWakeups = relayWakeups
        self.logger = logger
    }

    public func run() async throws {
        let completions = CompletionBatcher(
            store: store, owner: options.owner, formatting: formatting, time: time, handoff: handoff, relayWakeups: relayWakeups,
            jobHandoff: jobHandoff
        )
        let running = RunningJobs()
        let stopping = StopFlag()
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await housekeeping(running, stopping: stopping) }
                group.addTask { await startHandedOver(running, completions: completions, stopping: stopping) }
                var lastClaim: ContinuousClock.Instant?
                while !stopping.isSet && !Task.isCancelled {
                    if let lastClaim, ContinuousClock.now - lastClaim < options.claimInterval {
                        try? await Task.sleep(until: lastClaim + options.claimInterval)
                    }
                    lastClaim = .now
                    let free = jobHandoff.reserve(upTo: options.maxRunningJobs)
                    var claimed = 0
                    if free > 0 {
                        do {
                            // Handed over like the intake's and the completions' claims: one
                            // place starts jobs (`startHandedOver`).
                            claimed = try await jobHandoff.claim(reserved: free, now: time.now, store: store) { claim in
                                ((), try await store.claim(claim))
                            }.claimed
                        } catch is CancellationError {
                            jobHandoff.unreserve(free)
                            break
                        } catch {
                            jobHandoff.unreserve(free)
                            logger.error("dispatcher could not claim jobs", metadata: ["error": "\(error)"])
                        }
                    }
                    // A full claim means more may be waiting: go round at once.
                    if free == 0 || claimed < free {
                        await wakeup.wait(upTo: options.pollInterval)
                    }
                }
                await drain(running)
            }
        } onGracefulShutdown: {
            stopping.set()
            wakeup.signal()
            jobHandoff.close()
        }
        logger.debug("dispatcher stopped")
    }

    /// Starts the claimed jobs handed over (by the dispatcher's own claims, the intake's and the
    /// completions'), as they come. On shutdown, the jobs handed over but not started go back to
    /// their queues.
    private func startHandedOver(_ running: RunningJobs, completions: CompletionBatcher, stopping: StopFlag) async {
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                let jobs = jobHandoff.takeHandedOver()
                // Checked after taking: a job taken as the dispatcher stops goes back, rather than
                // starting after the drain has looked.
                if stopping.isSet {
                    await giveBack(jobs)
                    break
                }
                for job in jobs {
                    running.insert(job.id)
                    group.addTask { await execute(job, running, completions: completions) }
                }
                await jobHandoff.waitForHandOver(upTo: options.pollInterval)
            }
            // What was handed over and not started goes back to its queue now, not after the
            // running jobs have finished.
            jobHandoff.close()
            await giveBack(jobHandoff.takeHandedOver())
        }
    }

    /// Hands jobs that were claimed but not started back to their queues.
    private func giveBack(_ jobs: [Job]) async {
        guard !jobs.isEmpty else { return }
        for _ in jobs { jobHandoff.jobEnded() }
        do {
            try await store.release(jobs.map(\.id), owner: options.owner)
        } catch {
            logger.warning("dispatcher could not hand back jobs it had not started; they run again when their leases expire", metadata: ["error": "\(error)"])
        }
    }

    /// Lets running jobs finish for up to `drainTimeout`, then stops them and hands them back to
    /// their queues, so another process (or this one, restarted) runs them.
    private func drain(_ running: RunningJobs) async {
        let deadline = ContinuousClock.now + options.drainTimeout
        while running.count > 0 && ContinuousClock.now < deadline {
            await wakeup.wait(upTo: .milliseconds(100))
        }
        running.stopAll(.shutdown)
    }

    private func housekeeping(_ running: RunningJobs, stopping: StopFlag) async {
        var lastRenewal = ContinuousClock.now
        while running.count > 0 || !stopping.isSet {
            try? await Task.sleep(for: options.housekeepingInterval)
            if Task.isCancelled { return }
            let ids = running.ids
            guard !ids.isEmpty else { continue }
            do {
                if ContinuousClock.now - lastRenewal >= options.leaseDuration / 3 {
                    lastRenewal = ContinuousClock.now
                    let lost = try await store.renewLeases(ids, owner: options.owner, until: time.now + options.leaseDuration)
                    for id in lost {
                        logger.warning("dispatcher lost the lease of a running job", metadata: ["job.id": "\(id)"])
                        running.stop(id, .leaseLost)
                    }
                }
                for id in try await store.cancelRequests(owner: options.owner) {
                    running.stop(id, .cancelled)
                }
                for (id, progress) in running.takeProgress() {
                    try await store.updateProgress(id, progress: progress)
                }
            } catch {
                logger.error("dispatcher housekeeping failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Runs one claimed job to its end and records the outcome.
    private func execute(_ claimed: Job, _ running: RunningJobs, completions: CompletionBatcher) async {
        // The completion batcher frees the slot of a job it records (and claims its successor in
        // the same transaction); a job that ends any other way frees it here.
        var slotFreedByBatcher = false
        defer {
            running.remove(claimed.id)
            if !slotFreedByBatcher { jobHandoff.jobEnded() }
        }
        var job = claimed
        let logger = JobLogger(logger: self.logger, job: job)
        logger.debug("job started")

        let outcome: Result<WorkResult, any Error>
        var stopReason: RunningJobs.StopReason?
        if claimed.cancelRequested {
            // Cancelled while its previous process was dead: end it without running it again.
            outcome = .failure(CancellationError())
            stopReason = .cancelled
        } else if let worker = workers.worker(for: job.tag) {
            let context = WorkContext(
                bucket: job.bucket, storage: options.storage, downloader: options.downloader, formatting: formatting,
                reportProgress: { running.setProgress(claimed.id, $0) }
            )
            let task = Task { try await worker.run(claimed, context: context) }
            running.attach(claimed.id, task)
            outcome = await task.result
            stopReason = running.stopReason(claimed.id)
        } else {
            outcome = .failure(WorkFailure(code: "UnsupportedTag", message: "no worker runs tag '\(job.tag)' in this process"))
        }

        switch (outcome, stopReason) {
        case (.failure, .shutdown?), (.failure(is CancellationError), nil):
            // Stopped because this process is stopping, not because anyone cancelled the job.
            try? await store.release([job.id], owner: options.owner)
            logger.info("job handed back at shutdown")
            return
        case (_, .leaseLost?):
            return  // another process owns the job now
        case (.success(let result), _):
            job.state = .success
            job.progress = 100
            job.mediaResult = result.mediaResult
            job.mediaInfo = result.mediaInfo
        case (.failure, .cancelled?):
            job.state = .cancel
        case (.failure(let failure as WorkFailure), _):
            job.state = .failed
            job.code = failure.code
            job.message = failure.message
        case (.failure(let error), _):
            job.state = .failed
            job.code = "InternalError"
            job.message = "\(error)"
        }
        job.endTime = time.now
        slotFreedByBatcher = true
        await finish(job, completions: completions, logger: logger)
    }

    private func finish(_ job: Job, completions: CompletionBatcher, logger: JobLogger) async {
        do {
            if try await completions.finish(job) {
                logger.debug("job ended", metadata: ["job.state": "\(job.state.rawValue)"])
            } else {
                logger.warning("job ended after its lease was lost; the outcome was not recorded")
            }
        } catch is CancellationError {
            // The process is being torn down; the lease expires and the job runs again.
            logger.debug("job's end not recorded: the dispatcher was cancelled")
        } catch {
            // The lease will expire and the job runs again: at least once, never lost.
            logger.error("could not record a job's end", metadata: ["error": "\(error)"])
        }
    }
}

/// A job's log lines, tagged with its job and queue ids. The tags are built only for lines the
/// log level lets through (Logger evaluates metadata lazily), not once per job: at thousands of
/// jobs a second that string building showed in profiles.
struct JobLogger {
    let logger: Logger
    let jobID: JobID
    let queueID: QueueID

    init(logger: Logger, job: Job) {
        self.logger = logger
        jobID = job.id
        queueID = job.queueID
    }

    private func metadata(_ extra: Logger.Metadata) -> Logger.Metadata {
        extra.merging(["job.id": "\(jobID)", "queue.id": "\(queueID)"]) { $1 }
    }

    func debug(_ message: @autoclosure () -> Logger.Message, metadata extra: @autoclosure () -> Logger.Metadata = [:]) {
        logger.debug(message(), metadata: metadata(extra()))
    }

    func info(_ message: @autoclosure () -> Logger.Message, metadata extra: @autoclosure () -> Logger.Metadata = [:]) {
        logger.info(message(), metadata: metadata(extra()))
    }

    func warning(_ message: @autoclosure () -> Logger.Message, metadata extra: @autoclosure () -> Logger.Metadata = [:]) {
        logger.warning(message(), metadata: metadata(extra()))
    }

    func error(_ message: @autoclosure () -> Logger.Message, metadata extra: @autoclosure () -> Logger.Metadata = [:]) {
        logger.error(message(), metadata: metadata(extra()))
    }
}

/// The jobs this process is running: their tasks, latest progress and why any was stopped.
final class RunningJobs: Sendable {
    enum StopReason: Sendable { case cancelled, shutdown, leaseLost }

    private struct Entry {
        var task: Task<WorkResult, any Error>?
        var progress: Int?
        var stopReason: StopReason?
    }

    private let entries = Mutex<[JobID: Entry]>([:])

    var count: Int { entries.withLock { $0.count } }
    var ids: [JobID] { entries.withLock { Array($0.keys) } }

    func insert(_ id: JobID) { entries.withLock { $0[id] = Entry() } }
    func remove(_ id: JobID) { _ = entries.withLock { $0.removeValue(forKey: id) } }

    /// Remembers the worker's task; if a stop was asked before it started, it is cancelled at once.
    func attach(_ id: JobID, _ task: Task<WorkResult, any Error>) {
        let cancelNow = entries.withLock { entries -> Bool in
            entries[id]?.task = task
            return entries[id]?.stopReason != nil
        }
        if cancelNow { task.cancel() }
    }

    func stop(_ id: JobID, _ reason: StopReason) {
        let task = entries.withLock { entries -> Task<WorkResult, any Error>? in
            guard entries[id] != nil, entries[id]?.stopReason == nil else { return nil }
            entries[id]?.stopReason = reason
            return entries[id]?.task
        }
        task?.cancel()
    }

    func stopAll(_ reason: StopReason) {
        for id in ids { stop(id, reason) }
    }

    func stopReason(_ id: JobID) -> StopReason? { entries.withLock { $0[id]?.stopReason } }

    func setProgress(_ id: JobID, _ progress: Int) {
        entries.withLock { $0[id]?.progress = min(100, max(0, progress)) }
    }

    /// Progress reported since the last call, to be written to the store.
    func takeProgress() -> [(JobID, Int)] {
        entries.withLock { entries in
            var changed: [(JobID, Int)] = []
            for (id, entry) in entries {
                if let progress = entry.progress {
                    changed.append((id, progress))
                    entries[id]?.progress = nil
                }
            }
            return changed
        }
    }
}

/// Set once, read often: tells the dispatcher's loops that shutdown began.
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}
