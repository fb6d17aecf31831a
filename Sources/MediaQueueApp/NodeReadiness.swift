import MediaQueueAMQP
import MediaQueueAPI
import MediaQueueCore
import MediaQueueEngine
import ServiceLifecycle
import Synchronization

/// Whether this node should get traffic (`/readyz`): its broker connections are up, its store
/// takes writes, and it is not draining.
final class NodeReadiness: Sendable {
    private let checkWritable: @Sendable () async throws -> Void
    private let time: any TimeSource
    /// The intake's last store write.
    let intakeWrites = StoreWriteHealth()
    /// The store's write check: the one running, or the last one and when it ended. Probes meet
    /// the running one, and reuse the last for a second, so that `/readyz` (unauthenticated)
    /// cannot make the store write at the rate it is called, however many call at once.
    private let storeCheck = Mutex<StoreCheck?>(nil)
    private let connections = Mutex<[(role: String, connection: AMQPConnection)]>([])
    private let draining = Atomic<Bool>(false)

    private enum StoreCheck {
        case running(Task<String?, Never>)
        case ended(at: Timestamp, failure: String?)
    }

    convenience init(store: any JobStore, time: any TimeSource = SystemTimeSource()) {
        self.init(checkWritable: { try await store.checkWritable() }, time: time)
    }

    init(checkWritable: @escaping @Sendable () async throws -> Void, time: any TimeSource = SystemTimeSource()) {
        self.checkWritable = checkWritable
        self.time = time
    }

    /// A connection the node needs; `role` names it in the reason.
    func watch(_ connection: AMQPConnection, role: String) {
        connections.withLock { $0.append((role, connection)) }
    }

    /// From the first graceful-shutdown step on, the node is not ready.
    func startDraining() {
        draining.store(true, ordering: .relaxed)
    }

    var check: ReadinessCheck {
        ReadinessCheck { [self] in await reasons() }
    }

    private func storeWriteFailure() async -> String? {
        let now = time.now
        let check: Task<String?, Never> = storeCheck.withLock { state in
            switch state {
            case .running(let task):
                return task
            case .ended(let at, let failure) where now < at + .seconds(1):
                return Task { failure }
            default:
                let task = Task { [checkWritable] () -> String? in
                    do {
                        try await checkWritable()
                        return nil
                    } catch {
                        return "\(error)"
                    }
                }
                state = .running(task)
                return task
            }
        }
        let failure = await check.value
        storeCheck.withLock { state in
            if case .running(let task) = state, task == check { state = .ended(at: time.now, failure: failure) }
        }
        return failure
    }

    /// How long a failed intake batch keeps the node not ready when no batch came after it: the
    /// intake retries its batches within seconds, so a failure older than this was not seen again.
    static let intakeFailureShown: Duration = .seconds(30)

    func reasons() async -> [String] {
        var reasons: [String] = []
        if draining.load(ordering: .relaxed) { reasons.append("draining: the node is shutting down") }
        for (role, connection) in connections.withLock({ $0 }) where !connection.isConnected {
            reasons.append("broker not connected (\(role), \(connection.configuration.redactedURL))")
        }
        if let failure = await storeWriteFailure() { reasons.append("store not writable: \(failure)") }
        if let failure = intakeWrites.failure(after: time.now - Self.intakeFailureShown) {
            reasons.append("the intake cannot store submissions (they stay in the broker): \(failure)")
        }
        return reasons
    }
}

/// Marks the node draining as soon as graceful shutdown begins. Last in the service list, so
/// the group shuts it down first, before intake and dispatch start to stop.
struct DrainWatcher: Service {
    let readiness: NodeReadiness

    func run() async throws {
        try? await gracefulShutdown()
        readiness.startDraining()
    }
}
