/// An exchange to declare.
public struct AMQPExchange: Sendable, Hashable {
    /// Exchange name.
    public var name: String
    /// `direct`, `topic`, `fanout` or `headers`.
    public var type: String
    /// Survives a broker restart.
    public var durable: Bool
    /// Deleted when its last binding goes.
    public var autoDelete: Bool
    /// Optional arguments (e.g. `alternate-exchange`).
    public var arguments: AMQPTable

    /// Creates an exchange description; durable `direct` by default.
    public init(name: String, type: String = "direct", durable: Bool = true, autoDelete: Bool = false, arguments: AMQPTable = [:]) {
        self.name = name
        self.type = type
        self.durable = durable
        self.autoDelete = autoDelete
        self.arguments = arguments
    }
}

/// A queue to declare.
public struct AMQPQueue: Sendable, Hashable {
    /// Queue name; empty asks the broker for a generated name (see `AMQPConnection.declareQueue`).
    public var name: String
    /// Survives a broker restart.
    public var durable: Bool
    /// Used only by this connection and deleted with it.
    public var exclusive: Bool
    /// Deleted when its last consumer goes.
    public var autoDelete: Bool
    /// Optional arguments (e.g. `x-max-priority`, `x-dead-letter-exchange`, `x-queue-type`).
    public var arguments: AMQPTable

    /// Creates a queue description; durable by default.
    public init(name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false, arguments: AMQPTable = [:]) {
        self.name = name
        self.durable = durable
        self.exclusive = exclusive
        self.autoDelete = autoDelete
        self.arguments = arguments
    }
}

/// A binding of a queue to an exchange.
public struct AMQPBinding: Sendable, Hashable {
    /// Queue name.
    public var queue: String
    /// Exchange name.
    public var exchange: String
    /// Routing key (binding key).
    public var routingKey: String
    /// Optional arguments (for `headers` exchanges).
    public var arguments: AMQPTable

    /// Creates a binding description.
    public init(queue: String, exchange: String, routingKey: String = "", arguments: AMQPTable = [:]) {
        self.queue = queue
        self.exchange = exchange
        self.routingKey = routingKey
        self.arguments = arguments
    }
}

/// Exchanges, queues and bindings declared together, in that order.
public struct AMQPTopology: Sendable, Hashable {
    /// Exchanges, declared first.
    public var exchanges: [AMQPExchange]
    /// Queues, declared second.
    public var queues: [AMQPQueue]
    /// Bindings, declared last.
    public var bindings: [AMQPBinding]

    /// Creates a topology.
    public init(exchanges: [AMQPExchange] = [], queues: [AMQPQueue] = [], bindings: [AMQPBinding] = []) {
        self.exchanges = exchanges
        self.queues = queues
        self.bindings = bindings
    }
}
