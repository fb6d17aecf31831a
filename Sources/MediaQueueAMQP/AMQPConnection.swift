import Foundation
import Glibc
public import Logging
import Synchronization

/// A RabbitMQ connection over rabbitmq-c that reconnects by itself.
///
/// One dedicated thread owns the rabbitmq-c connection for the whole of `run()`; the methods here
/// leave requests in a mailbox for it and await the answers, so no rabbitmq-c call ever runs on
/// Swift's cooperative pool. Publishes are confirmed (publisher confirms); the topology passed to
/// `declare` is declared again after every reconnect and consumers are resumed.
///
/// Delivery is at least once: a publish that was in flight when the connection dropped fails with
/// `.connectionLost` (retry it), and deliveries not yet acked when it dropped come again; acks for
/// them are ignored.
public final class AMQPConnection: MessageBroker {
    /// The configuration this connection was created with.
    public let configuration: AMQPConfiguration
    let logger: Logger
    let mailbox = Mailbox()
    private let nextConsumerID = Atomic<UInt64>(0)

    /// Creates a connection; nothing is started until `run()`.
    public init(configuration: AMQPConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Owns the connection thread until the calling task is cancelled, reconnecting as needed; on
    /// cancellation it closes cleanly (waiting up to `connectTimeout` for outstanding confirms),
    /// fails what waits with `.shutdown`, finishes consumers, and returns, within about twice
    /// `connectTimeout` even when the broker stopped reading the connection.
    ///
    /// Throws `.invalidURL` if the configuration's URL is not valid and `.shutdown` if `run()` was
    /// called before; connection failures are retried, not thrown.
    public func run() async throws {
        let endpoints = try configuration.endpoints()
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw AMQPError(.connectionFailed, "cannot create the wake-up pipe: errno \(errno)") }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            // Close-on-exec: a process the server spawns must not inherit (and keep open) the pipe.
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        guard mailbox.start(wakeFD: fds[1]) else {
            close(fds[0])
            close(fds[1])
            throw AMQPError(.shutdown, "run() was already called on this connection")
        }
        let worker = ConnectionWorker(
            configuration: configuration, endpoints: endpoints, logger: logger, mailbox: mailbox,
            wakeReadFD: fds[0], wakeWriteFD: fds[1]
        )
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let handoff = WorkerHandoff(worker: worker)
                let thread = Thread {
                    handoff.worker.main()
                    continuation.resume()
                }
                thread.name = "amqp-connection"
                thread.stackSize = 1 << 20
                thread.start()
            }
        } onCancel: { [configuration] in
            mailbox.requestStop()
            // The thread closes within `connectTimeout` (it waits that long for confirms) unless
            // it is stuck in a write the broker does not read; past twice that, its socket is
            // shut down under it. Once the connection is closed this finds no socket.
            Task.detached { [mailbox] in
                try? await Task.sleep(for: configuration.connectTimeout * 2)
                mailbox.shutDownSocket()
            }
        }
    }

    /// Resolves once connected (first time or after a reconnect); throws `.shutdown` if `run()`
    /// ended, and `CancellationError` if the calling task is cancelled.
    public func waitUntilConnected() async throws {
        try await mailbox.waitUntilConnected()
    }

    /// Whether the connection is up right now.
    public var isConnected: Bool { mailbox.state.withLock { $0.connected } }

    /// The frame size the broker granted on the latest connection (the size asked for before the
    /// first): what one message's properties must fit in.
    public var frameMax: Int { mailbox.state.withLock { $0.frameMax } }

    /// How many times a connection was established during `run()` (1 after the first connect;
    /// more after reconnects). For tests and metrics.
    package var connectionCount: UInt64 { mailbox.state.withLock { $0.connections } }

    /// Declares exchanges, queues and bindings now and remembers them, so they are declared again
    /// after every reconnect. Throws `.channelClosed` (with the broker's reason) on a conflict,
    /// `.unencodable` for a name longer than AMQP carries (nothing is declared then).
    public func declare(_ topology: AMQPTopology) async throws {
        try await declare(topology, remember: true)
    }

    /// Declares exchanges, queues and bindings now; with `remember`, again after every reconnect.
    public func declare(_ topology: AMQPTopology, remember: Bool) async throws {
        try topology.checkEncodable()
        try await request { .declare(topology, remember: remember, $0) }
    }

    /// Declares a queue that is not remembered (e.g. a server-named exclusive queue, name "");
    /// returns its name.
    public func declareQueue(_ queue: AMQPQueue) async throws -> String {
        try AMQPTopology(queues: [queue]).checkEncodable()
        return try await request { .declareQueue(queue, $0) }
    }

    /// Binds a queue to an exchange. Not remembered across reconnects: put bindings that must
    /// survive into `declare(_:)`.
    public func bind(_ binding: AMQPBinding) async throws {
        try await request { .bind(binding, $0) }
    }

    /// Deletes a queue (and forgets it if a declared topology had it).
    public func deleteQueue(_ name: String) async throws {
        try await request { .deleteQueue(name, $0) }
    }

    /// Deletes an exchange (and forgets it if a declared topology had it).
    public func deleteExchange(_ name: String) async throws {
        try await request { .deleteExchange(name, $0) }
    }

    /// Message count and consumer count of a queue (passive declare); throws `.channelClosed` with
    /// `replyCode` 404 if the queue does not exist.
    public func queueStatus(_ name: String) async throws -> (messages: UInt32, consumers: UInt32) {
        let status: QueueStatus = try await request { .queueStatus(name, $0) }
        return (status.messages, status.consumers)
    }

    /// Publishes and returns once the broker confirmed it.
    ///
    /// Throws `.returned` (mandatory and unroutable), `.nacked`, `.channelClosed` (e.g. the exchange
    /// does not exist), `.connectionLost` (in flight when the connection dropped: retry) or
    /// `.shutdown`. Requested while disconnected, it waits until the connection is back.
    public func publish(_ message: AMQPOutgoingMessage) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            mailbox.enqueue([PendingPublish(message: message, reply: { continuation.resume(with: $0.mapError { $0 }) })])
        }
    }

    /// Publishes all, streaming within the confirm window, and returns one result per message in
    /// order once every one is settled. Cancelled, it returns at once: what is not settled then
    /// fails with `.cancelled`, and what is not sent yet is not sent.
    public func publish(batch: [AMQPOutgoingMessage]) async -> [Result<Void, AMQPError>] {
        guard !batch.isEmpty else { return [] }
        let collector = BatchCollector(count: batch.count)
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<[Result<Void, AMQPError>], Never>) in
                collector.start(continuation)
                // Cancelled before it began: nothing to send (checked once; a cancel after it
                // leaves the publishes to be withdrawn by the connection thread).
                guard !collector.abandoned.isSet else { return }
                mailbox.enqueue(batch.enumerated().map { index, message in
                    PendingPublish(message: message, reply: { collector.settle(index, $0) }, abandoned: collector.abandoned)
                })
            }
        } onCancel: {
            collector.abandon()
        }
    }

    /// Starts consuming; the consumer survives reconnects (subscribed again with the same prefetch).
    /// Throws `.channelClosed` (404) if the queue does not exist.
    public func consume(queue: String, prefetch: UInt16) async throws -> AMQPConsumer {
        let id = nextConsumerID.add(1, ordering: .relaxed).newValue
        let consumer = AMQPConsumer(id: id, queue: queue, prefetch: prefetch, connection: self)
        do {
            try await request { .consume(consumer, $0) }
        } catch is CancellationError {
            // The subscription may have been made after all: end it rather than leave it holding
            // deliveries (and being made again after every reconnect).
            mailbox.enqueue(.cancel(consumer, { _ in }))
            throw CancellationError()
        }
        return consumer
    }

    /// basic.get with no-ack; nil when the queue is empty (for tests and tools).
    public func get(queue: String) async throws -> AMQPMessage? {
        try await request { .get(queue, $0) }
    }

    /// Acknowledges a delivery; enqueues and returns at once. Ignored for a delivery of an earlier
    /// connection (the broker redelivers it).
    public func ack(_ tag: AMQPDeliveryTag, multiple: Bool = false) {
        mailbox.enqueue(.settle(tag, .ack(multiple: multiple)))
    }

    /// Negatively acknowledges a delivery; enqueues and returns at once. With `requeue: false` the
    /// message is dead-lettered (or dropped).
    public func nack(_ tag: AMQPDeliveryTag, multiple: Bool = false, requeue: Bool) {
        mailbox.enqueue(.settle(tag, .nack(multiple: multiple, requeue: requeue)))
    }

    /// Rejects one delivery; enqueues and returns at once.
    public func reject(_ tag: AMQPDeliveryTag, requeue: Bool) {
        mailbox.enqueue(.settle(tag, .reject(requeue: requeue)))
    }

    /// Sends a command and waits for its reply. Cancelling the task ends the wait with
    /// `CancellationError` (a request waits for the connection, which may never come); the
    /// command may still be carried out, and its late reply is dropped.
    private func request<T: Sendable>(_ make: (@escaping Reply<T>) -> Command) async throws -> T {
        let waiter = ReplyWaiter<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                guard waiter.wait(continuation) else { return }
                mailbox.enqueue(make { waiter.resume(with: $0.mapError { $0 }) })
            }
        } onCancel: {
            waiter.resume(with: .failure(CancellationError()))
        }
    }
}

/// One request's continuation, resumed once: by the reply or by cancellation, whichever is first.
private final class ReplyWaiter<T: Sendable>: Sendable {
    private enum State {
        case idle
        case waiting(CheckedContinuation<T, any Error>)
        case done(Result<T, any Error>?)
    }

    private let state = Mutex<State>(.idle)

    /// Keeps `continuation`; false (and resumes it) if the request was cancelled before it began.
    func wait(_ continuation: CheckedContinuation<T, any Error>) -> Bool {
        let early = state.withLock { state -> Result<T, any Error>? in
            guard case .done(let result) = state else {
                state = .waiting(continuation)
                return nil
            }
            state = .done(nil)
            return result ?? .failure(CancellationError())
        }
        guard let early else { return true }
        continuation.resume(with: early)
        return false
    }

    func resume(with result: Result<T, any Error>) {
        let continuation = state.withLock { state -> CheckedContinuation<T, any Error>? in
            switch state {
            case .idle:
                state = .done(result)
                return nil
            case .waiting(let continuation):
                state = .done(nil)
                return continuation
            case .done:
                return nil
            }
        }
        continuation?.resume(with: result)
    }
}

/// Hands the worker to its thread.
///
/// `@unchecked Sendable` is safe because the worker is created, handed over and from then on used
/// only by the connection thread; the creating task never touches it again.
private struct WorkerHandoff: @unchecked Sendable {
    let worker: ConnectionWorker
}

/// Collects the results of a batch publish and resumes the caller when the last one is in, or
/// at once when the caller stops waiting (`abandon`: what is not settled then fails).
private final class BatchCollector: Sendable {
    typealias Continuation = CheckedContinuation<[Result<Void, AMQPError>], Never>

    private struct State {
        var results: [Result<Void, AMQPError>?]
        var remaining: Int
        var continuation: Continuation?

        /// The results and the continuation to resume with them, once every result is in.
        mutating func finished() -> ([Result<Void, AMQPError>], Continuation)? {
            guard remaining == 0, let continuation else { return nil }
            self.continuation = nil
            return (results.map { $0! }, continuation)
        }
    }

    private let state: Mutex<State>
    let abandoned = AbandonFlag()

    init(count: Int) {
        state = Mutex(State(results: Array(repeating: nil, count: count), remaining: count))
    }

    /// Takes the caller's continuation (abandoned before, the caller is resumed at once).
    func start(_ continuation: Continuation) {
        let done = state.withLock { state in
            state.continuation = continuation
            return state.finished()
        }
        if let (results, continuation) = done { continuation.resume(returning: results) }
    }

    func settle(_ index: Int, _ result: Result<Void, AMQPError>) {
        let done = state.withLock { state -> ([Result<Void, AMQPError>], Continuation)? in
            guard state.results[index] == nil else { return nil }
            state.results[index] = result
            state.remaining -= 1
            return state.finished()
        }
        if let (results, continuation) = done { continuation.resume(returning: results) }
    }

    /// The caller stops waiting: publishes not sent yet are not sent, and every result not in
    /// yet is `.cancelled`.
    func abandon() {
        abandoned.set()
        let done = state.withLock { state in
            for index in state.results.indices where state.results[index] == nil {
                state.results[index] = .failure(.publisherStoppedWaiting)
            }
            state.remaining = 0
            return state.finished()
        }
        if let (results, continuation) = done { continuation.resume(returning: results) }
    }
}
