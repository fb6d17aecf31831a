public import MediaQueueCore
import Synchronization

/// TDMQ deliveries this process has just committed to the outbox, handed to its own relay in
/// memory, so an event goes out as soon as its job's end is recorded instead of at the relay's
/// next outbox read (which cost tens of milliseconds of latency per event under load).
///
/// The outbox stays the record: a handed-off entry is still `pending` in the store until the
/// relay marks it delivered, so a crash loses nothing (the next process reads it from the
/// outbox). Meanwhile the entry is *in flight*: the relay's outbox reads skip it, so it is not
/// sent twice by this process. Entries stay in flight until they are recorded as delivered or
/// failed, and a few seconds beyond, because an outbox read that began before the record may
/// still return them.
public final class DeliveryHandoff: Sendable {
    private struct State {
        var queued: [OutboxEntry] = []
        var inFlight: Set<String> = []
        /// Recently settled ids, oldest first, with when they were settled.
        var settled: [(id: String, at: ContinuousClock.Instant)] = []
        var settledHead = 0
    }

    private let state = Mutex(State())
    /// Signalled when entries are handed off.
    public let wakeup: Wakeup
    /// How long a settled id still counts as in flight.
    let settleGrace: Duration
    /// The clock the grace period is measured on (a test moves its own).
    private let now: @Sendable () -> ContinuousClock.Instant

    public init(wakeup: Wakeup, settleGrace: Duration = .seconds(5), now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.wakeup = wakeup
        self.settleGrace = settleGrace
        self.now = now
    }

    /// Marks entries about to be committed as in flight, before the commit: otherwise an
    /// outbox read between the commit and `push` would send them as well.
    public func reserve(_ entries: [OutboxEntry]) {
        state.withLock { state in
            for entry in entries where entry.isTDMQ { state.inFlight.insert(entry.id) }
        }
    }

    /// Hands over committed TDMQ entries (other targets are ignored: their relays read the
    /// outbox); `uncommitted` were reserved but not written after all.
    public func push(_ entries: [OutboxEntry], uncommitted: [OutboxEntry] = []) {
        let tdmq = entries.filter(\.isTDMQ)
        state.withLock { state in
            state.queued.append(contentsOf: tdmq)
            for entry in tdmq { state.inFlight.insert(entry.id) }
            for entry in uncommitted { state.inFlight.remove(entry.id) }
        }
        if !tdmq.isEmpty { wakeup.signal() }
    }

    /// Up to `max` handed-off entries, oldest first.
    func take(max: Int) -> [OutboxEntry] {
        state.withLock { state in
            let batch = Array(state.queued.prefix(max))
            state.queued.removeFirst(batch.count)
            return batch
        }
    }

    /// The outbox entries the relay should send itself: those not in flight here, which are in
    /// flight from now on (until recorded), so the next read does not return them again while
    /// their delivery is being recorded.
    func claimNotInFlight(_ entries: [OutboxEntry]) -> [OutboxEntry] {
        state.withLock { state in
            prune(&state, now: now())
            return entries.filter { state.inFlight.insert($0.id).inserted }
        }
    }

    /// The entries are recorded as delivered in the store.
    func settle(_ ids: [String]) {
        let settledAt = now()
        state.withLock { state in
            for id in ids { state.settled.append((id, settledAt)) }
            prune(&state, now: settledAt)
        }
    }

    /// The entries failed and are recorded with their next attempt: outbox reads may take them
    /// again when they are due.
    func release(_ ids: [String]) {
        state.withLock { state in
            for id in ids { state.inFlight.remove(id) }
        }
    }

    /// Forgets ids settled longer ago than the grace period.
    private func prune(_ state: inout State, now: ContinuousClock.Instant) {
        while state.settledHead < state.settled.count, now - state.settled[state.settledHead].at > settleGrace {
            state.inFlight.remove(state.settled[state.settledHead].id)
            state.settledHead += 1
        }
        if state.settledHead > 1024 && state.settledHead * 2 > state.settled.count {
            state.settled.removeFirst(state.settledHead)
            state.settledHead = 0
        }
    }
}

extension OutboxEntry {
    var isTDMQ: Bool {
        if case .mq = target { true } else { false }
    }
}

/// The relays' wakeups, signalled by the dispatcher when it committed deliveries for them.
public struct RelayWakeups: Sendable {
    public var tdmq: Wakeup?
    public var http: Wakeup?

    public init(tdmq: Wakeup? = nil, http: Wakeup? = nil) {
        self.tdmq = tdmq
        self.http = http
    }
}
