import MediaQueueCore
import Testing
@testable import MediaQueueEngine

/// The in-memory path from the dispatcher's commits to the TDMQ relay: deliveries are committed
/// leased to this process's relay, and the relay sends from the hand-off only while that lease runs.
@Suite struct DeliveryHandoffTests {
    static let now = Timestamp(seconds: 1_700_000_000)

    static func entry(_ n: Int, target: CallbackTarget.Destination = .mq(mode: .topic, name: "job-events", region: "")) -> OutboxEntry {
        OutboxEntry(
            id: "e\(n)", jobID: JobID(rawValue: "j\(n)"), bucket: "b", target: target, routingKey: "job.q.Noop.Success",
            body: [], contentType: "application/xml", nextAttempt: now, createdAt: now
        )
    }

    @Test func tdmqDeliveriesAreCommittedLeasedAndHTTPOnesAreLeftToTheirRelay() {
        let handoff = DeliveryHandoff(wakeup: Wakeup(), lease: .seconds(60))
        #expect(handoff.leased(Self.entry(1), now: Self.now).nextAttempt == Self.now + .seconds(60))
        let http = Self.entry(2, target: .url("https://example.com/cb"))
        #expect(handoff.leased(http, now: Self.now) == http)
        handoff.push([http])
        #expect(handoff.take(max: 10, now: Self.now).isEmpty)
    }

    @Test func takeHandsOutAtMostMaxInOrder() {
        let handoff = DeliveryHandoff(wakeup: Wakeup(), lease: .seconds(60))
        handoff.push((1...5).map { handoff.leased(Self.entry($0), now: Self.now) })
        #expect(handoff.take(max: 2, now: Self.now).map(\.id) == ["e1", "e2"])
        #expect(handoff.take(max: 10, now: Self.now).map(\.id) == ["e3", "e4", "e5"])
        #expect(handoff.take(max: 10, now: Self.now).isEmpty)
    }

    @Test func deliveriesWhoseLeaseEndedAreLeftToTheOutbox() {
        let handoff = DeliveryHandoff(wakeup: Wakeup(), lease: .seconds(60))
        let early = handoff.leased(Self.entry(1), now: Self.now)
        let later = handoff.leased(Self.entry(2), now: Self.now + .seconds(30))
        handoff.push([early, later])
        // At the first lease's end any relay may lease it from the outbox: not sent from here.
        #expect(handoff.take(max: 10, now: Self.now + .seconds(60)).map(\.id) == ["e2"])
        #expect(handoff.close().isEmpty)
    }

    @Test func whatWasNeverTakenIsHandedBackAtShutdownAndLaterCommitsAreNotLeased() {
        let handoff = DeliveryHandoff(wakeup: Wakeup(), lease: .seconds(60))
        handoff.push([1, 2].map { handoff.leased(Self.entry($0), now: Self.now) })
        #expect(handoff.close().map(\.id) == ["e1", "e2"])
        // The relay is gone: what the dispatcher commits now is due at once, for any relay.
        let late = Self.entry(3)
        #expect(handoff.leased(late, now: Self.now) == late)
        handoff.push([late])
        #expect(handoff.take(max: 10, now: Self.now).isEmpty)
    }

    /// A relay that cannot publish while jobs go on ending: at the limit, deliveries are committed
    /// due at once (for the relay's outbox reads) and not held in memory.
    @Test func atItsLimitDeliveriesAreCommittedDueAtOnceAndNotHeld() {
        let handoff = DeliveryHandoff(wakeup: Wakeup(), lease: .seconds(60), limit: 2)
        let first = (1...2).map { handoff.leased(Self.entry($0), now: Self.now) }
        handoff.push(first)
        let third = Self.entry(3)
        #expect(handoff.leased(third, now: Self.now) == third, "not leased: no room to hold it")
        handoff.push([handoff.leased(third, now: Self.now)])
        #expect(handoff.take(max: 10, now: Self.now).map(\.id) == ["e1", "e2"])
        // Committed unleased while there was no room, it is due at once for any relay's outbox
        // read: not held even now that there is room, or it could be sent twice.
        handoff.push([third])
        #expect(handoff.take(max: 10, now: Self.now).isEmpty)
        // Room again: leased and held.
        let fourth = handoff.leased(Self.entry(4), now: Self.now)
        #expect(fourth.nextAttempt == Self.now + .seconds(60))
        handoff.push([fourth])
        #expect(handoff.take(max: 10, now: Self.now).map(\.id) == ["e4"])
    }

    /// Without the push's signal this wait would last an hour; the time limit fails the test.
    @Test(.timeLimit(.minutes(5))) func aPushWakesTheRelay() async {
        let wakeup = Wakeup()
        let handoff = DeliveryHandoff(wakeup: wakeup, lease: .seconds(60))
        handoff.push([handoff.leased(Self.entry(1), now: Self.now)])
        await wakeup.wait(upTo: .seconds(3600))
        #expect(handoff.take(max: 10, now: Self.now).map(\.id) == ["e1"])
    }
}
