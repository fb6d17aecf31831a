import MediaQueueCore
import Synchronization

/// The store's write check as readiness probes share it. Probes that come while a check runs
/// wait for that one check, so that `/readyz` (unauthenticated) cannot make the store write at
/// the rate it is called, however many call at once; one that ended less than `reuse` ago is
/// answered again. A probe waits at most `patience`. A check still running then is given up (its
/// task cancelled) and the next probe starts another, since a query on a connection that died
/// can wait for ever and every later probe would wait on it; while `maxAbandoned` given-up checks
/// have not ended, no other starts, so that a hung store cannot fill its pool with checks.
final class StoreWriteProbe: Sendable {
    private struct State {
        var generation = 0
        /// The check that probes join now, when it began, and its task.
        var running: (generation: Int, since: Timestamp, task: Task<Void, Never>)?
        var last: (generation: Int, at: Timestamp, failure: String?)?
        /// Checks given up that have not ended yet.
        var abandoned: Set<Int> = []
        var waiters: [UInt64: (generation: Int, continuation: CheckedContinuation<String?, Never>)] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let state = Mutex(State())
    private let checkWritable: @Sendable () async throws -> Void
    private let time: any TimeSource
    let patience: Duration
    let reuse: Duration
    let maxAbandoned = 1

    init(checkWritable: @escaping @Sendable () async throws -> Void, time: any TimeSource, patience: Duration, reuse: Duration = .seconds(1)) {
        self.checkWritable = checkWritable
        self.time = time
        self.patience = patience
        self.reuse = reuse
    }

    var noAnswer: String { "the store did not answer a write within \(patience)" }

    /// Why the store did not take a write; nil when it did.
    func failure() async -> String? {
        let now = time.now
        enum Step { case answer(String?), join(waiter: UInt64, generation: Int) }
        let step: Step = state.withLock { state in
            if state.running == nil, let last = state.last, now < last.at + reuse { return .answer(last.failure) }
            if let running = state.running, now >= running.since + patience {
                guard state.abandoned.count < maxAbandoned else { return .answer(noAnswer) }
                state.abandoned.insert(running.generation)
                running.task.cancel()
                state.running = nil
            }
            if state.running == nil {
                state.generation += 1
                let generation = state.generation
                state.running = (generation, now, Task { await run(generation) })
            }
            state.nextWaiter += 1
            return .join(waiter: state.nextWaiter, generation: state.running!.generation)
        }
        guard case .join(let waiter, let generation) = step else {
            if case .answer(let answer) = step { return answer }
            return nil
        }
        let timer = Task { [time, patience] in
            try? await time.sleep(for: patience)
            if !Task.isCancelled { timedOut(waiter) }
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            let ended: String?? = state.withLock { state in
                if state.running?.generation == generation {
                    state.waiters[waiter] = (generation, continuation)
                    return nil
                }
                // It ended between joining and here, or was given up meanwhile.
                if let last = state.last, last.generation == generation { return .some(last.failure) }
                return .some(noAnswer)
            }
            if let ended { continuation.resume(returning: ended) }
        }
    }

    private func run(_ generation: Int) async {
        var failure: String?
        do {
            try await checkWritable()
        } catch {
            failure = "\(error)"
        }
        let now = time.now
        let waiting = state.withLock { state in
            state.abandoned.remove(generation)
            if state.running?.generation == generation {
                state.running = nil
                state.last = (generation, now, failure)
            }
            let mine = state.waiters.filter { $0.value.generation == generation }
            for id in mine.keys { state.waiters[id] = nil }
            return mine.values.map(\.continuation)
        }
        for continuation in waiting { continuation.resume(returning: failure) }
    }

    private func timedOut(_ waiter: UInt64) {
        let continuation = state.withLock { $0.waiters.removeValue(forKey: waiter)?.continuation }
        continuation?.resume(returning: noAnswer)
    }
}
