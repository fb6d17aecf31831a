import Synchronization

/// Whether the intake's last attempt to store submissions failed, and why: a full disk or a
/// locked database shows in `/readyz` while the intake hands its messages back to the broker,
/// and clears with the next batch it stores.
public final class StoreWriteHealth: Sendable {
    private let lastFailure = Mutex<String?>(nil)

    public init() {}

    /// The error of the last write, or nil when it succeeded (or none was tried).
    public var failure: String? { lastFailure.withLock { $0 } }

    func record(_ error: (any Error)?) {
        lastFailure.withLock { $0 = error.map { "\($0)" } }
    }
}
