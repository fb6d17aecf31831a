/// When a failed callback delivery is tried again: a list of delays, each stretched by random
/// jitter so that many deliveries failing together do not retry together.
public struct RetrySchedule: Sendable, Hashable {
    /// Delay before attempt n+1 after n failed attempts (`delays[0]` follows the first failure).
    public var delays: [Duration]
    /// Up to this fraction of a delay is added at random (0.2 = up to 20 % later).
    public var jitter: Double

    public init(delays: [Duration], jitter: Double = 0.2) {
        self.delays = delays
        self.jitter = jitter
    }

    /// About 0 s, 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 3 h, 6 h (DESIGN.md).
    public static let standard = RetrySchedule(delays: [
        .seconds(0), .seconds(5), .seconds(30), .seconds(120), .seconds(600), .seconds(1800),
        .seconds(3600), .seconds(10_800), .seconds(21_600),
    ])

    /// The time of the next attempt after `failedAttempts` failures, or nil when the delivery is dead.
    public func nextAttempt(after failedAttempts: Int, now: Timestamp) -> Timestamp? {
        guard failedAttempts >= 1, failedAttempts <= delays.count else { return nil }
        return now + jittered(delays[failedAttempts - 1])
    }

    /// `delay` and up to `jitter` of it more, at random.
    public func jittered(_ delay: Duration) -> Duration {
        delay + delay * Double.random(in: 0...max(0, jitter))
    }
}
