import Glibc
import Synchronization

/// Delivers the result of a request made to the connection thread.
typealias Reply<T: Sendable> = @Sendable (Result<T, AMQPError>) -> Void

/// Settling a delivery.
enum Settlement: Sendable {
    case ack(multiple: Bool)
    case nack(multiple: Bool, requeue: Bool)
    case reject(requeue: Bool)
}

/// A request other than a publish, for the connection thread.
enum Command: Sendable {
    /// The topology, whether to declare it again after each reconnect, and the reply.
    case declare(AMQPTopology, remember: Bool, Reply<Void>)
    case declareQueue(AMQPQueue, Reply<String>)
    case bind(AMQPBinding, Reply<Void>)
    case deleteQueue(String, Reply<Void>)
    case deleteExchange(String, Reply<Void>)
    case queueStatus(String, Reply<QueueStatus>)
    case get(String, Reply<AMQPMessage?>)
    case consume(AMQPConsumer, Reply<Void>)
    case cancel(AMQPConsumer, Reply<Void>)
    case settle(AMQPDeliveryTag, Settlement)

    /// Fails the request (settlements have nobody waiting).
    func fail(_ error: AMQPError) {
        switch self {
        case .declare(_, _, let reply), .bind(_, let reply), .deleteQueue(_, let reply), .deleteExchange(_, let reply):
            reply(.failure(error))
        case .declareQueue(_, let reply): reply(.failure(error))
        case .queueStatus(_, let reply): reply(.failure(error))
        case .get(_, let reply): reply(.failure(error))
        case .consume(let consumer, let reply):
            consumer.finish()
            reply(.failure(error))
        case .cancel(let consumer, let reply):
            consumer.finish()
            reply(.success(()))
        case .settle: break
        }
    }
}

/// Result of a passive queue declare.
struct QueueStatus: Sendable {
    var messages: UInt32
    var consumers: UInt32
}

/// A publish waiting to be sent or confirmed.
struct PendingPublish: Sendable {
    var message: AMQPOutgoingMessage
    var reply: Reply<Void>
    /// Set once nobody waits for the publish any more: if it is not sent yet, it is not sent.
    var abandoned: AbandonFlag?
}

/// Set when the publisher of a batch stopped waiting for it (its task was cancelled).
final class AbandonFlag: Sendable {
    private let flag = Atomic(false)
    var isSet: Bool { flag.load(ordering: .acquiring) }
    func set() { flag.store(true, ordering: .releasing) }
}

/// Where Swift tasks leave requests for the connection thread, and how they learn about its state.
///
/// All fields sit behind one `Mutex`; a byte written to a pipe wakes the thread when it polls.
final class Mailbox: Sendable {
    enum Phase: Sendable { case notStarted, running, finished }

    struct State {
        var phase: Phase = .notStarted
        var stopRequested = false
        var connected = false
        /// The frame size the broker granted on the latest connection.
        var frameMax = AMQPProperties.requestedFrameMax
        var connections: UInt64 = 0
        var commands: [Command] = []
        var publishes: [PendingPublish] = []
        var publishHead = 0
        var wakeFD: Int32 = -1
        var wakePending = false
        /// The socket of the connection the thread has up, or -1: cleared under the lock before
        /// the thread closes it, so `shutDownSocket` never touches a reused descriptor number.
        var socketFD: Int32 = -1
        var connectedWaiters: [UInt64: CheckedContinuation<Void, any Error>] = [:]
        var nextWaiterID: UInt64 = 0
    }

    let state = Mutex(State())

    // MARK: Called by Swift tasks

    /// Marks `run()` as started; false if it was started before.
    func start(wakeFD: Int32) -> Bool {
        state.withLock { state in
            guard state.phase == .notStarted else { return false }
            state.phase = .running
            state.wakeFD = wakeFD
            return true
        }
    }

    /// Asks the thread to close and end.
    func requestStop() {
        state.withLock { state in
            state.stopRequested = true
            Self.wake(&state)
        }
    }

    /// Shuts down the connection's socket under the thread, which then finds the connection
    /// lost: for a thread that cannot see a stop because it waits in a write the broker does not
    /// read (under a resource alarm RabbitMQ stops reading a connection that publishes).
    func shutDownSocket() {
        state.withLock { state in
            if state.socketFD >= 0 { _ = shutdown(state.socketFD, Int32(SHUT_RDWR)) }
        }
    }

    /// Queues a command, or fails it at once if `run()` has ended.
    func enqueue(_ command: Command) {
        let accepted = state.withLock { state in
            guard state.phase != .finished else { return false }
            state.commands.append(command)
            Self.wake(&state)
            return true
        }
        if !accepted { command.fail(.init(.shutdown, "the AMQP connection is not running")) }
    }

    /// Queues publishes, or fails them at once if `run()` has ended.
    func enqueue(_ publishes: [PendingPublish]) {
        let accepted = state.withLock { state in
            guard state.phase != .finished else { return false }
            state.publishes.append(contentsOf: publishes)
            Self.wake(&state)
            return true
        }
        if !accepted {
            for publish in publishes { publish.reply(.failure(.init(.shutdown, "the AMQP connection is not running"))) }
        }
    }

    func waitUntilConnected() async throws {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let result: Result<Void, any Error>? = state.withLock { state in
                    if state.phase == .finished { return .failure(AMQPError(.shutdown, "the AMQP connection is not running")) }
                    if state.connected { return .success(()) }
                    // Registered after a cancellation already ran: fail at once instead of waiting forever.
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.connectedWaiters[id] = continuation
                    return nil
                }
                if let result { continuation.resume(with: result) }
            }
        } onCancel: {
            let waiter = state.withLock { $0.connectedWaiters.removeValue(forKey: id) }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Writes one byte to the wake-up pipe unless one is already pending. Called with the lock held,
    /// so the thread cannot close the pipe in between (it sets `.finished` under the lock first).
    private static func wake(_ state: inout State) {
        guard state.phase == .running, !state.wakePending, state.wakeFD >= 0 else { return }
        state.wakePending = true
        var byte: UInt8 = 1
        // The write end is non-blocking; a full pipe already means "wake up", so the result is ignored.
        _ = write(state.wakeFD, &byte, 1)
    }

    // MARK: Called by the connection thread

    var isStopRequested: Bool { state.withLock { $0.stopRequested } }

    /// Takes every queued command and clears the wake-up flag.
    func takeCommands() -> [Command] {
        state.withLock { state in
            state.wakePending = false
            guard !state.commands.isEmpty else { return [] }
            let commands = state.commands
            state.commands = []
            return commands
        }
    }

    /// Takes every queued command and up to `limit` queued publishes, oldest first, at once: a
    /// command queued before a publish (an ack before a dead letter) is among those taken.
    func takeCommandsAndPublishes(limit: Int) -> (commands: [Command], publishes: [PendingPublish]) {
        state.withLock { state in
            state.wakePending = false
            let commands = state.commands
            state.commands = []
            return (commands, Self.takePublishes(limit: limit, from: &state))
        }
    }

    private static func takePublishes(limit: Int, from state: inout State) -> [PendingPublish] {
        let available = state.publishes.count - state.publishHead
        let count = min(limit, available)
        guard count > 0 else { return [] }
        let taken = Array(state.publishes[state.publishHead..<(state.publishHead + count)])
        state.publishHead += count
        if state.publishHead == state.publishes.count {
            state.publishes.removeAll(keepingCapacity: true)
            state.publishHead = 0
        } else if state.publishHead > 4096 {
            state.publishes.removeFirst(state.publishHead)
            state.publishHead = 0
        }
        return taken
    }

    var hasPublishes: Bool { state.withLock { $0.publishes.count > $0.publishHead } }

    /// Records whether the thread is connected, and releases `waitUntilConnected` callers.
    func setConnected(_ connected: Bool, frameMax: Int? = nil, socket: Int32 = -1) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.connected = connected
            state.socketFD = connected ? socket : -1
            if let frameMax { state.frameMax = frameMax }
            guard connected else { return [] }
            state.connections += 1
            let waiters = Array(state.connectedWaiters.values)
            state.connectedWaiters = [:]
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Ends the mailbox: from now on every request fails with `.shutdown`; returns what was still queued.
    func finish() -> (commands: [Command], publishes: [PendingPublish], waiters: [CheckedContinuation<Void, any Error>]) {
        state.withLock { state in
            state.phase = .finished
            state.connected = false
            state.socketFD = -1
            state.wakeFD = -1
            let result = (
                state.commands,
                Array(state.publishes[state.publishHead...]),
                Array(state.connectedWaiters.values)
            )
            state.commands = []
            state.publishes = []
            state.publishHead = 0
            state.connectedWaiters = [:]
            return result
        }
    }
}
