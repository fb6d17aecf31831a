import MediaQueueCore
import Synchronization

/// The store's write check as readiness probes share it. Probes that come while a check runs
/// wait for that one check, so that `/readyz` (unauthenticated) cannot make the store write at
/// the rate it is called, however many call at once; one that ended less than `reuse` ago is
/// answered again. A probe waits at most `patience`: a check still running then is reported as
/// such, and the next probe starts a new one, since a query on a connection that died can wait
/// for ever and every later probe would wait on it.
final class StoreWriteProbe: Sendable {
    private struct State {
        var generation = 0
        /// The check that probes join now, and when it began.
        var running: (generation: Int, since: Timestamp)?
        var last: (at: Timestamp, failure: String?)?
        var waiters: [UInt64: (generation: Int, continuation: CheckedContinuation<String?, Never>)] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let state = Mutex(State())
    private let checkWritable: @Sendable () async throws -> Void
    private let time: any TimeSource
    let patience: Duration
    let reuse: Duration

    init(checkWritable: @escaping @Sendable () async throws -> Void, time: any TimeSource, patience: Duration, reuse: Duration = .seconds(1)) {
        self.checkWritable = checkWritable
        self.time = time
        self.patience = patience
        self.reuse = reuse
    }

    /// Why the store did not take a write; nil when it did.
    func failure() async -> String? {
        let now = time.now
        let joined: (waiter: UInt64, generation: Int, starts: Bool)? = state.withLock { state in
            if state.running == nil, let last = state.last, now < last.at + reuse { return nil }
            var starts = false
            if state.running.map({ now >= $0.since + patience }) ?? true {
                state.generation += 1
                state.running = (state.generation, now)
                starts = true
            }
            state.nextWaiter += 1
            return (state.nextWaiter, state.running!.generation, starts)
        }
        guard let joined else { return state.withLock { $0.last?.failure } }
        if joined.starts { Task { await run(joined.generation) } }
        let timer = Task { [time, patience] in
            try? await time.sleep(for: patience)
            if !Task.isCancelled { timedOut(joined.waiter) }
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            let ended: String?? = state.withLock { state in
                // The check may have ended between joining and here.
                guard state.running?.generation == joined.generation else { return .some(state.last?.failure) }
                state.waiters[joined.waiter] = (joined.generation, continuation)
                return nil
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
            if state.running?.generation == generation {
                state.running = nil
                state.last = (now, failure)
            }
            let mine = state.waiters.filter { $0.value.generation == generation }
            for id in mine.keys { state.waiters[id] = nil }
            return mine.values.map(\.continuation)
        }
        for continuation in waiting { continuation.resume(returning: failure) }
    }

    private func timedOut(_ waiter: UInt64) {
        let continuation = state.withLock { $0.waiters.removeValue(forKey: waiter)?.continuation }
        continuation?.resume(returning: "the store did not answer a write within \(patience)")
    }
}
