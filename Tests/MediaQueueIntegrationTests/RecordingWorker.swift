import MediaQueueCore
import Synchronization

/// A worker for scheduling tests: records the order in which jobs start (by `UserData`) and
/// takes `delay` to finish, stopping at once when cancelled.
final class RecordingWorker: MediaWorker {
    let tag = "Record"
    let delay: Duration
    private let started = Mutex<[String]>([])

    init(delay: Duration = .zero) {
        self.delay = delay
    }

    var startOrder: [String] { started.withLock { $0 } }

    func validate(_ operation: CreateMediaJobsRequest.Operation) throws(CIError) {}

    func run(_ job: Job, context: WorkContext) async throws -> WorkResult {
        started.withLock { $0.append(job.userData ?? "") }
        if delay > .zero { try await Task.sleep(for: delay) }
        return WorkResult()
    }
}

func recordRequest(_ userData: String, level: Int = 0) -> String {
    "<Request><Tag>Record</Tag><Input><Object>none</Object></Input><Operation><UserData>\(userData)</UserData><JobLevel>\(level)</JobLevel></Operation></Request>"
}
