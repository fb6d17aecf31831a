public import MediaQueueCore
import Synchronization

/// TDMQ deliveries this process has just committed to the outbox, handed to its own relay in
/// memory, so an event goes out as soon as its job's end is recorded instead of at the relay's
/// next outbox read (which cost tens of milliseconds of latency per event under load).
///
/// The outbox stays the record and the store's lease the guard against sending twice: a
/// delivery to be handed off is committed already leased (`leased(_:now:)`: its next attempt is
/// the lease's end), so no relay's outbox read, this process's or another's, returns it before
/// then. If this process dies first, whichever relay reads after the lease's end sends it, with
/// the same `message-id`. The hand-off only saves the wait for a read.
public final class DeliveryHandoff: Sendable {
    private let state = Mutex((queued: [OutboxEntry](), closed: false))
    /// Signalled when entries are handed off.
    public let wakeup: Wakeup
    /// How long a handed-off delivery stays leased to this process's relay.
    public let lease: Duration
    /// How many deliveries wait here at most. A relay that cannot publish for long (its broker
    /// down) while jobs go on ending would otherwise hold every one of them in memory; beyond the
    /// limit they are committed due at once, for the relay's outbox reads, as if not handed off.
    public let limit: Int

    public init(wakeup: Wakeup, lease: Duration, limit: Int = RelayOptions().handoffLimit) {
        self.wakeup = wakeup
        self.lease = lease
        self.limit = limit
    }

    /// `entry` as it is to be committed: a TDMQ delivery leased to this process's relay until
    /// `now + lease`; other targets, and everything once the relay has stopped or while `limit`
    /// deliveries wait here, unchanged (due at once, for whichever relay reads the outbox).
    public func leased(_ entry: OutboxEntry, now: Timestamp) -> OutboxEntry {
        guard entry.isTDMQ, state.withLock({ !$0.closed && $0.queued.count < limit }) else { return entry }
        var leased = entry
        leased.nextAttempt = now + lease
        return leased
    }

    /// Hands over committed entries: the TDMQ deliveries committed leased (`leased(_:now:)`),
    /// as many as the limit leaves room for. One left out waits in the outbox for its lease's end.
    /// One committed unleased is due at once for any relay's outbox read, so sending it from
    /// here as well could send it twice.
    public func push(_ committed: [OutboxEntry]) {
        let handed = committed.filter { $0.isTDMQ && $0.nextAttempt > $0.createdAt }
        guard !handed.isEmpty else { return }
        state.withLock { state in
            if !state.closed { state.queued.append(contentsOf: handed.prefix(max(0, limit - state.queued.count))) }
        }
        wakeup.signal()
    }

    /// Up to `max` handed-off entries, oldest first, whose lease is still running at `now`.
    /// Those whose lease has ended are dropped: they are the outbox's again, for whichever relay
    /// leases them next, and sending them from here too could send them twice.
    func take(max: Int, now: Timestamp) -> [OutboxEntry] {
        state.withLock { state in
            var batch: [OutboxEntry] = []
            var taken = 0
            for entry in state.queued {
                if batch.count == max { break }
                taken += 1
                if entry.nextAttempt > now { batch.append(entry) }
            }
            state.queued.removeFirst(taken)
            return batch
        }
    }

    /// The relay stops: returns what is still handed off (to be made due again at once), and
    /// from now on deliveries are committed unleased and not handed off.
    func close() -> [OutboxEntry] {
        state.withLock { state in
            state.closed = true
            defer { state.queued = [] }
            return state.queued
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
    /// The workflow service, told which runs had a job end.
    public var workflows: RunsToAdvance?

    public init(tdmq: Wakeup? = nil, http: Wakeup? = nil, workflows: RunsToAdvance? = nil) {
        self.tdmq = tdmq
        self.http = http
        self.workflows = workflows
    }
}
