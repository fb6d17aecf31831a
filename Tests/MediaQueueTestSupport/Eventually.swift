/// Thrown when an awaited condition did not become true in time.
public struct TimedOut: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

/// Polls `condition` until it returns a value, or throws `TimedOut` after `timeout`.
///
/// Tests wait for asynchronous outcomes with this instead of bare sleeps: it returns as soon as
/// the outcome is there, and the generous timeout only matters when something is broken.
@discardableResult
public func eventually<T>(
    _ what: String,
    timeout: Duration = .seconds(60),
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
    timeout: Duration = .seconds(60),
    every interval: Duration = .milliseconds(50),
    _ condition: () async throws -> Bool
) async throws {
    try await eventually(what, timeout: timeout, every: interval) { try await condition() ? true : nil }
}
