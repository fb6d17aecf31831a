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
    /// While draining, how often the dispatcher looks whether every running job has ended.
    public var drainPollInterval: Duration
    /// The shortest time between two claims: jobs ending one by one would otherwise cost a claim
    /// transaction each; waiting this long lets one claim take them all.
    public var claimInterval: Duration
    /// At most this many finished jobs are recorded in one transaction.
    public var completionBatchSize: Int
    /// How long the recording of finished jobs waits for more to end before it writes a batch
    /// smaller than `completionBatchSize`, while jobs end together (a lone job is written at once).
    public var completionLinger: Duration
    /// How many times a job may be started before it fails instead (`WorkerCrashed`): a start
    /// counts when its process died before the job ended, so a job that kills its process (an
    /// input that crashes a tool beyond what it survives, memory it exhausts) does not take every
    /// node down in turn, forever.
    public var maxAttempts: Int
    /// When the object storage fails a job (`StorageUnavailable`: unreachable, or answering 5xx
    /// or 429 past its retries), the job goes back to its queue and this process claims nothing for the
    /// first of these pauses, doubling with each failure in a row up to the second: an outage
    /// would otherwise fail the whole backlog, a job every few seconds.
    public var storageHolds = DispatchState.defaultStorageHolds
    /// How long after the storage first failed a job (on this node) the job is still handed back;
    /// past this it fails, so a storage that keeps failing one object does not hold its job for
    /// ever.
    public var storageOutagePatience = DispatchState.defaultStoragePatience

    public init(
        owner: String, storage: any ObjectStorage, downloader: (any InputDownloader)? = nil, maxRunningJobs: Int = 16, leaseDuration: Duration = .seconds(60),
        housekeepingInterval: Duration = .seconds(1), pollInterval: Duration = .milliseconds(250),
        drainTimeout: Duration = .seconds(30), drainPollInterval: Duration = .milliseconds(100), claimInterval: Duration = .milliseconds(2),
        completionBatchSize: Int = 500, completionLinger: Duration = .milliseconds(3), maxAttempts: Int = 3
    ) {
        self.maxAttempts = maxAttempts
        self.claimInterval = claimInterval
        self.completionBatchSize = completionBatchSize
        self.completionLinger = completionLinger
        self.owner = owner
        self.storage = storage
        self.downloader = downloader
        self.maxRunningJobs = maxRunningJobs
        self.leaseDuration = leaseDuration
        self.housekeepingInterval = housekeepingInterval
        self.pollInterval = pollInterval
        self.drainTimeout = drainTimeout
        self.drainPollInterval = drainPollInterval
    }
}

/// Runs jobs in the order the store gives them, within each queue's `MaxConcurrent` and this
/// process's `maxRunningJobs`, and ends each in one transaction with its callback deliveries.
///
/// Claims are leases: renewed while a job runs; if this process dies, another (or this one,
/// restarted) claims the job again once the lease expires.
///
/// Its slots are `handle`'s alone: the intake of this process claims through it, and so does the
/// completion path, which claims the successors of the jobs it ends in the same transaction.
public struct DispatcherService: Service {
    let store: any JobStore
    let workers: WorkerRegistry
    let options: DispatcherOptions
    let formatting: CIFormatting
    let time: any TimeSource
    let relayWakeups: RelayWakeups
    let handoff: DeliveryHandoff?
    /// Announces running jobs' progress where asked (`TaskProgress`), if this process does.
    let progress: ProgressNotifier?
    /// The door for this process's intake and API: they claim through it or say jobs were stored.
    public let handle: DispatcherHandle
    let running = RunningJobs()
    let logger: Logger

    public init(
        store: any JobStore, workers: WorkerRegistry, options: DispatcherOptions, formatting: CIFormatting,
        time: any TimeSource = SystemTimeSource(), relayWakeups: RelayWakeups = RelayWakeups(), handoff: DeliveryHandoff? = nil,
        progress: ProgressNotifier? = nil, logger: Logger
    ) {
        self.handoff = handoff
        self.progress = progress
        handle = DispatcherHandle(
            capacity: options.maxRunningJobs, storageHolds: options.storageHolds, storagePatience: options.storageOutagePatience, owner: options.owner, leaseDuration: options.leaseDuration, store: store, running: running,
            time: time, logger: logger
        )
        self.store = store
        self.workers = workers
        self.options = options
        self.formatting = formatting
        self.time = time
        self.relayWakeups = relayWakeups
        self.logger = logger
    }

    public func run() async throws {
        let completions = CompletionBatcher(
            store: store, dispatcher: handle, formatting: formatting, time: time, maxBatch: options.completionBatchSize,
            linger: options.completionLinger, handoff: handoff, relayWakeups: relayWakeups, rewriteWindow: options.leaseDuration
        )
        let stopping = StopFlag()
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await housekeeping(running, stopping: stopping) }
                group.addTask { await startClaimed(running, completions: completions, stopping: stopping) }
                var lastClaim: Timestamp?
                while !stopping.isSet && !Task.isCancelled {
                    if let lastClaim {
                        let wait = (lastClaim + options.claimInterval).milliseconds - time.now.milliseconds
                        if wait > 0 { try? await time.sleep(for: .milliseconds(wait)) }
                    }
                    lastClaim = time.now
                    do {
                        try await handle.claim(upTo: .max, now: time.now) { claim in
                            guard let claim else { return ((), ClaimResult(jobs: [], moreWaiting: false)) }
                            return ((), try await store.claim(claim))
                        }
                    } catch is CancellationError {
                        break
                    } catch {
                        logger.error("dispatcher could not claim jobs", metadata: ["error": "\(error)"])
                    }
                    // The handle wakes it when slots come back and jobs may wait for them.
                    await handle.claimWakeup.wait(upTo: options.pollInterval)
                }
                await drain(running, stopping: stopping)
            }
        } onGracefulShutdown: {
            // The handle first: once `stopping` shows, no claim can hand over another job.
            handle.stop()
            stopping.set()
            handle.claimWakeup.signal()
        }
        logger.debug("dispatcher stopped")
    }

    /// Starts the jobs claimed through the handle (by the dispatcher's own claims, the intake's
    /// and the completions'), as they come. On shutdown, the claimed jobs not started go back to
    /// their queues.
    private func startClaimed(_ running: RunningJobs, completions: CompletionBatcher, stopping: StopFlag) async {
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                let jobs = await handle.takeToStart()
                // Checked after taking: a job taken as the dispatcher stops goes back, rather than
                // starting after the drain has looked. The drain closes `running` before it looks,
                // so a stop that comes between this check and the insert is caught by the insert.
                if stopping.isSet {
                    await handle.giveBack(jobs)
                    break
                }
                var refused: [Job] = []
                var goingOn: [JobID] = []
                for job in jobs {
                    switch running.insert(job.id) {
                    case .inserted:
                        group.addTask { await execute(job, running, completions: completions) }
                    case .alreadyRunning:
                        // Its lease ended before a renewal came (a store slow or away, a clock
                        // jump) and this claim took it again, for this process: the claim renewed
                        // the lease of the run that goes on. A second run would share its files,
                        // and a cancel or the drain would reach only one of them.
                        logger.warning("a running job's lease ended before it was renewed; the dispatcher claimed it again and lets the run it has go on", metadata: ["job.id": "\(job.id)"])
                        goingOn.append(job.id)
                        handle.jobEnded()
                    case .closed:
                        refused.append(job)
                    }
                }
                if !goingOn.isEmpty {
                    group.addTask { await uncountAttempts(of: goingOn) }
                }
                if !refused.isEmpty {
                    await handle.giveBack(refused)
                    break
                }
                await handle.startWakeup.wait(upTo: options.pollInterval)
            }
            // What was claimed and not started goes back to its queue now, not after the running
            // jobs have finished (the stopped handle releases it). Stopped here too: a cancelled
            // dispatcher gets here before its drain stops the handle.
            handle.stop()
            _ = await handle.takeToStart()
        }
    }

    /// Lets running jobs finish for up to `drainTimeout`, then stops them and hands them back to
    /// their queues, so another process (or this one, restarted) runs them.
    private func drain(_ running: RunningJobs, stopping: StopFlag) async {
        // However the claim loop ended (shutdown, or its task cancelled), this is a shutdown: the
        // starter then gives back what it takes instead of dropping it with its slots held.
        handle.stop()
        stopping.set()
        running.close()
        let deadline = time.now + options.drainTimeout
        // A cancelled dispatcher stops its jobs now: its waits return at once, and the workers'
        // tasks are not its children, so nothing else would end them before the deadline.
        while running.count > 0 && time.now < deadline && !Task.isCancelled {
            await handle.claimWakeup.wait(upTo: options.drainPollInterval)
        }
        running.stopAll(.shutdown)
    }

    private func housekeeping(_ running: RunningJobs, stopping: StopFlag) async {
        var lastRenewal = time.now
        while running.count > 0 || !stopping.isSet {
            try? await time.sleep(for: options.housekeepingInterval)
            if Task.isCancelled { return }
            let ids = running.ids
            guard !ids.isEmpty else { continue }
            do {
                if time.now >= lastRenewal + options.leaseDuration / 3 {
                    // Counted from a renewal the store took: a failed one is tried again at the
                    // next turn, not a third of a lease later, so that an outage of one or two
                    // turns does not let the leases end under running jobs.
                    let renewing = time.now
                    let lost = try await store.renewLeases(ids, owner: options.owner, until: renewing + options.leaseDuration)
                    lastRenewal = renewing
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

    /// Runs one claimed job to its end and records the outcome; its slot is freed once, by the
    /// completion path that records it or here when there is nothing to record.
    private func execute(_ claimed: Job, _ running: RunningJobs, completions: CompletionBatcher) async {
        defer { running.remove(claimed.id) }
        let logger = JobLogger(logger: self.logger, job: claimed)
        let ended = await run(claimed, running, logger: logger)
        // Before the end is recorded: no progress event may follow the job's TaskFinish.
        await progress?.jobEnded(claimed.id)
        if let ended {
            await finish(ended, completions: completions, logger: logger)
        } else {
            handle.jobEnded()
        }
    }

    /// The job as it ended, or nil when there is nothing to record: handed back at shutdown, or
    /// its lease lost to another process.
    private func run(_ claimed: Job, _ running: RunningJobs, logger: JobLogger) async -> Job? {
        var job = claimed
        if claimed.attempts > 1, await ranToItsEnd(claimed) {
            logger.info("job claimed again as its run here ended; not run a second time")
            return nil
        }
        logger.debug("job started")

        let outcome: Result<WorkResult, any Error>
        var stopReason: RunningJobs.StopReason?
        if claimed.cancelRequested {
            // Cancelled while its previous process was dead: end it without running it again.
            outcome = .failure(CancellationError())
            stopReason = .cancelled
        } else if claimed.attempts > options.maxAttempts {
            let message = "the job was started \(claimed.attempts - 1) times and each time its process ended before the job did; it is not started again"
            logger.error("job failed: its process died in each of its starts", metadata: ["job.attempts": "\(claimed.attempts - 1)"])
            outcome = .failure(WorkFailure(code: "WorkerCrashed", message: message))
        } else if let worker = workers.worker(for: job.tag) {
            FaultPoint.reached(.jobStarting)
            let progress = self.progress
            progress?.jobStarted(claimed.id)
            let context = WorkContext(
                bucket: job.bucket, storage: options.storage, downloader: options.downloader, formatting: formatting, time: time,
                reportProgress: {
                    running.setProgress(claimed.id, $0)
                    progress?.report(claimed, progress: $0)
                }
            )
            let task = Task { try await worker.run(claimed, context: context) }
            running.attach(claimed.id, task)
            outcome = await task.result
            stopReason = running.stopReason(claimed.id)
        } else {
            outcome = .failure(WorkFailure(code: "UnsupportedTag", message: "no worker runs tag '\(job.tag)' in this process"))
        }

        // A storage outage: the job goes back to its queue unless the storage has failed it here
        // for the whole patience. Claims are held from here (`storageFailed`), so that none of
        // this node takes the job back before this run has let go of it.
        var storageHandsBack = false
        if stopReason == nil, case .failure(let failure as WorkFailure) = outcome, failure.code == WorkFailure.storageUnavailable {
            storageHandsBack = time.now < handle.storageFailed(job.id, at: time.now) + options.storageOutagePatience
        }

        switch (outcome, stopReason) {
        case (.failure, .shutdown?), (.failure(is CancellationError), nil):
            // Stopped because this process is stopping, not because anyone cancelled the job.
            let (store, owner, id) = (store, options.owner, job.id)
            // From here a claim that takes the job again (once handed back, or its lease having
            // ended) may hand it back too: this run no longer goes on.
            running.handingBack(id)
            _ = try? await uncancelled { try await store.release([id], owner: owner) }
            logger.info("job handed back at shutdown")
            return nil
        case (_, .leaseLost?):
            return nil  // another process owns the job now
        case (.success(let result), _):
            job.state = .success
            job.progress = 100
            job.mediaResult = result.mediaResult
            job.mediaInfo = result.mediaInfo
        case (.failure, .cancelled?):
            job.state = .cancel
        case (.failure(let failure as WorkFailure), nil) where storageHandsBack:
            let (store, owner, id) = (store, options.owner, job.id)
            running.handingBack(id)
            do {
                try await uncancelled { try await store.release([id], owner: owner) }
            } catch {
                logger.warning("the object storage failed the job, which could not be handed back; it runs again when its lease ends", metadata: ["error": "\(error)"])
            }
            logger.warning("the object storage failed the job; it goes back to its queue and claims pause", metadata: ["error": "\(failure.message)"])
            return nil
        case (.failure(let failure as WorkFailure), _):
            job.state = .failed
            job.code = failure.code
            job.message = failure.message
        case (.failure(let error), _):
            job.state = .failed
            job.code = "InternalError"
            job.message = "\(error)"
        }
        handle.jobSettled(job.id, worked: job.state == .success)
        job.endTime = time.now
        return job
    }

    /// Takes back the attempts that claims of jobs still running here counted: those claims
    /// started nothing, and with enough of them a job whose process later dies would fail as
    /// `WorkerCrashed` without the starts it is allowed. Not taken back if the store cannot take
    /// the write: the job has one start fewer left, which is logged.
    private func uncountAttempts(of ids: [JobID]) async {
        do {
            try await store.uncountAttempts(ids, owner: options.owner)
        } catch {
            logger.warning("a claim of jobs still running here counted an attempt the store could not take back", metadata: ["error": "\(error)", "jobs": "\(ids.count)"])
        }
    }

    /// Whether the run that a claim of an orphaned job took over has ended since: a run of it
    /// here whose lease ended before its renewal came, which the claim took again, and which then
    /// recorded its end before the claimed job reached the starter (`RunningJobs.insert` finds it
    /// gone by then, and its end is in the store). A store that cannot answer: not known to have
    /// ended, so it runs (at least once).
    private func ranToItsEnd(_ claimed: Job) async -> Bool {
        guard let stored = try? await store.job(id: claimed.id) else { return false }
        return stored.state != .running || stored.lease?.owner != options.owner
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
            // Written again for as long as its lease could hold (`CompletionBatcher.rewrite`);
            // now the lease will expire and the job runs again: at least once, never lost.
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
        var handedBack = false
    }

    private struct State {
        var entries: [JobID: Entry] = [:]
        var isClosed = false
    }

    private let state = Mutex(State())

    var count: Int { state.withLock { $0.entries.count } }
    var ids: [JobID] { state.withLock { Array($0.entries.keys) } }

    enum Insertion { case inserted, alreadyRunning, closed }

    /// Adds a job about to start: `.closed` once `close` was called, `.alreadyRunning` when a job
    /// with this id runs here already (its entry is left as it is).
    func insert(_ id: JobID) -> Insertion {
        state.withLock { state in
            // Running first: a job that runs here is never handed back, even while draining.
            guard state.entries[id] == nil else { return .alreadyRunning }
            guard !state.isClosed else { return .closed }
            state.entries[id] = Entry()
            return .inserted
        }
    }

    func remove(_ id: JobID) { _ = state.withLock { $0.entries.removeValue(forKey: id) } }

    /// Whether a run of the job goes on here: it is not to be handed back by anyone else.
    func goesOn(_ id: JobID) -> Bool { state.withLock { $0.entries[id].map { !$0.handedBack } ?? false } }

    /// The job's run ended at shutdown and hands the job back.
    func handingBack(_ id: JobID) { state.withLock { $0.entries[id]?.handedBack = true } }

    /// No job is added from now on (the dispatcher drains), so `count` can only go down.
    func close() { state.withLock { $0.isClosed = true } }

    /// Remembers the worker's task; if a stop was asked before it started, it is cancelled at once.
    func attach(_ id: JobID, _ task: Task<WorkResult, any Error>) {
        let cancelNow = state.withLock { state -> Bool in
            state.entries[id]?.task = task
            return state.entries[id]?.stopReason != nil
        }
        if cancelNow { task.cancel() }
    }

    func stop(_ id: JobID, _ reason: StopReason) {
        let task = state.withLock { state -> Task<WorkResult, any Error>? in
            guard state.entries[id] != nil, state.entries[id]?.stopReason == nil else { return nil }
            state.entries[id]?.stopReason = reason
            return state.entries[id]?.task
        }
        task?.cancel()
    }

    func stopAll(_ reason: StopReason) {
        for id in ids { stop(id, reason) }
    }

    func stopReason(_ id: JobID) -> StopReason? { state.withLock { $0.entries[id]?.stopReason } }

    func setProgress(_ id: JobID, _ progress: Int) {
        state.withLock { $0.entries[id]?.progress = min(100, max(0, progress)) }
    }

    /// Progress reported since the last call, to be written to the store.
    func takeProgress() -> [(JobID, Int)] {
        state.withLock { state in
            var changed: [(JobID, Int)] = []
            for (id, entry) in state.entries {
                if let progress = entry.progress {
                    changed.append((id, progress))
                    state.entries[id]?.progress = nil
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
