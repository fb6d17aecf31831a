import MediaQueueCore
import MediaQueueXML
import Testing
@testable import MediaQueueEngine

/// The dispatcher's slots as a value: events in, actions out. The cases below are the rules one
/// by one; `everyInterleavingKeepsTheSlotsExact` then plays every sequence of events (claims of
/// the intake, the dispatcher and the completion path interleaved, jobs ending, pause, stop) on a
/// small model store and checks the accounting after each step and that no job is left waiting
/// with a free slot.
@Suite struct DispatchStateTests {
    static func jobs(_ range: ClosedRange<Int>) -> [Job] {
        range.map { index in
            var job = Job(
                bucket: "b", queueID: QueueID(rawValue: "q"), tag: "Noop", jobLevel: 0,
                input: .init("Input"), operation: .init("Operation"), creationTime: Timestamp(seconds: 0)
            )
            job.sequence = Int64(index)
            return job
        }
    }

    @Test func claimsTogetherNeverReserveMoreThanTheCapacity() {
        var state = DispatchState(capacity: 4)
        let intake = state.claimBegins(upTo: 3)
        let dispatcher = state.claimBegins(upTo: .max)
        let refused = state.claimBegins(upTo: 5)
        #expect([intake.slots, dispatcher.slots, refused.slots] == [3, 1, 0])
        #expect(state.freeSlots == 0)
        // Two jobs end in a completion batch: their slots go straight to the batch's claim.
        _ = state.claimCommitted(intake, ClaimResult(jobs: Self.jobs(1...3), moreWaiting: false))
        let completion = state.claimBegins(upTo: .max, ending: 2)
        #expect(completion.slots == 2)
        #expect(state.slotsInUse == 4)
    }

    /// Every stored job was claimed where it was stored: the completion path's claim takes no
    /// slot, so the intake's next claim is not refused (which would have cost the dispatcher a
    /// claim of its own); with jobs waiting it takes the freed slots and the free ones.
    @Test func theCompletionPathClaimsOnlyForABacklog() {
        var state = DispatchState(capacity: 4)
        let intake = state.claimBegins(upTo: 2)
        _ = state.claimCommitted(intake, ClaimResult(jobs: Self.jobs(1...2), moreWaiting: false))
        let completion = state.claimBegins(upTo: .max, ending: 1, onlyForBacklog: true)
        #expect(completion.slots == 0)
        #expect(state.claimBegins(upTo: 3).slots == 3)
        #expect(state.claimCommitted(completion, ClaimResult(jobs: [], moreWaiting: false)) == DispatchState.Actions())

        var backlogged = DispatchState(capacity: 4)
        let full = backlogged.claimBegins(upTo: 4)
        _ = backlogged.claimCommitted(full, ClaimResult(jobs: Self.jobs(1...4), moreWaiting: true))
        #expect(backlogged.claimBegins(upTo: .max, ending: 2, onlyForBacklog: true).slots == 2)
    }

    /// The storage failed a job: claims are held for a pause that doubles with each failure after
    /// a hold has ended, and is only stretched to the first pause by the failures of the jobs
    /// that were running meanwhile; a job that succeeds starts the series again. Each job's
    /// patience runs from the storage's first failure of it here.
    @Test func aStorageFailureHoldsClaimsForAPauseThatDoublesUntilAJobSucceeds() {
        var state = DispatchState(capacity: 4, storageHolds: .seconds(2) ... .seconds(5))
        let (a, b) = (JobID(rawValue: "ja"), JobID(rawValue: "jb"))
        let start = Timestamp(seconds: 1_000)
        #expect(!state.claimsHeld(at: start))
        #expect(state.storageFailed(a, at: start) == start)
        #expect(state.storageFailed(b, at: start + .milliseconds(500)) == start + .milliseconds(500))
        #expect(state.claimsHeldUntil == start + .milliseconds(2_500), "stretched to the first pause from b's failure, not doubled")
        #expect(state.claimsHeld(at: start + .milliseconds(2_499)))
        #expect(!state.claimsHeld(at: start + .milliseconds(2_500)))
        #expect(state.storageFailed(a, at: start + .seconds(3)) == start, "a's patience runs from its first failure")
        #expect(state.claimsHeldUntil == start + .seconds(7), "doubled")
        _ = state.storageFailed(a, at: start + .seconds(8))
        #expect(state.claimsHeldUntil == start + .seconds(13), "at most the longest")
        state.jobSettled(a, worked: true)
        #expect(state.storageFailed(a, at: start + .seconds(20)) == start + .seconds(20), "settled: forgotten")
        #expect(state.claimsHeldUntil == start + .seconds(22), "a success starts the series again")
        state.jobSettled(b, worked: false)
        #expect(state.storageFailed(b, at: start + .seconds(30)) == start + .seconds(30))
        #expect(state.claimsHeldUntil == start + .seconds(34), "a failure does not end the series")
        #expect(state.backlog, "the jobs handed back wait: the completion path's claims look for them")
    }

    @Test func claimedJobsKeepTheirSlotsAndUnusedOnesComeBack() {
        var state = DispatchState(capacity: 4)
        let claim = state.claimBegins(upTo: .max)
        let actions = state.claimCommitted(claim, ClaimResult(jobs: Self.jobs(1...3), moreWaiting: false))
        #expect(actions == DispatchState.Actions(start: true))
        #expect(state.slotsInUse == 3)
        #expect(state.takeToStart().start.map(\.sequence) == [1, 2, 3])
        #expect(state.takeToStart().start.isEmpty)
        #expect(state.jobsEnded() == DispatchState.Actions(), "nothing waits: no claim")
        #expect(state.slotsInUse == 2)
    }

    @Test func afterStopNothingIsClaimedOrStartedAndClaimedJobsAreReleased() {
        var state = DispatchState(capacity: 4)
        let before = state.claimBegins(upTo: 2)
        let waiting = state.claimBegins(upTo: 1)
        _ = state.claimCommitted(waiting, ClaimResult(jobs: Self.jobs(9...9), moreWaiting: false))
        #expect(state.stop() == DispatchState.Actions(start: true))
        #expect(state.claimBegins(upTo: 2).slots == 0)
        // Claimed before the stop, committed after it: released, never started.
        let actions = state.claimCommitted(before, ClaimResult(jobs: Self.jobs(1...2), moreWaiting: true))
        #expect(!actions.claim && !actions.start)
        #expect(actions.release.map(\.sequence) == [1, 2])
        let taken = state.takeToStart()
        #expect(taken.start.isEmpty)
        #expect(taken.release.map(\.sequence) == [9])
        #expect(state.slotsInUse == 0)
        #expect(state.jobsStored() == DispatchState.Actions(), "a stopped dispatcher claims nothing")
    }

    @Test func aClaimThatBeganBeforeJobsWereStoredDoesNotClearTheBacklog() {
        var state = DispatchState(capacity: 4)
        _ = state.claimCommitted(state.claimBegins(upTo: 1), ClaimResult(jobs: [], moreWaiting: false))
        #expect(!state.backlog)

        let early = state.claimBegins(upTo: 1)
        #expect(state.jobsStored().claim, "a slot is free: the dispatcher claims")
        #expect(state.claimCommitted(early, ClaimResult(jobs: [], moreWaiting: false)).claim)
        #expect(state.backlog, "the early claim could not have seen the jobs stored after it began")

        _ = state.claimCommitted(state.claimBegins(upTo: 1), ClaimResult(jobs: [], moreWaiting: false))
        #expect(!state.backlog)
    }

    /// A claim of no slots (the intake with every slot taken) says nothing about what waits,
    /// unless it stored jobs it could not take.
    @Test func aClaimOfNoSlotsOnlyAddsToTheBacklog() {
        var state = DispatchState(capacity: 1)
        let running = state.claimBegins(upTo: 1)
        _ = state.claimCommitted(running, ClaimResult(jobs: Self.jobs(1...1), moreWaiting: false))
        #expect(!state.backlog)
        let intake = state.claimBegins(upTo: 3)
        #expect(intake.slots == 0)
        #expect(state.claimCommitted(intake, ClaimResult(jobs: [], moreWaiting: true)) == DispatchState.Actions())
        #expect(state.backlog)
        #expect(state.claimCommitted(state.claimBegins(upTo: 3), ClaimResult(jobs: [], moreWaiting: false)) == DispatchState.Actions())
        #expect(state.backlog, "a claim of no slots looked at nothing")
        #expect(state.jobsEnded().claim, "the running job's slot comes back and jobs wait")
    }

    /// The dispatcher woke to claim, but the completion path held every slot: when it gives
    /// unused slots back, the dispatcher must try again (its wake-up was spent on the refusal).
    @Test func slotsGivenBackAfterARefusedClaimMakeTheDispatcherClaim() {
        var state = DispatchState(capacity: 2)
        _ = state.claimCommitted(state.claimBegins(upTo: 1), ClaimResult(jobs: [], moreWaiting: false))
        let completion = state.claimBegins(upTo: .max)
        #expect(state.claimBegins(upTo: .max).slots == 0)
        #expect(state.claimCommitted(completion, ClaimResult(jobs: Self.jobs(1...1), moreWaiting: false)).claim)
        // The refusal was answered: slots coming back later wake no one unless jobs wait.
        #expect(!state.jobsEnded().claim)
    }

    /// Jobs left waiting by a claim that had slots to spare are held by their queue's
    /// MaxConcurrent: claiming again at once would find the same; a job ending may free them.
    @Test func jobsHeldByMaxConcurrentWaitForAJobToEnd() {
        var state = DispatchState(capacity: 3)
        let claim = state.claimBegins(upTo: .max)
        let actions = state.claimCommitted(claim, ClaimResult(jobs: Self.jobs(1...1), moreWaiting: true))
        #expect(actions == DispatchState.Actions(start: true), "no claim: the dispatcher would spin")
        _ = state.takeToStart()
        #expect(state.jobsEnded().claim)
    }

    /// A store that failed a claim is not asked again at once (it would be, every claim
    /// interval, while it is down); the dispatcher's poll tries again.
    @Test func aFailedClaimGivesItsSlotsBackAndLeavesTheNextTryToThePoll() {
        var state = DispatchState(capacity: 3)
        let claim = state.claimBegins(upTo: 2)
        #expect(state.backlog, "jobs may wait (unknown at first)")
        #expect(!state.claimFailed(claim).claim)
        #expect(state.slotsInUse == 0)
        #expect(state.claimBegins(upTo: 2).slots == 2, "the poll's claim has every slot")
    }

    @Test func aPausedQueueDoesNotMakeTheDispatcherSpin() {
        var state = DispatchState(capacity: 3)
        // A paused queue's jobs are not claimable: the store reports nothing waiting.
        let actions = state.claimCommitted(state.claimBegins(upTo: .max), ClaimResult(jobs: [], moreWaiting: false))
        #expect(!actions.claim)
        #expect(!state.jobsEnded(0).claim)
    }

    // MARK: Every interleaving

    @Test func everyInterleavingKeepsTheSlotsExact() {
        var explored = 0
        var violations: [String] = []
        func explore(_ world: World, depth: Int) {
            explored += 1
            if let problem = world.problem() { violations.append(problem + " after " + world.trace.joined(separator: ", ")) }
            if let problem = world.settled().stranded() { violations.append(problem + " after " + world.trace.joined(separator: ", ")) }
            guard depth > 0, violations.count < 5 else { return }
            for event in world.possibleEvents {
                explore(world.after(event), depth: depth - 1)
            }
        }
        explore(World(capacity: 1, maxConcurrent: 1, waiting: 0), depth: 7)
        explore(World(capacity: 2, maxConcurrent: 2, waiting: 1), depth: 6)
        explore(World(capacity: 3, maxConcurrent: 1, waiting: 2), depth: 5)
        #expect(violations.isEmpty, "\(violations)")
        #expect(explored > 10_000)
    }
}

/// A model of one process over one queue: a store that claims in order within MaxConcurrent and
/// not while paused, the claims in flight, the starter and the running jobs.
private struct World {
    enum Kind: String { case intake, dispatcher, completion }

    struct InFlight {
        let kind: Kind
        let claim: DispatchState.Claim
        var result: ClaimResult?
    }

    enum Event {
        case apiStores, claimBegins(Kind), transacts(Int), commits(Int), fails(Int)
        case starterTakes, jobEndsOutside, pause, enable, stop

        var name: String {
            switch self {
            case .claimBegins(let kind): "\(kind.rawValue) claims"
            case .transacts(let index): "claim \(index) transacts"
            case .commits(let index): "claim \(index) commits"
            case .fails(let index): "claim \(index) fails"
            default: "\(self)"
            }
        }
    }

    var state: DispatchState
    let maxConcurrent: Int
    var waiting: [Job] = []
    var claimedInStore = 0
    var paused = false
    var inFlight: [InFlight] = []
    var started: [Job] = []
    /// The dispatcher claims as it starts.
    var dispatcherWoken = true
    /// The dispatcher's poll will claim: a queue was enabled, or its last claim failed (neither
    /// wakes it).
    var pollDue = false
    var startedAfterStop = false
    var claimedAfterStop = false
    /// Settling woke the dispatcher round after round.
    var spins = false
    var nextSequence = 1
    var trace: [String] = []

    init(capacity: Int, maxConcurrent: Int, waiting: Int) {
        state = DispatchState(capacity: capacity)
        self.maxConcurrent = maxConcurrent
        for _ in 0..<waiting { self.waiting.append(newJob()) }
    }

    mutating func newJob() -> Job {
        defer { nextSequence += 1 }
        return DispatchStateTests.jobs(nextSequence...nextSequence)[0]
    }

    var possibleEvents: [Event] {
        var events: [Event] = [.apiStores, .starterTakes, .stop, paused ? .enable : .pause]
        // Each of the three claims one at a time, at most two in flight together.
        let claiming = Set(inFlight.map(\.kind))
        if inFlight.count < 2 {
            for kind in [Kind.intake, .dispatcher] where !claiming.contains(kind) { events.append(.claimBegins(kind)) }
            if !started.isEmpty && !claiming.contains(.completion) { events.append(.claimBegins(.completion)) }
        }
        if !started.isEmpty { events.append(.jobEndsOutside) }
        for (index, claim) in inFlight.enumerated() {
            if claim.result == nil {
                events.append(.transacts(index))
                if claim.kind != .completion { events.append(.fails(index)) }
            } else {
                events.append(.commits(index))
            }
        }
        return events
    }

    func after(_ event: Event) -> World {
        var world = self
        world.trace.append(event.name)
        world.apply(event)
        return world
    }

    mutating func apply(_ event: Event) {
        switch event {
        case .apiStores:
            waiting.append(newJob())
            perform(state.jobsStored())
        case .claimBegins(let kind):
            var ending = 0
            if kind == .completion {
                started.removeFirst()
                ending = 1
            }
            if kind == .dispatcher {
                // Its wake-up (or its poll) is spent on this claim.
                dispatcherWoken = false
                pollDue = false
            }
            let claim = state.claimBegins(upTo: kind == .intake ? 1 : .max, ending: ending, onlyForBacklog: kind == .completion)
            if state.stopped && claim.slots > 0 { claimedAfterStop = true }
            inFlight.append(InFlight(kind: kind, claim: claim))
        case .transacts(let index):
            let claim = inFlight[index]
            var stored = false
            if claim.kind == .intake { waiting.append(newJob()); stored = true }
            if claim.kind == .completion { claimedInStore -= 1 }
            inFlight[index].result = storeClaim(limit: claim.claim.slots, stored: stored)
        case .commits(let index):
            let claim = inFlight.remove(at: index)
            perform(state.claimCommitted(claim.claim, claim.result!))
        case .fails(let index):
            let claim = inFlight.remove(at: index)
            pollDue = true  // after a failed claim the dispatcher's poll is the next try
            perform(state.claimFailed(claim.claim))
        case .starterTakes:
            let taken = state.takeToStart()
            if state.stopped && !taken.start.isEmpty { startedAfterStop = true }
            started += taken.start
            release(taken.release)
        case .jobEndsOutside:
            let job = started.removeFirst()
            if state.stopped {
                release([job])  // handed back at shutdown
            } else {
                claimedInStore -= 1  // its lease lost: another process runs it to its end
            }
            perform(state.jobsEnded())
        case .pause:
            paused = true
        case .enable:
            paused = false
            pollDue = true
        case .stop:
            perform(state.stop())
        }
    }

    /// The store's claim: in order, within MaxConcurrent, nothing while paused.
    mutating func storeClaim(limit: Int, stored: Bool) -> ClaimResult {
        guard limit > 0 else { return ClaimResult(jobs: [], moreWaiting: stored) }
        let room = paused ? 0 : max(0, min(limit, maxConcurrent - claimedInStore))
        let jobs = Array(waiting.prefix(room))
        waiting.removeFirst(jobs.count)
        claimedInStore += jobs.count
        return ClaimResult(jobs: jobs, moreWaiting: !paused && !waiting.isEmpty)
    }

    mutating func release(_ jobs: [Job]) {
        claimedInStore -= jobs.count
        waiting = (jobs + waiting).sorted { $0.sequence < $1.sequence }
    }

    mutating func perform(_ actions: DispatchState.Actions) {
        if actions.claim { dispatcherWoken = true }
        release(actions.release)
    }

    /// The accounting after each step: every slot is a claim in flight, a job to start or a
    /// running job; never more than the capacity, never more claimed than MaxConcurrent.
    func problem() -> String? {
        let reserved = inFlight.reduce(0) { $0 + $1.claim.slots }
        let held = reserved + state.toStart.count + started.count
        if state.slotsInUse != held { return "slots in use \(state.slotsInUse), held \(held)" }
        if state.slotsInUse > state.capacity { return "\(state.slotsInUse) slots of \(state.capacity)" }
        if claimedInStore > maxConcurrent { return "\(claimedInStore) claimed over MaxConcurrent \(maxConcurrent)" }
        if startedAfterStop { return "a stopped dispatcher started jobs" }
        if claimedAfterStop { return "a claim after the stop reserved slots" }
        return nil
    }

    /// Every claim in flight ends, the starter takes, and the dispatcher claims while woken.
    func settled() -> World {
        var world = self
        while let claim = world.inFlight.indices.first {
            if world.inFlight[claim].result == nil { world.apply(.transacts(claim)) }
            world.apply(.commits(claim))
        }
        world.apply(.starterTakes)
        var rounds = 0
        while world.dispatcherWoken && rounds < 10 {
            world.apply(.claimBegins(.dispatcher))
            world.apply(.transacts(0))
            world.apply(.commits(0))
            world.apply(.starterTakes)
            rounds += 1
        }
        world.spins = world.dispatcherWoken
        return world
    }

    /// Once settled: a job the store would give, with a slot free, and no one to claim it.
    func stranded() -> String? {
        if let problem = problem() { return problem }
        if spins { return "the dispatcher is woken again after every claim" }
        if state.stopped {
            return state.slotsInUse == started.count ? nil : "stopped with \(state.slotsInUse) slots for \(started.count) running"
        }
        let claimable = !paused && !waiting.isEmpty && claimedInStore < maxConcurrent
        if claimable && state.freeSlots > 0 && !pollDue { return "job waits with a free slot and no claim coming" }
        return nil
    }
}
