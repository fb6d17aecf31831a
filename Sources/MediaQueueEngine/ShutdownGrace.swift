import MediaQueueCore
import ServiceLifecycle

/// Runs `operation` and returns what it returns; once the service begins to shut down
/// gracefully, lets it go on for `grace` (on `time`) and then cancels it. For work that waits on
/// a broker that may be away (a publish waits for a lost connection to come back): a graceful
/// shutdown waits for it that long, not until the service group's backstop.
func cancellingAfterShutdownGrace<T: Sendable>(
    _ grace: Duration, time: any TimeSource, _ operation: @escaping @Sendable () async -> T
) async -> T {
    await withTaskGroup(of: T?.self) { group in
        group.addTask { await operation() }
        group.addTask {
            guard (try? await gracefulShutdown()) != nil else { return nil }
            try? await time.sleep(for: grace)
            return nil
        }
        var result: T?
        // Whichever ends first ends the other: the operation, or the grace.
        for await value in group {
            group.cancelAll()
            if let value { result = value }
        }
        // The operation's child always returns a value, cancelled or not.
        return result!
    }
}
