import MediaQueueAMQP
import MediaQueueAPI
import MediaQueueCore
import MediaQueueEngine
import ServiceLifecycle
import Synchronization

/// Whether this node should get traffic (`/readyz`): its broker connections are up, its store
/// takes writes, and it is not draining.
final class NodeReadiness: Sendable {
    private let time: any TimeSource
    /// The intake's last store write.
    let intakeWrites = StoreWriteHealth()
    /// The broker's last answer to the intake declaring and consuming its queue again.
    let intakeQueue = StoreWriteHealth()
    private let storeWrites: StoreWriteProbe
    private let connections = Mutex<[(role: String, connection: AMQPConnection)]>([])
    private let draining = Atomic<Bool>(false)

    /// How long a probe waits for the store's write check (`StoreWriteProbe`).
    static let storeCheckPatience: Duration = .seconds(5)

    convenience init(store: any JobStore, time: any TimeSource = SystemTimeSource()) {
        self.init(checkWritable: { try await store.checkWritable() }, time: time)
    }

    init(checkWritable: @escaping @Sendable () async throws -> Void, time: any TimeSource = SystemTimeSource()) {
        self.time = time
        storeWrites = StoreWriteProbe(checkWritable: checkWritable, time: time, patience: Self.storeCheckPatience)
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

    /// How long a failed intake batch keeps the node not ready when no batch came after it: the
    /// intake retries its batches within seconds, so a failure older than this was not seen again.
    static let intakeFailureShown: Duration = .seconds(30)
    /// How long a refusal of the intake's queue keeps the node not ready: longer than the
    /// intake's longest pause between two tries (30 s), so that it stays shown between them.
    static let intakeQueueRefusalShown: Duration = .seconds(90)

    func reasons() async -> [String] {
        var reasons: [String] = []
        if draining.load(ordering: .relaxed) { reasons.append("draining: the node is shutting down") }
        for (role, connection) in connections.withLock({ $0 }) where !connection.isConnected {
            reasons.append("broker not connected (\(role), \(connection.configuration.redactedURL))")
        }
        if let failure = await storeWrites.failure() { reasons.append("store not writable: \(failure)") }
        if let failure = intakeWrites.failure(after: time.now - Self.intakeFailureShown) {
            reasons.append("the intake cannot store submissions (they stay in the broker): \(failure)")
        }
        if let failure = intakeQueue.failure(after: time.now - Self.intakeQueueRefusalShown) {
            reasons.append("the intake cannot consume (submissions stay in the broker): \(failure)")
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
