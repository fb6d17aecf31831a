/// Thrown when an awaited condition did not become true in time.
public struct TimedOut: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

/// How long a test waits for an outcome before it calls the code under test hung. Only a hang
/// meets it: a wait returns as soon as its event is there, so a slow or loaded machine never
/// gets near it.
public let hangBound: Duration = .seconds(300)

/// Polls `condition` until it returns a value, or throws `TimedOut` after `timeout`.
///
/// Tests wait for asynchronous outcomes with this instead of bare sleeps: it returns as soon as
/// the outcome is there, and the generous timeout only matters when something is broken.
@discardableResult
public func eventually<T>(
    _ what: String,
    timeout: Duration = hangBound,
    every interval: Duration = .milliseconds(50),
    _ condition: () async throws -> T?
) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    while true {
        if let value = try await condition() { return value }
        if ContinuousClock.now >= deadline { throw TimedOut(description: "timed out waiting for \(what)") }
        try await Task.sleep(for: interval)
    }
}

/// Polls until `condition` is true.
public func eventually(
    _ what: String,
    timeout: Duration = hangBound,
    every interval: Duration = .milliseconds(50),
    _ condition: () async throws -> Bool
) async throws {
    try await eventually(what, timeout: timeout, every: interval) { try await condition() ? true : nil }
}

/// Polls `progress` until it reaches `target`, failing only when it stops moving: for long runs
/// (thousands of jobs) whose total time depends on how fast the machine is, while a stall is
/// still caught. `progress` should be cheap: it runs every `interval`.
public func eventually(
    _ what: String,
    reaches target: Int,
    stalledFor stall: Duration = hangBound,
    every interval: Duration = .milliseconds(200),
    _ progress: () async throws -> Int
) async throws {
    try await eventually(what, stalledFor: stall, every: interval) {
        let value = try await progress()
        return (value >= target, value, "\(value) of \(target)")
    }
}

/// Polls `state` until it says done, failing only when its `progress` stops moving for `stall`.
public func eventually(
    _ what: String,
    stalledFor stall: Duration = hangBound,
    every interval: Duration = .milliseconds(200),
    _ state: () async throws -> (done: Bool, progress: Int, shown: String)
) async throws {
    var last = Int.min
    var lastMoved = ContinuousClock.now
    while true {
        let (done, value, shown) = try await state()
        if done { return }
        if value != last {
            last = value
            lastMoved = .now
        } else if ContinuousClock.now - lastMoved >= stall {
            throw TimedOut(description: "timed out waiting for \(what): stuck at \(shown)")
        }
        try await Task.sleep(for: interval)
    }
}
