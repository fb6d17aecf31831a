/// What the engine needs from a message broker: declare its queues and exchanges, consume in
/// batches and settle each delivery, and publish batches that the broker confirms (or returns,
/// when a mandatory message cannot be routed).
///
/// `AMQPConnection` (rabbitmq-c, RabbitMQ) is the broker of a running service; `MemoryBroker`
/// keeps the same rules in memory for unit tests of the services that use one.
public protocol MessageBroker: Sendable {
    associatedtype Consumer: MessageConsumer

    /// Whether the broker is reachable now: false while a connection is lost and being made
    /// again (publishes then wait for it).
    var isConnected: Bool { get }
    /// The largest frame the broker takes: a message whose properties do not fit in one is not
    /// sent (`AMQPOutgoingMessage.encodingProblem(frameMax:)`).
    var frameMax: Int { get }
    /// Declares queues, exchanges and bindings (idempotent); throws if the broker refuses one.
    /// With `remember`, they are declared again after each reconnect: what the service itself
    /// consumes from. Destinations the users' rules name are not (there may be any number of
    /// them); their publisher declares them again when one turns out to be gone.
    func declare(_ topology: AMQPTopology, remember: Bool) async throws
    /// Starts consuming from `queue`, with at most `prefetch` unacknowledged deliveries.
    func consume(queue: String, prefetch: UInt16) async throws -> Consumer
    /// Publishes all and returns one result per message, in order, once each is settled: success
    /// when the broker confirmed it; a failure when it nacked it, returned it (mandatory and
    /// unroutable: `.returned`) or the connection was lost before the confirm. When the task is
    /// cancelled it returns at once, with `.cancelled` for what was not settled; what was not
    /// sent yet is then not sent.
    func publish(batch: [AMQPOutgoingMessage]) async -> [Result<Void, AMQPError>]
    /// Acknowledges a delivery (and, with `multiple`, every earlier one of its consumer).
    func ack(_ tag: AMQPDeliveryTag, multiple: Bool)
    /// Negatively acknowledges a delivery; with `requeue` it is delivered again (redelivered).
    func nack(_ tag: AMQPDeliveryTag, multiple: Bool, requeue: Bool)
}

/// One subscription of a `MessageBroker`.
public protocol MessageConsumer: Sendable {
    /// Waits for at least one delivery and returns up to `max` that are there; nil once the
    /// subscription ended (cancelled, its queue deleted, the broker gone, the task cancelled).
    func nextBatch(max: Int) async -> [AMQPMessage]?
    /// Up to `max` deliveries that are there already, without waiting.
    func takeBuffered(max: Int) -> [AMQPMessage]
    /// Ends the subscription; deliveries not yet returned go back to the queue.
    func cancel() async
}
