public import MediaQueueCore
import Synchronization

/// Lets one service wake another without waiting for its next poll: the intake wakes the
/// dispatcher when jobs were stored, the dispatcher wakes the relay when a job ended.
///
/// Signals are coalesced: any number of `signal()` calls before a `wait` wake it once.
public final class Wakeup: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
        var generation = 0
    }

    private let state = Mutex(State())
    /// What `wait`'s timeout is measured on.
    private let time: any TimeSource

    public init(time: any TimeSource = SystemTimeSource()) {
        self.time = time
    }

    /// Wakes the waiter now, or makes its next `wait` return at once.
    public func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Whether a signal waits for the next `wait` (for tests).
    var isSignalled: Bool { state.withLock { $0.pending } }

    /// Whether a `wait` is waiting now (for tests: the service waits for its next poll).
    var hasWaiter: Bool { state.withLock { $0.waiter != nil } }

    /// Returns after a signal, after `timeout`, or on cancellation, whichever comes first.
    /// One waiter at a time.
    public func wait(upTo timeout: Duration) async {
        guard let generation = beginWait() else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await self.time.sleep(for: timeout)
                self.expire(generation)
            }
            await suspend(generation)
            group.cancelAll()
        }
    }

    /// Returns after a signal or on cancellation, with no timer: for a loop that only new work
    /// wakes (on a manual clock, it is not a sleeper). One waiter at a time.
    public func wait() async {
        guard let generation = beginWait() else { return }
        await suspend(generation)
    }

    /// The new wait's generation; nil when a signal is pending (taken: the wait returns at once).
    private func beginWait() -> Int? {
        state.withLock { state in
            if state.pending {
                state.pending = false
                return nil
            }
            state.generation += 1
            return state.generation
        }
    }

    private func suspend(_ generation: Int) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = self.state.withLock { state -> Bool in
                    if state.pending || state.generation != generation {
                        state.pending = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            self.expire(generation)
        }
    }

    private func expire(_ generation: Int) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.generation == generation else { return nil }
            state.generation += 1
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }
}
