import Logging
public import MediaQueueCore
import Synchronization

/// The dispatcher's one door for the transactions that make work or room: the intake's (which
/// store jobs) and the completion path's (which end them) claim jobs for this process's free
/// slots in the same transaction, and the claimed jobs go to the dispatcher in memory.
///
/// Why: a claim of its own after every stored or finished batch cost a transaction (and a
/// wake-up of the dispatcher) per batch, most of them finding nothing at a moderate load. The
/// claims are the store's own (`JobStore.submit(_:thenClaim:)`, `finish(_:owner:thenClaim:)`),
/// so priority order and each queue's `MaxConcurrent` hold exactly as for the dispatcher's.
///
/// The bookkeeping is `DispatchState`'s; this class only locks it and performs its actions.
/// Callers hold no slots: `claim` reserves and settles them around the caller's transaction.
public final class DispatcherHandle: Sendable {
    /// Lease owner and duration of this process's claims.
    public let owner: String
    public let leaseDuration: Duration
    private let store: any JobStore
    /// The jobs that run here: read only, so that none is handed back while it runs.
    private let running: RunningJobs
    private let state: Mutex<DispatchState>
    /// Makes the dispatcher claim.
    let claimWakeup: Wakeup
    /// Wakes the dispatcher's starter of claimed jobs.
    let startWakeup: Wakeup
    private let logger: Logger

    init(
        capacity: Int, storageHolds: ClosedRange<Duration> = DispatchState.defaultStorageHolds, storagePatience: Duration = DispatchState.defaultStoragePatience, owner: String,
        leaseDuration: Duration, store: any JobStore, running: RunningJobs, time: any TimeSource, logger: Logger
    ) {
        state = Mutex(DispatchState(capacity: capacity, storageHolds: storageHolds, storagePatience: storagePatience))
        claimWakeup = Wakeup(time: time)
        startWakeup = Wakeup(time: time)
        self.owner = owner
        self.leaseDuration = leaseDuration
        self.store = store
        self.running = running
        self.logger = logger
    }

    /// Runs `transaction` with a claim for up to `limit` of this process's free slots, after
    /// freeing the slots of `ending` jobs that the transaction ends; hands the claimed jobs to the
    /// dispatcher. The request is nil when no slot is free: the transaction then claims nothing
    /// and reports in `moreWaiting` whether it stored jobs that wait.
    /// `onlyForBacklog`: claim only if jobs may wait that no claim took (see `DispatchState`).
    public func claim<T>(
        upTo limit: Int, ending: Int = 0, onlyForBacklog: Bool = false, now: Timestamp,
        in transaction: (ClaimRequest?) async throws -> (T, ClaimResult)
    ) async throws -> T {
        let claim = state.withLock { state in
            state.claimBegins(upTo: state.claimsHeld(at: now) ? 0 : limit, ending: ending, onlyForBacklog: onlyForBacklog)
        }
        let request = claim.slots > 0 ? ClaimRequest(owner: owner, now: now, leaseUntil: now + leaseDuration, limit: claim.slots) : nil
        let value: T
        let result: ClaimResult
        do {
            (value, result) = try await transaction(request)
        } catch {
            await perform(state.withLock { $0.claimFailed(claim) })
            throw error
        }
        await perform(state.withLock { $0.claimCommitted(claim, result) })
        return value
    }

    /// Jobs were stored that no claim of this process took.
    public func jobsStored() {
        let actions = state.withLock { $0.jobsStored() }
        if actions.claim { claimWakeup.signal() }
    }

    // MARK: The dispatcher's side

    /// A job ended other than through the completion path's claim.
    func jobEnded() {
        let actions = state.withLock { $0.jobsEnded() }
        if actions.claim { claimWakeup.signal() }
    }

    /// Jobs taken to start that the starter did not start: their slots come back and the jobs go
    /// back to their queues.
    func giveBack(_ jobs: [Job]) async {
        for _ in jobs { jobEnded() }
        await release(jobs)
    }

    /// The claimed jobs to start now, in claim order; once stopped, none (they are released).
    func takeToStart() async -> [Job] {
        let taken = state.withLock { $0.takeToStart() }
        await release(taken.release)
        return taken.start
    }

    /// The object storage failed `job`: claims pause (see `DispatchState.storageFailed`);
    /// returns since when the storage has been failing it here.
    func storageFailed(_ job: JobID, at now: Timestamp) -> Timestamp {
        state.withLock { $0.storageFailed(job, at: now) }
    }

    /// `job` ended here; `worked`: it succeeded, so the storage works.
    func jobSettled(_ job: JobID, worked: Bool) {
        state.withLock { $0.jobSettled(job, worked: worked) }
    }

    /// Refuses further claims; the starter is woken to release what waits to start.
    func stop() {
        let actions = state.withLock { $0.stop() }
        if actions.start { startWakeup.signal() }
    }

    var freeSlots: Int { state.withLock { $0.freeSlots } }

    var isStopped: Bool { state.withLock { $0.stopped } }

    private func perform(_ actions: DispatchState.Actions) async {
        if actions.claim { claimWakeup.signal() }
        if actions.start { startWakeup.signal() }
        await release(actions.release)
    }

    /// Claimed, never started: back to their queues (failing that, they run again when their
    /// leases expire). But not a job that runs here: a claim took it again as its lease had ended
    /// before a renewal came, and its run, which goes on, hands it back when it ends.
    private func release(_ claimed: [Job]) async {
        let jobs = claimed.filter { !running.goesOn($0.id) }
        guard !jobs.isEmpty else { return }
        let (store, owner) = (store, owner)
        do {
            try await uncancelled { try await store.release(jobs.map(\.id), owner: owner) }
        } catch {
            logger.warning("dispatcher could not hand back jobs it had not started; they run again when their leases expire", metadata: ["error": "\(error)"])
        }
    }
}
