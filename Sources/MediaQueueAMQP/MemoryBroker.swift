import Synchronization

/// A message broker in memory, with the rules of RabbitMQ that MediaQueue relies on, for unit
/// tests of the services that use a `MessageBroker` (as swift-jobs keeps `MemoryQueue` beside
/// its drivers). Every publish is confirmed at once.
///
/// - Queues keep their ready messages in order. A delivery stays unacknowledged until it is
///   acked, or nacked (with `requeue`, it goes back to the head of its queue, redelivered); a
///   consumer holds at most `prefetch` unacknowledged deliveries.
/// - The default exchange routes to the queue the routing key names; a declared exchange routes
///   by its bindings (`direct`: equal keys, `fanout`: all, `topic`: `*` one word, `#` any).
///   A mandatory message that reaches no queue is returned (`.returned`); one that is not
///   mandatory is dropped. Publishing to an exchange that does not exist fails (RabbitMQ's 404).
///   A message that cannot be put in frames of the size `AMQPConnection` asks for fails with
///   `.unencodable`, as it does on a connection.
/// - Faults for tests: `refusePublishes` makes the broker nack what a rule picks; `delete`
///   removes a queue and ends its consumers; `loseConnection(duringNextDeclares:)` fails
///   declares as a dropped connection does; `blockPublishers` holds publishes unconfirmed, as
///   RabbitMQ does under a resource alarm.
///
/// Tests wait for what they expect with `wait(for:)`, which is re-checked after every change.
public final class MemoryBroker: MessageBroker {
    /// What the queues hold now.
    public struct Snapshot: Sendable {
        /// Ready messages by queue, in delivery order.
        public var ready: [String: [AMQPMessage]] = [:]
        /// Deliveries not yet settled, by queue.
        public var unacknowledged: [String: Int] = [:]
        /// Acks and nacks of deliveries that are not outstanding (RabbitMQ closes the channel
        /// for these), in the order they came.
        public var misuse: [String] = []
        /// Consumers that have not ended, by queue.
        public var consumers: [String: Int] = [:]
        /// Publishes waiting for the broker to stop blocking its publishers.
        public var blockedPublishes = 0

        public func messages(in queue: String) -> [AMQPMessage] { ready[queue] ?? [] }
    }

    public typealias PublishRule = @Sendable (AMQPOutgoingMessage) -> Bool

    private struct Delivery {
        let queue: String
        let consumer: UInt64
        let message: AMQPMessage
    }

    private struct State {
        var snapshot = Snapshot()
        var exchanges: [String: String] = [:]
        var bindings: [AMQPBinding] = []
        var outstanding: [UInt64: Delivery] = [:]
        var nextTag: UInt64 = 0
        var nextConsumer: UInt64 = 0
        var consumers: [UInt64: (queue: String, prefetch: Int, ended: Bool)] = [:]
        var refused: PublishRule?
        /// What the next declares fail with, first one first.
        var declareFailures: [AMQPError] = []
        var blocking = false
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    // MARK: MessageBroker

    /// Always: the memory broker is never away.
    public var isConnected: Bool { true }
    public var frameMax: Int { AMQPProperties.requestedFrameMax }

    /// Declares `topology`; a memory broker never reconnects, so `remember` changes nothing.
    public func declare(_ topology: AMQPTopology, remember: Bool = true) async throws {
        try topology.checkEncodable()
        try changing { (state) throws(AMQPError) in
            if !state.declareFailures.isEmpty { throw state.declareFailures.removeFirst() }
            for queue in topology.queues where state.snapshot.ready[queue.name] == nil {
                state.snapshot.ready[queue.name] = []
            }
            for exchange in topology.exchanges { state.exchanges[exchange.name] = exchange.type }
            for binding in topology.bindings where !state.bindings.contains(binding) { state.bindings.append(binding) }
        }
    }

    public func consume(queue: String, prefetch: UInt16) async throws -> MemoryConsumer {
        let id = try changing { state -> UInt64 in
            guard state.snapshot.ready[queue] != nil else {
                throw AMQPError(.channelClosed, "NOT_FOUND - no queue '\(queue)'", replyCode: 404)
            }
            state.nextConsumer += 1
            state.consumers[state.nextConsumer] = (queue, prefetch == 0 ? .max : Int(prefetch), false)
            return state.nextConsumer
        }
        return MemoryConsumer(id: id, broker: self)
    }

    public func publish(batch: [AMQPOutgoingMessage]) async -> [Result<Void, AMQPError>] {
        if !batch.isEmpty && state.withLock({ $0.blocking }) {
            changing { $0.snapshot.blockedPublishes += 1 }
            while state.withLock({ $0.blocking }) && !Task.isCancelled {
                await waitForChange { !state.withLock { $0.blocking } }
            }
            changing { $0.snapshot.blockedPublishes -= 1 }
            if Task.isCancelled {
                return batch.map { _ in .failure(.publisherStoppedWaiting) }
            }
        }
        return changing { state in
            // As RabbitMQ: a publish to a missing exchange closes the channel, and the publishes
            // after it on that channel fail with the same close.
            var closed: AMQPError?
            return batch.map { message in
                if let closed { return .failure(closed) }
                let result = route(message, in: &state)
                if case .failure(let error) = result, error.code == .channelClosed { closed = error }
                return result
            }
        }
    }

    public func ack(_ tag: AMQPDeliveryTag, multiple: Bool) {
        settle(tag, multiple: multiple, requeue: nil)
    }

    public func nack(_ tag: AMQPDeliveryTag, multiple: Bool, requeue: Bool) {
        settle(tag, multiple: multiple, requeue: requeue)
    }

    // MARK: For tests

    /// What the queues hold now.
    public var snapshot: Snapshot {
        state.withLock { state in
            var snapshot = state.snapshot
            for consumer in state.consumers.values where !consumer.ended { snapshot.consumers[consumer.queue, default: 0] += 1 }
            return snapshot
        }
    }

    /// Waits until `probe` returns a value, checking after every change; throws
    /// `CancellationError` if the task is cancelled first (a test's time limit).
    @discardableResult
    public func wait<T>(for probe: (Snapshot) -> T?) async throws -> T {
        while true {
            try Task.checkCancellation()
            if let value = probe(snapshot) { return value }
            await waitForChange { probe(snapshot) != nil }
        }
    }

    /// From now on, publishes that `rule` picks are nacked by the broker; nil accepts all again.
    public func refusePublishes(_ rule: PublishRule?) {
        changing { $0.refused = rule }
    }

    /// The next `count` declares fail with `.connectionLost`, declaring nothing: what a client
    /// sees when the broker closes the connection during one (RabbitMQ does when a quorum queue
    /// cannot start in time).
    public func loseConnection(duringNextDeclares count: Int) {
        failNextDeclares(count, with: AMQPError(.connectionLost, "connection lost during the request: the broker closed it"))
    }

    /// The next `count` declares are refused, declaring nothing: what RabbitMQ answers (406) when
    /// a queue exists with other arguments, or (403) when the user may no longer declare it.
    public func refuseNextDeclares(_ count: Int, replyCode: UInt16 = 406) {
        let reason = replyCode == 403 ? "ACCESS_REFUSED - access to the queue refused" : "PRECONDITION_FAILED - inequivalent arg 'x-queue-type'"
        failNextDeclares(count, with: AMQPError(.channelClosed, reason, replyCode: replyCode))
    }

    private func failNextDeclares(_ count: Int, with error: AMQPError) {
        changing { $0.declareFailures = Array(repeating: error, count: count) }
    }

    /// While `blocked`, publishes neither route nor confirm, and wait until it is lifted: what
    /// RabbitMQ does to publishers under a memory or disk alarm, for as long as the alarm lasts.
    public func blockPublishers(_ blocked: Bool) {
        changing { $0.blocking = blocked }
    }

    /// Deletes a queue with its ready messages; its consumers end (their deliveries can still be
    /// settled).
    public func delete(queue: String) {
        changing { state in
            state.snapshot.ready[queue] = nil
            for (id, consumer) in state.consumers where consumer.queue == queue { state.consumers[id]?.ended = true }
        }
    }

    /// Deletes an exchange and its bindings (an operator's cleanup, or a broker's reset).
    public func delete(exchange: String) {
        changing { state in
            state.exchanges[exchange] = nil
            state.bindings.removeAll { $0.exchange == exchange }
        }
    }

    // MARK: Rules

    private func route(_ message: AMQPOutgoingMessage, in state: inout State) -> Result<Void, AMQPError> {
        if let error = message.encodingError(frameMax: frameMax) { return .failure(error) }
        if let refused = state.refused, refused(message) { return .failure(AMQPError(.nacked, "the broker nacked the message")) }
        let queues: [String]
        if message.exchange.isEmpty {
            queues = state.snapshot.ready[message.routingKey] == nil ? [] : [message.routingKey]
        } else if let type = state.exchanges[message.exchange] {
            queues = state.bindings.filter { binding in
                binding.exchange == message.exchange && state.snapshot.ready[binding.queue] != nil
                    && Self.matches(binding.routingKey, message.routingKey, type: type)
            }.map(\.queue)
        } else {
            return .failure(AMQPError(.channelClosed, "NOT_FOUND - no exchange '\(message.exchange)'", replyCode: 404))
        }
        if queues.isEmpty && message.mandatory { return .failure(AMQPError(.returned, "NO_ROUTE", replyCode: 312)) }
        for queue in Set(queues) {
            state.snapshot.ready[queue]!.append(AMQPMessage(
                body: message.body, properties: message.properties, deliveryTag: .none, redelivered: false,
                exchange: message.exchange, routingKey: message.routingKey
            ))
        }
        return .success(())
    }

    static func matches(_ pattern: String, _ key: String, type: String) -> Bool {
        switch type {
        case "fanout": return true
        case "topic": return topicMatches(pattern.split(separator: ".", omittingEmptySubsequences: false)[...], key.split(separator: ".", omittingEmptySubsequences: false)[...])
        default: return pattern == key
        }
    }

    private static func topicMatches(_ pattern: ArraySlice<Substring>, _ words: ArraySlice<Substring>) -> Bool {
        guard let first = pattern.first else { return words.isEmpty }
        if first == "#" {
            return words.indices.contains { topicMatches(pattern.dropFirst(), words[$0...]) } || topicMatches(pattern.dropFirst(), [])
        }
        guard let word = words.first, first == "*" || first == word else { return false }
        return topicMatches(pattern.dropFirst(), words.dropFirst())
    }

    private func settle(_ tag: AMQPDeliveryTag, multiple: Bool, requeue: Bool?) {
        changing { state in
            let consumer = tag.session
            let settled = state.outstanding.filter { entry in
                entry.value.consumer == consumer && (entry.key == tag.value || (multiple && entry.key <= tag.value))
            }.sorted { $0.key < $1.key }
            guard settled.contains(where: { $0.key == tag.value }) else {
                state.snapshot.misuse.append("\(requeue == nil ? "ack" : "nack") of unknown delivery \(tag.value)")
                return
            }
            var requeued: [String: [AMQPMessage]] = [:]
            for (key, delivery) in settled {
                state.outstanding[key] = nil
                state.snapshot.unacknowledged[delivery.queue, default: 1] -= 1
                guard requeue == true, state.snapshot.ready[delivery.queue] != nil else { continue }
                var message = delivery.message
                message.redelivered = true
                message.deliveryTag = .none
                requeued[delivery.queue, default: []].append(message)
            }
            for (queue, messages) in requeued { state.snapshot.ready[queue]!.insert(contentsOf: messages, at: 0) }
        }
    }

    // MARK: Consumers

    /// Up to `max` deliveries for the consumer within its prefetch; nil once it ended.
    fileprivate func take(_ consumer: UInt64, max: Int) -> [AMQPMessage]? {
        guard let count = state.withLock({ Self.available(to: consumer, max: max, in: $0) }) else { return nil }
        guard count > 0 else { return [] }
        return changing { state -> [AMQPMessage] in
            // Another consumer of the queue may have taken some since.
            guard let count = Self.available(to: consumer, max: max, in: state), count > 0,
                let queue = state.consumers[consumer]?.queue
            else { return [] }
            let messages = state.snapshot.ready[queue]!.prefix(count)
            state.snapshot.ready[queue]!.removeFirst(count)
            return messages.map { message in
                state.nextTag += 1
                var delivered = message
                delivered.deliveryTag = AMQPDeliveryTag(session: consumer, channel: 1, value: state.nextTag)
                state.outstanding[state.nextTag] = Delivery(queue: queue, consumer: consumer, message: delivered)
                state.snapshot.unacknowledged[queue, default: 0] += 1
                return delivered
            }
        }
    }

    /// How many deliveries the consumer may take now (nil once it ended).
    private static func available(to consumer: UInt64, max: Int, in state: State) -> Int? {
        guard let subscription = state.consumers[consumer], !subscription.ended,
            let ready = state.snapshot.ready[subscription.queue]
        else { return nil }
        let held = state.outstanding.values.count { $0.consumer == consumer }
        return Swift.max(0, Swift.min(max, subscription.prefetch - held, ready.count))
    }

    /// Whether `nextBatch` would return now.
    fileprivate func ready(for consumer: UInt64) -> Bool {
        state.withLock { Self.available(to: consumer, max: 1, in: $0) != 0 }
    }

    fileprivate func end(_ consumer: UInt64) {
        changing { $0.consumers[consumer]?.ended = true }
    }

    /// Waits until anything changes (or the task is cancelled).
    fileprivate func waitForChange(unlessReady check: () -> Bool) async {
        let waiter = state.withLock { state -> UInt64 in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                state.withLock { $0.waiters[waiter] = continuation }
                if check() || Task.isCancelled { wake(waiter) }
            }
        } onCancel: {
            wake(waiter)
        }
    }

    private func wake(_ waiter: UInt64) {
        state.withLock { $0.waiters.removeValue(forKey: waiter) }?.resume()
    }

    /// Applies a change and wakes everyone waiting for one.
    private func changing<T: Sendable, E: Error>(_ change: (inout State) throws(E) -> T) throws(E) -> T {
        let (value, waiters) = try state.withLock { (state) throws(E) -> (T, [CheckedContinuation<Void, Never>]) in
            let value = try change(&state)
            defer { state.waiters = [:] }
            return (value, Array(state.waiters.values))
        }
        for waiter in waiters { waiter.resume() }
        return value
    }
}

/// A subscription of a `MemoryBroker`.
public struct MemoryConsumer: MessageConsumer {
    let id: UInt64
    let broker: MemoryBroker

    public func nextBatch(max: Int) async -> [AMQPMessage]? {
        precondition(max > 0, "max must be positive")
        while !Task.isCancelled {
            guard let batch = broker.take(id, max: max) else { return nil }
            if !batch.isEmpty { return batch }
            await broker.waitForChange { broker.ready(for: id) }
        }
        return nil
    }

    public func takeBuffered(max: Int) -> [AMQPMessage] {
        broker.take(id, max: max) ?? []
    }

    public func cancel() async {
        broker.end(id)
    }
}
