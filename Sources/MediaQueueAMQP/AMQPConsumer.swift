import Synchronization

/// A subscription to one queue, created by `AMQPConnection.consume(queue:prefetch:)`.
///
/// It survives reconnects: the connection subscribes it again with the same prefetch, and
/// `nextBatch` simply goes on returning messages. Messages buffered but not yet returned when the
/// connection drops are discarded (the broker redelivers them).
public final class AMQPConsumer: MessageConsumer {
    /// The queue consumed from.
    public let queue: String
    /// Maximum unacknowledged deliveries (basic.qos per consumer).
    public let prefetch: UInt16
    let id: UInt64
    private let connection: AMQPConnection

    private struct State {
        var buffer: [AMQPMessage] = []
        var head = 0
        var finished = false
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
        var nextWaiterID: UInt64 = 0
    }

    private let state = Mutex(State())

    init(id: UInt64, queue: String, prefetch: UInt16, connection: AMQPConnection) {
        self.id = id
        self.queue = queue
        self.prefetch = prefetch
        self.connection = connection
    }

    /// Waits for at least one delivery and returns up to `max` that are already buffered (it never
    /// waits for more than the first); nil once the consumer is cancelled, the broker cancelled it
    /// (e.g. its queue was deleted), the connection's `run()` ended, or the calling task is cancelled.
    public func nextBatch(max: Int) async -> [AMQPMessage]? {
        precondition(max > 0, "max must be positive")
        while true {
            if let batch = takeBatch(max: max) { return batch.isEmpty ? nil : batch }
            if Task.isCancelled { return nil }
            let waiterID = state.withLock { state -> UInt64 in
                state.nextWaiterID += 1
                return state.nextWaiterID
            }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let ready = state.withLock { state -> Bool in
                        if state.finished || state.head < state.buffer.count || Task.isCancelled { return true }
                        state.waiters.append((waiterID, continuation))
                        return false
                    }
                    if ready { continuation.resume() }
                }
            } onCancel: {
                let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                    guard let index = state.waiters.firstIndex(where: { $0.id == waiterID }) else { return nil }
                    return state.waiters.remove(at: index).continuation
                }
                waiter?.resume()
            }
        }
    }

    /// Up to `max` deliveries buffered already, without waiting.
    public func takeBuffered(max: Int) -> [AMQPMessage] {
        takeBatch(max: max) ?? []
    }

    /// Stops the subscription (basic.cancel). Messages already returned by `nextBatch` can still be
    /// acked; those buffered but not yet returned are requeued. Afterwards `nextBatch` returns nil.
    /// On a consumer that ended already (the broker cancelled it) this frees its channel, which
    /// requeues whatever is still unsettled: call it once its deliveries are settled.
    public func cancel() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            connection.mailbox.enqueue(.cancel(self, { _ in continuation.resume() }))
        }
    }

    /// A batch if one is buffered, an empty array if finished, nil if the caller must wait.
    private func takeBatch(max: Int) -> [AMQPMessage]? {
        state.withLock { state in
            let available = state.buffer.count - state.head
            if available == 0 { return state.finished ? [] : nil }
            let count = Swift.min(max, available)
            let batch = Array(state.buffer[state.head..<(state.head + count)])
            state.head += count
            if state.head == state.buffer.count {
                state.buffer.removeAll(keepingCapacity: true)
                state.head = 0
            }
            return batch
        }
    }

    // MARK: Called by the connection thread

    /// Buffers a delivery and wakes a waiting `nextBatch`; false if the consumer is finished.
    func deliver(_ message: AMQPMessage) -> Bool {
        let (accepted, waiter) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
            guard !state.finished else { return (false, nil) }
            state.buffer.append(message)
            return (true, state.waiters.isEmpty ? nil : state.waiters.removeFirst().continuation)
        }
        waiter?.resume()
        return accepted
    }

    /// Drops and returns the buffered messages not yet handed out.
    func drainBuffered() -> [AMQPMessage] {
        state.withLock { state in
            let rest = Array(state.buffer[state.head...])
            state.buffer = []
            state.head = 0
            return rest
        }
    }

    /// Ends the consumer: `nextBatch` returns what is buffered, then nil.
    func finish() {
        let waiters = state.withLock { state in
            state.finished = true
            let waiters = state.waiters
            state.waiters = []
            return waiters
        }
        for waiter in waiters { waiter.continuation.resume() }
    }

    var isFinished: Bool { state.withLock { $0.finished } }
}
