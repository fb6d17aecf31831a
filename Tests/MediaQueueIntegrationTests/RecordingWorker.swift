import MediaQueueCore
import Synchronization

/// A worker for scheduling tests: records the order in which jobs start (by `UserData`) and the
/// most that ran at once, and takes `delay` to finish, stopping at once when cancelled.
final class RecordingWorker: MediaWorker {
    let tag = "Record"
    let delay: Duration
    private let started = Mutex<[String]>([])
    private let running = Mutex<(now: Int, most: Int, ended: Int)>((0, 0, 0))

    init(delay: Duration = .zero) {
        self.delay = delay
    }

    var startOrder: [String] { started.withLock { $0 } }

    /// The most jobs that ran at the same time.
    var mostAtOnce: Int { running.withLock { $0.most } }

    /// Runs that have ended (each job's end is recorded in the store soon after).
    var endedCount: Int { running.withLock { $0.ended } }

    func validate(_ operation: CreateMediaJobsRequest.Operation) throws(CIError) {}

    func run(_ job: Job, context: WorkContext) async throws -> WorkResult {
        started.withLock { $0.append(job.userData ?? "") }
        running.withLock { $0 = ($0.now + 1, max($0.most, $0.now + 1), $0.ended) }
        defer { running.withLock { $0 = ($0.now - 1, $0.most, $0.ended + 1) } }
        if delay > .zero { try await Task.sleep(for: delay) }
        return WorkResult()
    }
}

func recordRequest(_ userData: String, level: Int = 0) -> String {
    "<Request><Tag>Record</Tag><Input><Object>none</Object></Input><Operation><UserData>\(userData)</UserData><JobLevel>\(level)</JobLevel></Operation></Request>"
}
