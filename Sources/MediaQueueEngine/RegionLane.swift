import MediaQueueCore
import Synchronization

/// One broker's deliveries on their way out of the TDMQ relay, when regions have brokers of
/// their own. Each broker is published to in a loop of its own, so one that is down or blocks
/// its publishers holds back only the events of its own regions.
///
/// The relay's reading loop `add`s what it leased for the region and waits (`untilIdle`) for a
/// lane that was idle when it added, so a healthy broker paces the reads as one loop did; but
/// only up to a deadline, and not at all for a lane still busy with an earlier batch (its broker
/// is slow or away). What it adds to a busy lane waits there, up to `limit` deliveries (a full
/// lane's region is not read at all until it has room: `isFull`); the rest are left out, and the
/// relay hands them back, due again at once for any relay. Waiting ones whose leases end
/// meanwhile are due again in the outbox then (the relay sends only what it still holds). A copy
/// of a delivery in the batch being sent is left out too, but not handed back (it would be read
/// again at once, and again left out, until the batch settles): it keeps the lease it was read
/// with, and is read again when that ends.
final class RegionLane: Sendable {
    private struct State {
        var pending: [OutboxEntry] = []
        var pendingIDs: Set<String> = []
        /// The batch being sent: a copy added meanwhile (leased again, its lease having lapsed
        /// under a long publish) is left out, or it would go out twice.
        var sendingIDs: Set<String> = []
        var closed = false
        var ended = false
        /// Confirmed since `untilIdle` last returned.
        var delivered = 0

        var isIdle: Bool { sendingIDs.isEmpty && pending.isEmpty }
    }

    private let batchSize: Int
    private let limit: Int
    private let time: any TimeSource
    private let state = Mutex(State())
    /// Wakes the lane's loop: deliveries were added, or it is closed.
    private let work: Wakeup
    /// Wakes `untilIdle`: the lane sent all it held, or ended.
    private let idle: Wakeup

    init(batchSize: Int, limit: Int, time: any TimeSource) {
        self.batchSize = batchSize
        self.limit = limit
        self.time = time
        work = Wakeup(time: time)
        idle = Wakeup(time: time)
    }

    /// Queues deliveries for the lane's loop; returns whether the lane was idle (the loop then
    /// sends them at once), and those left out because the lane was full, for the relay to hand
    /// back. One the lane holds already is replaced: the newer copy carries the lease that counts.
    func add(_ entries: [OutboxEntry]) -> (wasIdle: Bool, full: [OutboxEntry]) {
        let added = state.withLock { state in
            let wasIdle = state.isIdle
            var full: [OutboxEntry] = []
            for entry in entries where !state.sendingIDs.contains(entry.id) {
                if state.pendingIDs.contains(entry.id) {
                    if let index = state.pending.firstIndex(where: { $0.id == entry.id }) { state.pending[index] = entry }
                } else if state.pending.count < limit {
                    state.pending.append(entry)
                    state.pendingIDs.insert(entry.id)
                } else {
                    full.append(entry)
                }
            }
            return (wasIdle, full)
        }
        work.signal()
        return added
    }

    /// Whether the lane holds as many waiting deliveries as it may: more would be left out.
    var isFull: Bool { state.withLock { $0.pending.count >= limit } }

    /// Waits until the lane has sent all it holds, or `deadline`; returns how many deliveries it
    /// sent since this last returned.
    func untilIdle(by deadline: Timestamp) async -> Int {
        while true {
            let delivered = state.withLock { state -> Int? in
                guard state.isIdle || state.ended else { return nil }
                defer { state.delivered = 0 }
                return state.delivered
            }
            if let delivered { return delivered }
            let left = deadline.milliseconds - time.now.milliseconds
            guard left > 0, !Task.isCancelled else { return 0 }
            await idle.wait(upTo: .milliseconds(left))
        }
    }

    /// Makes `run` return after the batch it is sending.
    func close() {
        state.withLock { $0.closed = true }
        work.signal()
    }

    /// Sends what is added, in batches of up to `batchSize`, with `send` (which returns how many
    /// it delivered), until closed or cancelled.
    func run(send: ([OutboxEntry]) async -> Int) async {
        defer {
            state.withLock { $0.ended = true }
            idle.signal()
        }
        while !Task.isCancelled {
            let batch = state.withLock { state -> [OutboxEntry]? in
                guard !state.closed else { return nil }
                let batch = Array(state.pending.prefix(batchSize))
                state.pending.removeFirst(batch.count)
                state.pendingIDs.subtract(batch.map(\.id))
                state.sendingIDs = Set(batch.map(\.id))
                return batch
            }
            guard let batch else { return }
            if batch.isEmpty {
                await work.wait()
                continue
            }
            let delivered = await send(batch)
            let isIdle = state.withLock { state in
                state.sendingIDs = []
                state.delivered += delivered
                return state.isIdle
            }
            if isIdle { idle.signal() }
        }
    }

    /// What the lane held and never sent (once `run` has returned), to be handed back.
    func takeUnsent() -> [OutboxEntry] {
        state.withLock { state in
            defer {
                state.pending = []
                state.pendingIDs = []
            }
            return state.pending
        }
    }
}
