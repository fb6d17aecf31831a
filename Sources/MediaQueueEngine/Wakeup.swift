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

    /// Returns after a signal, after `timeout`, or on cancellation, whichever comes first.
    /// One waiter at a time.
    public func wait(upTo timeout: Duration) async {
        let generation: Int? = state.withLock { state in
            if state.pending {
                state.pending = false
                return nil
            }
            state.generation += 1
            return state.generation
        }
        guard let generation else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await self.time.sleep(for: timeout)
                self.expire(generation)
            }
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
            group.cancelAll()
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
