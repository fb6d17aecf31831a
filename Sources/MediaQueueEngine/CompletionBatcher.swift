public import MediaQueueCore
import Synchronization

/// Group commit for finished jobs: jobs that end while a write is in flight are written together
/// in the next transaction, so the store sees one write per batch instead of one per job.
///
/// The first caller to find no write in flight starts one; later callers only enqueue and wait.
/// Each caller still learns whether its own job was recorded (false when its lease was lost).
public final class CompletionBatcher: Sendable {
    private typealias Waiter = CheckedContinuation<Result<Bool, any Error>, Never>

    private struct State {
        var pending: [(job: FinishedJob, waiter: Waiter)] = []
        var writing = false
    }

    private let state = Mutex(State())
    private let store: any JobStore
    private let owner: String
    private let maxBatch: Int

    public init(store: any JobStore, owner: String, maxBatch: Int = 500) {
        self.store = store
        self.owner = owner
        self.maxBatch = maxBatch
    }

    /// Records `job`'s end (with its outbox rows) and returns once it is committed.
    public func finish(_ job: FinishedJob) async throws -> Bool {
        let result = await withCheckedContinuation { (waiter: Waiter) in
            let startWriting = state.withLock { state -> Bool in
                state.pending.append((job, waiter))
                if state.writing { return false }
                state.writing = true
                return true
            }
            // A task of its own: the write must finish even if this caller's task is cancelled,
            // because other callers' jobs ride in the same batch.
            if startWriting { Task { await self.writeUntilEmpty() } }
        }
        return try result.get()
    }

    private func writeUntilEmpty() async {
        while true {
            let batch = state.withLock { state -> [(job: FinishedJob, waiter: Waiter)] in
                guard !state.pending.isEmpty else {
                    state.writing = false
                    return []
                }
                let batch = Array(state.pending.prefix(maxBatch))
                state.pending.removeFirst(batch.count)
                return batch
            }
            guard !batch.isEmpty else { return }
            do {
                let recorded = try await store.finish(batch.map(\.job), owner: owner)
                for (entry, ok) in zip(batch, recorded) { entry.waiter.resume(returning: .success(ok)) }
            } catch {
                for entry in batch { entry.waiter.resume(returning: .failure(error)) }
            }
        }
    }
}

/// Queues' callback rules as of at most `maxAge` ago: completing a job needs its queue's rule,
/// and reading it from the store for every job would cost a round trip each.
final class QueueRuleCache: Sendable {
    private let store: any JobStore
    private let maxAge: Duration
    private let entries = Mutex<[QueueID: (queue: MediaQueue?, at: ContinuousClock.Instant)]>([:])

    init(store: any JobStore, maxAge: Duration = .seconds(1)) {
        self.store = store
        self.maxAge = maxAge
    }

    func queue(_ id: QueueID) async throws -> MediaQueue? {
        let now = ContinuousClock.now
        if let cached = entries.withLock({ $0[id] }), now - cached.at < maxAge { return cached.queue }
        let queue = try await store.queue(id: id)
        entries.withLock { $0[id] = (queue, now) }
        return queue
    }
}
