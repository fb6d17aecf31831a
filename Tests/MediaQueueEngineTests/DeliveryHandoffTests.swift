import MediaQueueCore
import Synchronization
import Testing
@testable import MediaQueueEngine

/// The in-memory path from the dispatcher's commits to the TDMQ relay: what the relay may take
/// from the handoff, and which outbox rows it must leave alone so no event goes out twice.
@Suite struct DeliveryHandoffTests {
    static func entry(_ n: Int, target: CallbackTarget.Destination = .mq(mode: .topic, name: "job-events", region: "")) -> OutboxEntry {
        OutboxEntry(
            id: "e\(n)", jobID: JobID(rawValue: "j\(n)"), bucket: "b", target: target, routingKey: "job.q.Noop.Success",
            body: [], contentType: "application/xml", nextAttempt: Timestamp(seconds: 0), createdAt: Timestamp(seconds: 0)
        )
    }

    @Test func entriesReservedBeforeTheCommitAreNotReadFromTheOutboxAgain() {
        let handoff = DeliveryHandoff(wakeup: Wakeup())
        let entries = (1...3).map { Self.entry($0) }
        handoff.reserve(entries)
        // An outbox read between the commit and the push sees the rows: the relay skips them.
        #expect(handoff.claimNotInFlight(entries + [Self.entry(9)]).map(\.id) == ["e9"])
        // Entry 3's job lost its lease: nothing was written for it, so it is no longer reserved.
        handoff.push(Array(entries.prefix(2)), uncommitted: [entries[2]])
        #expect(handoff.take(max: 10).map(\.id) == ["e1", "e2"])
        #expect(handoff.take(max: 10).isEmpty)
        #expect(handoff.claimNotInFlight(entries).map(\.id) == ["e3"])
    }

    @Test func takeHandsOutAtMostMaxInOrder() {
        let handoff = DeliveryHandoff(wakeup: Wakeup())
        handoff.push((1...5).map { Self.entry($0) })
        #expect(handoff.take(max: 2).map(\.id) == ["e1", "e2"])
        #expect(handoff.take(max: 10).map(\.id) == ["e3", "e4", "e5"])
    }

    @Test func httpDeliveriesAreLeftToTheHTTPRelay() {
        let handoff = DeliveryHandoff(wakeup: Wakeup())
        let http = Self.entry(1, target: .url("https://example.com/cb"))
        handoff.reserve([http])
        handoff.push([http])
        #expect(handoff.take(max: 10).isEmpty)
        #expect(handoff.claimNotInFlight([http]).map(\.id) == ["e1"])
    }

    @Test func settledEntriesStayInFlightForTheGracePeriodAndFailedOnesAreReleasedAtOnce() {
        let clock = Mutex(ContinuousClock.now)
        let handoff = DeliveryHandoff(wakeup: Wakeup(), settleGrace: .seconds(5), now: { clock.withLock { $0 } })
        let delivered = Self.entry(1), failed = Self.entry(2)
        handoff.push([delivered, failed])
        _ = handoff.take(max: 10)
        handoff.settle([delivered.id])
        handoff.release([failed.id])
        // A read that began before the delivery was recorded may still return it: skipped.
        #expect(handoff.claimNotInFlight([delivered, failed]).map(\.id) == ["e2"])
        clock.withLock { $0 += .seconds(5) }
        #expect(handoff.claimNotInFlight([delivered]).isEmpty, "still within the grace period")
        clock.withLock { $0 += .milliseconds(1) }
        // The failed one was taken again by the read above; the delivered one is free once more.
        #expect(handoff.claimNotInFlight([delivered, failed]).map(\.id) == ["e1"])
    }

    @Test func whatAnOutboxReadReturnsIsNotReturnedAgainUntilItsDeliveryIsRecorded() {
        let handoff = DeliveryHandoff(wakeup: Wakeup(), settleGrace: .zero)
        let due = (1...3).map { Self.entry($0) }
        #expect(handoff.claimNotInFlight(due).map(\.id) == ["e1", "e2", "e3"])
        // The rows are still pending while their deliveries are being recorded: a second read skips them.
        #expect(handoff.claimNotInFlight(due).isEmpty)
        handoff.settle(["e1", "e2"])
        handoff.release(["e3"])
        #expect(handoff.claimNotInFlight(due).map(\.id) == ["e1", "e2", "e3"])
    }

    /// Without the push's signal this wait would last an hour; the time limit fails the test.
    @Test(.timeLimit(.minutes(1))) func aPushWakesTheRelay() async {
        let wakeup = Wakeup()
        let handoff = DeliveryHandoff(wakeup: wakeup)
        handoff.push([Self.entry(1)])
        await wakeup.wait(upTo: .seconds(3600))
        #expect(handoff.take(max: 10).map(\.id) == ["e1"])
    }
}
