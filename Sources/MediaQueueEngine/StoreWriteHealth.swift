public import MediaQueueCore
import Synchronization

/// Whether the intake's last attempt to store submissions failed, and why: a full disk or a
/// locked database shows in `/readyz` while the intake hands its messages back to the broker,
/// and clears with the next batch it stores, or once no batch failed for a while (the batch's
/// messages may have gone to another node, or none came since).
public final class StoreWriteHealth: Sendable {
    private let lastFailure = Mutex<(error: String, at: Timestamp)?>(nil)

    public init() {}

    /// The error of the last write if it failed after `cutoff`; nil when it succeeded, none was
    /// tried, or it failed before.
    public func failure(after cutoff: Timestamp) -> String? {
        lastFailure.withLock { last in last.flatMap { $0.at > cutoff ? $0.error : nil } }
    }

    func record(_ error: (any Error)?, at now: Timestamp) {
        lastFailure.withLock { $0 = error.map { ("\($0)", now) } }
    }
}
