import MediaQueueCore
import MediaQueueXML
import Testing
@testable import MediaQueueEngine

/// The dispatcher's slots shared with the intake and the completion batcher: never more jobs
/// than the capacity, nothing handed over after the dispatcher stopped, and a claim that ran
/// before jobs were stored cannot make the dispatcher forget them.
@Suite struct JobHandoffTests {
    static func handoff(capacity: Int = 4, signal: Wakeup = Wakeup()) -> JobHandoff {
        JobHandoff(capacity: capacity, owner: "node", leaseDuration: .seconds(30), claimSignal: signal)
    }

    static func jobs(_ count: Int) -> [Job] {
        (0..<count).map { index in
            Job(
                bucket: "b", queueID: QueueID(rawValue: "q"), tag: "Noop", jobLevel: 0,
                input: .init("Input"), operation: .init("Operation"), creationTime: Timestamp(seconds: 0)
            ).withSequence(Int64(index + 1))
        }
    }

    @Test func reservationsNeverExceedTheCapacity() {
        let handoff = Self.handoff(capacity: 4)
        #expect(handoff.reserve(upTo: 3) == 3)
        #expect(handoff.reserve(upTo: 3) == 1)
        #expect(handoff.reserve(upTo: 3) == 0)
        handoff.unreserve(2)
        #expect(handoff.reserve(upTo: 10) == 2)
        // Two jobs end in a batch: their slots go straight to the batch's claim.
        #expect(handoff.reserve(upTo: 10, freeing: 2) == 2)
        #expect(handoff.slotsInUse == 4)
    }

    @Test func handedOverJobsKeepTheirSlotsAndUnusedOnesAreGivenBack() {
        let handoff = Self.handoff(capacity: 4)
        let reserved = handoff.reserve(upTo: 4)
        #expect(handoff.handOver(Self.jobs(3), reserved: reserved).isEmpty)
        #expect(handoff.slotsInUse == 3)
        #expect(handoff.takeHandedOver().map(\.sequence) == [1, 2, 3])
        #expect(handoff.takeHandedOver().isEmpty)
        handoff.jobEnded()
        #expect(handoff.slotsInUse == 2)
    }

    @Test func afterTheDispatcherStopsNothingIsReservedOrHandedOver() {
        let handoff = Self.handoff(capacity: 4)
        let reserved = handoff.reserve(upTo: 2)
        handoff.close()
        #expect(handoff.reserve(upTo: 2) == 0)
        // Claimed before the stop, committed after it: the caller gets them back to release.
        #expect(handoff.handOver(Self.jobs(2), reserved: reserved).map(\.sequence) == [1, 2])
        #expect(handoff.takeHandedOver().isEmpty)
        #expect(handoff.slotsInUse == 0)
    }

    @Test func aClaimThatRanBeforeJobsWereStoredDoesNotClearTheBacklog() {
        let handoff = Self.handoff()
        let empty = ClaimResult(jobs: [], moreWaiting: false)
        handoff.claimEnded(empty, startedAt: handoff.claimStarting())
        #expect(!handoff.hasBacklog)

        let early = handoff.claimStarting()
        handoff.noteWaiting()
        handoff.claimEnded(empty, startedAt: early)
        #expect(handoff.hasBacklog, "the early claim could not have seen the jobs stored after it began")

        handoff.claimEnded(empty, startedAt: handoff.claimStarting())
        #expect(!handoff.hasBacklog)
        handoff.claimEnded(ClaimResult(jobs: [], moreWaiting: true), startedAt: handoff.claimStarting())
        #expect(handoff.hasBacklog)
    }

    /// The dispatcher woke to claim, but the completion batcher held every slot for its own
    /// claim: when the batcher gives unused slots back, the dispatcher must try again.
    @Test func slotsGivenBackAfterARefusedReservationWakeTheDispatcher() async {
        let signal = Wakeup()
        let handoff = Self.handoff(capacity: 2, signal: signal)
        handoff.claimEnded(ClaimResult(jobs: [], moreWaiting: false), startedAt: handoff.claimStarting())
        let batcher = handoff.reserve(upTo: 2)
        #expect(handoff.reserve(upTo: 2) == 0)
        #expect(!signal.isSignalled)
        #expect(handoff.handOver(Self.jobs(1), reserved: batcher).isEmpty)
        #expect(signal.isSignalled, "a slot came back after a refusal")
        await signal.wait(upTo: .seconds(3600))
        // Without a refusal or a backlog, slots coming back wake no one.
        let again = handoff.reserve(upTo: 1)
        handoff.unreserve(again)
        #expect(!signal.isSignalled)
    }

    @Test func aJobEndingOutsideABatchWakesTheDispatcherOnlyIfJobsMayWait() async {
        let signal = Wakeup()
        let handoff = Self.handoff(signal: signal)
        handoff.claimEnded(ClaimResult(jobs: [], moreWaiting: false), startedAt: handoff.claimStarting())
        _ = handoff.reserve(upTo: 2)
        handoff.jobEnded()
        #expect(!signal.isSignalled)
        handoff.noteWaiting()
        #expect(signal.isSignalled)
        await signal.wait(upTo: .seconds(3600))
        handoff.jobEnded()
        #expect(signal.isSignalled)
    }
}

extension Job {
    fileprivate func withSequence(_ sequence: Int64) -> Job {
        var job = self
        job.sequence = sequence
        return job
    }
}
