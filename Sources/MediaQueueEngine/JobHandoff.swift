public import MediaQueueCore
import Synchronization

/// The dispatcher's slots for running jobs, shared with the transactions that make work or room:
/// the intake's (which store jobs) and the completion batcher's (which end them) claim jobs for
/// free slots in the same transaction and hand them over here, in memory.
///
/// Why: a claim of its own after every stored or finished batch cost a transaction (and a
/// wake-up of the dispatcher) per batch, most of them finding nothing at a moderate load. The
/// claims are the store's own (`JobStore.submit(_:thenClaim:)`, `finish(_:owner:thenClaim:)`),
/// so priority order and each queue's `MaxConcurrent` hold exactly as for the dispatcher's.
///
/// A slot is in use from its reservation until the job that took it ends; the dispatcher
/// reserves slots for its own claims the same way, so together they never run more than
/// `capacity` jobs. The hand-off also remembers whether the last claims left jobs waiting
/// (`hasBacklog`): only then does a job that ends outside a batch ask the dispatcher to claim.
public final class JobHandoff: Sendable {
    /// Jobs this process runs at once (the dispatcher's `maxRunningJobs`).
    public let capacity: Int
    /// Lease owner and duration of this process's claims.
    public let owner: String
    public let leaseDuration: Duration
    /// The dispatcher's wake-up: makes it claim.
    private let claimSignal: Wakeup
    /// Wakes the dispatcher's starter of handed-over jobs.
    private let handedOverSignal = Wakeup()

    fileprivate struct State {
        var inUse = 0
        var handedOver: [Job] = []
        var closed = false
        /// Whether jobs may wait that no claim took; unknown (true) at first.
        var backlog = true
        /// Counts the times `backlog` was set, so that a claim that ran before the latest
        /// setting cannot clear it.
        var backlogVersion = 0
        /// A reservation got no slot because others held them: when slots come back, the
        /// dispatcher must try again (its wake-up was spent on the refusal).
        var refusedWhileHeld = false
    }

    private let state = Mutex(State())

    /// `claimSignal`: the dispatcher's wake-up.
    public init(capacity: Int, owner: String, leaseDuration: Duration, claimSignal: Wakeup) {
        self.capacity = capacity
        self.owner = owner
        self.leaseDuration = leaseDuration
        self.claimSignal = claimSignal
    }

    /// Claims up to `reserved` jobs (the slots just reserved) for this process in `transaction`,
    /// a store transaction that ends with the claim (`claim`, `submit(_:thenClaim:)`,
    /// `finish(_:owner:thenClaim:)`); records whether it left jobs waiting and hands the claimed
    /// jobs to the dispatcher. Jobs a stopped dispatcher can no longer take go back to `store`.
    /// Returns the transaction's own result and how many jobs it claimed. If it throws, the
    /// caller still holds the reservation.
    public func claim<T>(
        reserved: Int, now: Timestamp, store: any JobStore,
        in transaction: (ClaimRequest) async throws -> (T, ClaimResult)
    ) async throws -> (value: T, claimed: Int) {
        let version = claimStarting()
        let (value, result) = try await transaction(ClaimRequest(owner: owner, now: now, leaseUntil: now + leaseDuration, limit: reserved))
        claimEnded(result, startedAt: version)
        let refused = handOver(result.jobs, reserved: reserved)
        // Claimed before the dispatcher stopped, committed after: back to their queues (or,
        // failing that, they run again when their leases expire).
        if !refused.isEmpty { try? await store.release(refused.map(\.id), owner: owner) }
        return (value, result.jobs.count)
    }

    /// Reserves up to `limit` free slots, after freeing the slots of `ending` jobs that end now
    /// (the completion batcher's, whose places the claim in their transaction takes); 0 when none
    /// is free or the dispatcher has stopped.
    public func reserve(upTo limit: Int, freeing ending: Int = 0) -> Int {
        state.withLock { state in
            state.inUse -= ending
            guard !state.closed else { return 0 }
            let granted = max(0, min(limit, capacity - state.inUse))
            state.inUse += granted
            if granted == 0 && limit > 0 { state.refusedWhileHeld = true }
            return granted
        }
    }

    /// Gives back reserved slots that no job took.
    public func unreserve(_ count: Int) {
        guard count > 0 else { return }
        let wake = state.withLock { state in
            state.inUse -= count
            return state.takeWakeOnReturn()
        }
        if wake { claimSignal.signal() }
    }

    /// Call before a claim; pass the answer to `claimEnded` (what `claim` does).
    func claimStarting() -> Int {
        state.withLock { $0.backlogVersion }
    }

    /// Records whether a claim left jobs waiting.
    func claimEnded(_ result: ClaimResult, startedAt version: Int) {
        state.withLock { state in
            if result.moreWaiting {
                state.backlog = true
                state.backlogVersion += 1
            } else if state.backlogVersion == version {
                state.backlog = false
            }
        }
    }

    /// Jobs were stored that no claim took: the dispatcher claims.
    public func noteWaiting() {
        state.withLock { state in
            state.backlog = true
            state.backlogVersion += 1
        }
        claimSignal.signal()
    }

    /// Hands jobs claimed for `owner` to the dispatcher; each takes one of the `reserved` slots
    /// and the rest are given back. Returns the jobs the dispatcher can no longer take (it has
    /// stopped): the caller must release them to the store.
    func handOver(_ jobs: [Job], reserved: Int) -> [Job] {
        precondition(jobs.count <= reserved, "more jobs claimed than slots reserved")
        let (refused, wake) = state.withLock { state -> ([Job], Bool) in
            state.inUse -= reserved - jobs.count
            let wake = reserved > jobs.count && state.takeWakeOnReturn()
            if state.closed {
                state.inUse -= jobs.count
                return (jobs, wake)
            }
            state.handedOver += jobs
            return ([], wake)
        }
        if refused.isEmpty && !jobs.isEmpty { handedOverSignal.signal() }
        if wake { claimSignal.signal() }
        return refused
    }

    // MARK: The dispatcher's side

    /// Returns when jobs were handed over (or the hand-off closed), or after `timeout`.
    func waitForHandOver(upTo timeout: Duration) async {
        await handedOverSignal.wait(upTo: timeout)
    }

    /// The jobs handed over since the last call, in the order they were claimed.
    func takeHandedOver() -> [Job] {
        state.withLock { state in
            defer { state.handedOver = [] }
            return state.handedOver
        }
    }

    /// Frees the slot of a job that ended without the completion batcher (which frees its
    /// jobs' slots itself); if jobs may be waiting, the dispatcher claims.
    func jobEnded() {
        let wake = state.withLock { state in
            state.inUse -= 1
            return state.takeWakeOnReturn()
        }
        if wake { claimSignal.signal() }
    }

    /// Slots reserved or taken.
    var slotsInUse: Int { state.withLock { $0.inUse } }

    /// Whether the last claims may have left jobs waiting.
    var hasBacklog: Bool { state.withLock { $0.backlog } }

    /// Refuses further reservations and hand-overs, and wakes the dispatcher's starter, which
    /// then takes what is left and releases it to the store.
    func close() {
        state.withLock { $0.closed = true }
        handedOverSignal.signal()
    }
}

extension JobHandoff.State {
    /// Slots came back: whether the dispatcher should claim (jobs may wait, or a reservation was
    /// refused while they were held).
    fileprivate mutating func takeWakeOnReturn() -> Bool {
        defer { refusedWhileHeld = false }
        return backlog || refusedWhileHeld
    }
}
