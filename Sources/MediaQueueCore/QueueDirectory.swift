
import Synchronization

/// Finds the queue a submission goes to: the one it names, or its bucket's `queue-1`, created on
/// first use. Remembers what it found, so a busy intake does not ask the store for every message:
/// at most `remembered` queues, then it starts again (anyone who may submit can name buckets).
public final class QueueDirectory: Sendable {
    private let store: any JobStore
    private let template: @Sendable () -> MediaQueue
    private let known = Mutex<[String: MediaQueue]>([:])
    /// How many queues it remembers at most.
    let remembered: Int

    /// `template` gives the settings of a new bucket's default queue (MaxConcurrent, callback rule, ...).
    public init(store: any JobStore, remembered: Int = 10_000, template: @escaping @Sendable () -> MediaQueue) {
        self.remembered = remembered
        self.store = store
        self.template = template
    }

    /// The bucket's default queue, created the first time the bucket is used.
    public func defaultQueue(bucket: String) async throws -> MediaQueue {
        if let queue = known.withLock({ $0["default/\(bucket)"] }) { return queue }
        let queue = try await store.ensureDefaultQueue(bucket: bucket, template: template())
        remember(queue, as: "default/\(bucket)")
        return queue
    }

    /// The queue named by `queueID` (which must belong to `bucket`), or the bucket's default queue.
    public func resolve(bucket: String, queueID: QueueID?) async throws(CIError) -> MediaQueue {
        do {
            guard let queueID else { return try await defaultQueue(bucket: bucket) }
            if let queue = known.withLock({ $0[queueID.rawValue] }), queue.bucket == bucket { return queue }
            guard let queue = try await store.queue(id: queueID), queue.bucket == bucket else {
                throw CIError(.noSuchQueue, "QueueId: queue \(queueID) does not exist in bucket \(bucket)", element: "QueueId")
            }
            remember(queue, as: queueID.rawValue)
            return queue
        } catch let error as CIError {
            throw error
        } catch {
            throw CIError(.internalError, "the store could not be read: \(error)")
        }
    }

    /// How many queues it remembers now.
    var rememberedCount: Int { known.withLock { $0.count } }

    private func remember(_ queue: MediaQueue, as key: String) {
        known.withLock { known in
            if known.count >= remembered { known.removeAll() }
            known[key] = queue
        }
    }
}
