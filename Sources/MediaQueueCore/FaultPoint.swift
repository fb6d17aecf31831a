import Foundation

/// Places where a test may have the process die at once (SIGKILL), to prove that what a crash
/// interrupts there is neither lost nor repeated: `MEDIAQUEUE_FAULT_POINT=<name>` in the
/// environment. Unset, a fault point costs one comparison.
public enum FaultPoint: String, Sendable {
    /// An upload was published and its workflow runs were not started yet.
    case uploadPublished = "upload-published"
    /// A claimed job's worker is about to start: the process dies as if the job had killed it.
    case jobStarting = "job-starting"

    private static let armed = ProcessInfo.processInfo.environment["MEDIAQUEUE_FAULT_POINT"].flatMap(FaultPoint.init(rawValue:))

    public static func reached(_ point: FaultPoint) {
        guard armed == point else { return }
        kill(getpid(), SIGKILL)
    }
}
