import Synchronization

/// Where MediaQueue reads time and waits for it to pass (creation times, leases, retry
/// schedules, lingers, polls, grace periods, backoffs), injected so that tests move time instead
/// of sleeping.
public protocol TimeSource: Sendable {
    /// Wall-clock time now.
    var now: Timestamp { get }
    /// Returns once `duration` has passed on this source; throws `CancellationError` when the
    /// task is cancelled first.
    func sleep(for duration: Duration) async throws
}

/// The system's real-time clock.
public struct SystemTimeSource: TimeSource {
    public init() {}

    public var now: Timestamp {
        Timestamp(milliseconds: wallMilliseconds())
    }

    public func sleep(for duration: Duration) async throws {
        try await Task.sleep(for: duration)
    }
}

/// Time that moves only when a test moves it (`advance`); tasks sleeping on it wake when it
/// passes their deadline. `sleepers(atLeast:)` lets a test wait until the code under test sleeps
/// before it moves time.
public final class ManualTimeSource: TimeSource {
    private struct Sleeper {
        let deadline: Timestamp
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Timestamp
        var sleepers: [UInt64: Sleeper] = [:]
        var nextID: UInt64 = 0
        var watchers: [UInt64: (count: Int, continuation: CheckedContinuation<Void, Never>)] = [:]
    }

    private let state: Mutex<State>

    public init(_ start: Timestamp = Timestamp(seconds: 1_700_000_000)) {
        state = Mutex(State(now: start))
    }

    public var now: Timestamp { state.withLock { $0.now } }

    /// Moves time on and wakes the sleepers whose deadlines it passed.
    public func advance(by duration: Duration) {
        let due = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.now = state.now + duration
            let due = state.sleepers.filter { $0.value.deadline <= state.now }
            for id in due.keys { state.sleepers[id] = nil }
            return due.values.map(\.continuation)
        }
        for continuation in due { continuation.resume() }
    }

    /// The earliest deadline of the tasks sleeping on this source now; nil when none sleeps.
    /// Moving time just there wakes only what was due, however late a task goes back to sleep.
    public var nextDeadline: Timestamp? { state.withLock { $0.sleepers.values.map(\.deadline).min() } }

    /// How many tasks sleep on this source now.
    public var sleeping: Int { state.withLock { $0.sleepers.count } }

    /// Returns once at least `count` tasks sleep on this source, or the calling task is
    /// cancelled (a test's time limit).
    public func sleepers(atLeast count: Int) async {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.sleepers.count >= count || Task.isCancelled { return true }
                    state.watchers[id] = (count, continuation)
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.watchers.removeValue(forKey: id) }?.continuation.resume()
        }
    }

    public func sleep(for duration: Duration) async throws {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let (outcome, watchers) = state.withLock { state -> (Result<Void, any Error>?, [CheckedContinuation<Void, Never>]) in
                    if Task.isCancelled { return (.failure(CancellationError()), []) }
                    let deadline = state.now + duration
                    if deadline <= state.now { return (.success(()), []) }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    let count = state.sleepers.count
                    let woken = state.watchers.filter { $0.value.count <= count }
                    for watcher in woken.keys { state.watchers[watcher] = nil }
                    return (nil, woken.values.map(\.continuation))
                }
                if let outcome { continuation.resume(with: outcome) }
                for watcher in watchers { watcher.resume() }
            }
        } onCancel: {
            state.withLock { $0.sleepers.removeValue(forKey: id) }?.continuation.resume(throwing: CancellationError())
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func wallMilliseconds() -> Int64 {
    var spec = timespec()
    clock_gettime(CLOCK_REALTIME, &spec)
    return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
}
