import MediaQueueCore

/// The dispatcher's slots and the claimed jobs on their way to start, as a value: events go in,
/// actions come out. Only `DispatcherHandle` holds one (behind a lock) and performs its actions;
/// nothing else counts slots.
///
/// A slot is in use from the moment a claim reserves it until the job that took it ends (or the
/// claim gives it back unused). Claims come from three transactions: the dispatcher's own, the
/// intake's (which stores jobs and claims in one transaction) and the completion path's (which
/// ends jobs and claims their successors in one), so they run concurrently; the state decides
/// how many slots each may claim, so that together they never exceed `capacity`.
///
/// It also remembers whether jobs may be waiting that no claim took (`backlog`): only then does a
/// slot coming back make the dispatcher claim.
struct DispatchState {
    /// What a claim may take: its slots, and the backlog's version when it began (a claim that
    /// began before jobs were stored cannot have seen them, so it cannot clear the backlog).
    struct Claim: Hashable {
        let slots: Int
        fileprivate let backlogVersion: Int
    }

    /// What the event asks of the handle.
    struct Actions: Equatable {
        /// Make the dispatcher claim: slots are free and jobs may be waiting.
        var claim = false
        /// Wake the dispatcher's starter: claimed jobs wait to start (`takeToStart`).
        var start = false
        /// Claimed jobs no one will start (the dispatcher stopped): back to their queues.
        var release: [Job] = []
    }

    let capacity: Int
    /// Slots reserved by claims in flight or taken by jobs handed over, started or running.
    private(set) var slotsInUse = 0
    /// Claimed jobs the starter has not taken yet, in claim order.
    private(set) var toStart: [Job] = []
    private(set) var stopped = false
    /// Whether jobs may wait that no claim took; unknown (true) at first.
    private(set) var backlog = true
    private var backlogVersion = 0
    /// A claim got no slot because others held them: when slots come back, the dispatcher claims
    /// (the wake-up that led to the refused claim was spent on it).
    private var refusedWhileHeld = false
    /// Until when claims take no slots: the object storage failed a job (`storageFailed`).
    private(set) var claimsHeldUntil: Timestamp?
    /// The first and the longest hold after a storage failure; each failure in a row doubles it.
    let storageHolds: ClosedRange<Duration>
    private var nextStorageHold: Duration
    /// When the storage first failed each job it is failing here: the job's patience runs from
    /// then. Forgotten when the job ends here; at most `storageFailuresKept` (the oldest go).
    private var storageFailingSince: [JobID: Timestamp] = [:]
    static let storageFailuresKept = 10_000

    /// How long after the storage first failed a job here it is still handed back.
    let storagePatience: Duration

    /// The defaults of `DispatcherOptions.storageHolds` and `storageOutagePatience`.
    static let defaultStorageHolds: ClosedRange<Duration> = .seconds(2) ... .seconds(60)
    static let defaultStoragePatience = Duration.seconds(15 * 60)

    init(capacity: Int, storageHolds: ClosedRange<Duration> = defaultStorageHolds, storagePatience: Duration = defaultStoragePatience) {
        precondition(capacity > 0, "a dispatcher runs at least one job")
        self.capacity = capacity
        self.storageHolds = storageHolds
        self.storagePatience = storagePatience
        nextStorageHold = storageHolds.lowerBound
    }

    /// Whether claims at `now` take no slots.
    func claimsHeld(at now: Timestamp) -> Bool {
        claimsHeldUntil.map { now < $0 } ?? false
    }

    var freeSlots: Int { capacity - slotsInUse }

    // MARK: Events

    /// A claim begins: frees the slots of `ending` jobs that its transaction ends (the
    /// completion path's), then reserves up to `limit` free slots; none once stopped.
    ///
    /// `onlyForBacklog` (the completion path): reserve nothing unless jobs may wait that no claim
    /// took. Without a backlog every stored job was claimed by the transaction that stored it;
    /// slots held by such a claim would only refuse the intake's next claim, which then stores
    /// without claiming and makes the dispatcher claim in a transaction of its own.
    mutating func claimBegins(upTo limit: Int, ending: Int = 0, onlyForBacklog: Bool = false) -> Claim {
        slotsInUse -= ending
        if onlyForBacklog && !backlog && !refusedWhileHeld {
            return Claim(slots: 0, backlogVersion: backlogVersion)
        }
        let slots = stopped ? 0 : max(0, min(limit, freeSlots))
        slotsInUse += slots
        if slots == 0 && limit > 0 && !stopped { refusedWhileHeld = true }
        return Claim(slots: slots, backlogVersion: backlogVersion)
    }

    /// The claim's transaction committed with `result`; a claim of no slots reports whether it
    /// stored jobs it could not take (`moreWaiting`).
    ///
    /// Slots the claim did not use wake no one when it saw every job stored (no `jobsStored` since
    /// it began): what it left waiting is held by `MaxConcurrent` or a pause, which only a job
    /// ending (or the dispatcher's poll, for an enable) changes; claiming again at once would spin.
    /// Jobs it left waiting while using every slot it had (or having none) make the dispatcher
    /// claim if slots came back meanwhile.
    mutating func claimCommitted(_ claim: Claim, _ result: ClaimResult) -> Actions {
        precondition(result.jobs.count <= claim.slots, "more jobs claimed than slots reserved")
        let sawEveryJob = claim.backlogVersion == backlogVersion
        let unused = claim.slots - result.jobs.count
        if result.moreWaiting {
            noteBacklog()
        } else if claim.slots > 0 && sawEveryJob {
            backlog = false
        }
        var actions = slotsReturned(unused, jobsMayWait: !sawEveryJob)
        if result.moreWaiting && !stopped && freeSlots > 0 && unused == 0 {
            actions.claim = true
        }
        if stopped {
            slotsInUse -= result.jobs.count
            actions.release = result.jobs
        } else if !result.jobs.isEmpty {
            toStart += result.jobs
            actions.start = true
        }
        return actions
    }

    /// The claim's transaction failed: its slots come back unused, and no claim is asked for at
    /// once. The store just failed; asked again at once it would fail again, every
    /// `claimInterval`, for as long as it is down. The dispatcher's poll tries again.
    mutating func claimFailed(_ claim: Claim) -> Actions {
        slotsReturned(claim.slots, jobsMayWait: false)
    }

    /// Jobs were stored that no claim of this process took (the API's submissions).
    mutating func jobsStored() -> Actions {
        noteBacklog()
        return Actions(claim: !stopped && freeSlots > 0)
    }

    /// Jobs ended other than in a completion claim (handed back, lease lost, end not recorded).
    mutating func jobsEnded(_ count: Int = 1) -> Actions {
        slotsReturned(count, jobsMayWait: backlog)
    }

    /// The starter takes the claimed jobs: to start, or to release once stopped (their slots
    /// come back).
    mutating func takeToStart() -> (start: [Job], release: [Job]) {
        defer { toStart = [] }
        guard stopped else { return (toStart, []) }
        slotsInUse -= toStart.count
        return ([], toStart)
    }

    /// The object storage failed `job`, which goes back to its queue: claims take no slots for a
    /// while, since the jobs they would start would fail too. The hold doubles with each failure
    /// after the last hold ended (up to the longest); failures during a hold (the other jobs that
    /// were running when the storage went away) do not double it, but it lasts at least the first
    /// pause from each, so that no claim of this node takes a job back before its run here has
    /// let go of it. A job that succeeds ends the series (`jobSettled`). Returns since when the
    /// storage has been failing `job` here.
    mutating func storageFailed(_ job: JobID, at now: Timestamp) -> Timestamp {
        noteBacklog()
        let since = storageFailingSince[job] ?? now
        storageFailingSince[job] = since
        if storageFailingSince.count > Self.storageFailuresKept {
            // First those failing longer than a job still handed back here can have been: they
            // ended on another node (or were handed on and lost their lease).
            let stale = now - (storagePatience + storageHolds.upperBound)
            storageFailingSince = storageFailingSince.filter { $0.value >= stale || $0.key == job }
            if storageFailingSince.count > Self.storageFailuresKept {
                let oldest = storageFailingSince.sorted { $0.value < $1.value }.prefix(Self.storageFailuresKept / 2).map(\.key)
                for id in oldest where id != job { storageFailingSince[id] = nil }
            }
        }
        if let until = claimsHeldUntil, now < until {
            claimsHeldUntil = max(until, now + storageHolds.lowerBound)
        } else {
            claimsHeldUntil = now + nextStorageHold
            nextStorageHold = min(nextStorageHold * 2, storageHolds.upperBound)
        }
        return since
    }

    /// `job` ended here (or the storage failed it past its patience): its failures are
    /// forgotten, and if it `worked`, the storage does, so the next hold is the first again.
    mutating func jobSettled(_ job: JobID, worked: Bool) {
        storageFailingSince[job] = nil
        if worked { nextStorageHold = storageHolds.lowerBound }
    }

    /// Shutdown: no more claims; the starter is woken to release what waits to start.
    mutating func stop() -> Actions {
        stopped = true
        return Actions(start: true)
    }

    // MARK: Rules

    private mutating func noteBacklog() {
        backlog = true
        backlogVersion += 1
    }

    /// Slots come back: the dispatcher claims if a claim was refused meanwhile, or if jobs may
    /// wait that these slots could take.
    private mutating func slotsReturned(_ count: Int, jobsMayWait: Bool) -> Actions {
        guard count > 0 else { return Actions() }
        slotsInUse -= count
        defer { refusedWhileHeld = false }
        return Actions(claim: !stopped && (jobsMayWait || refusedWhileHeld))
    }
}
