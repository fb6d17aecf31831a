import Synchronization

/// Where MediaQueue reads wall-clock time (creation times, leases, retry schedules), injected so
/// that tests can move time instead of sleeping.
public protocol TimeSource: Sendable {
    var now: Timestamp { get }
}

/// The system's real-time clock.
public struct SystemTimeSource: TimeSource {
    public init() {}
    public var now: Timestamp {
        return Timestamp(milliseconds: wallMilliseconds())
    }
}

/// A clock that moves only when told to, for tests.
public final class ManualTimeSource: TimeSource {
    private let current: Mutex<Timestamp>

    public init(_ start: Timestamp = Timestamp(seconds: 1_700_000_000)) {
        current = Mutex(start)
    }

    public var now: Timestamp { current.withLock { $0 } }

    public func advance(by duration: Duration) {
        current.withLock { $0 = $0 + duration }
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
