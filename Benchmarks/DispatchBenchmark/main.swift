import Foundation
import Logging
import MediaQueueCore
import MediaQueueEngine
import MediaQueueSQLite
import MediaQueueWorkers
import MediaQueueXML
import Synchronization

// Dispatch rate of trivial jobs with 1k, 10k and 100k jobs waiting, on the real SQLite store and
// the real DispatcherService. Choosing the next job must not scan the backlog, so the rate should
// not fall as the backlog grows. Run: swift run -c release mediaqueue-dispatch-bench [measured]

/// Counts jobs as they start.
final class CountingWorker: MediaWorker {
    let tag = "Bench"
    let started = Atomic<Int>(0)
    func validate(_ operation: CreateMediaJobsRequest.Operation) throws(CIError) {}
    func run(_ job: Job, context: WorkContext) async throws -> WorkResult {
        started.add(1, ordering: .relaxed)
        return WorkResult()
    }
}

func measure(backlog: Int, measured: Int) async throws -> Double {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mq-bench-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    let store = try SQLiteJobStore(path: folder.appendingPathComponent("bench.sqlite").path)
    let now = SystemTimeSource().now
    var template = MediaQueue(bucket: "bench", name: "queue-1", state: .paused, maxConcurrent: 64, maxSize: 1_000_000, createTime: now)
    template.notifyConfig = NotifyConfig()
    var queue = try await store.ensureDefaultQueue(bucket: "bench", template: template)

    let input = XMLTree("Input", children: [XMLTree("Object", text: "none")])
    let operation = XMLTree("Operation", children: [XMLTree("JobLevel", text: "0")])
    var remaining = backlog
    while remaining > 0 {
        let count = min(1000, remaining)
        let jobs = (0..<count).map { _ in
            Job(bucket: "bench", queueID: queue.id, tag: "Bench", input: input, operation: operation, creationTime: now)
        }
        _ = try await store.submit([Submission(idempotencyKey: nil, jobs: jobs)])
        remaining -= count
    }

    let worker = CountingWorker()
    var logger = Logger(label: "bench")
    logger.logLevel = .critical
    let dispatcher = DispatcherService(
        store: store, workers: WorkerRegistry([worker]),
        options: DispatcherOptions(owner: "bench", storage: LocalObjectStorage(root: folder.path), maxRunningJobs: 64),
        formatting: CIFormatting(), logger: logger
    )
    let task = Task { try await dispatcher.run() }
    let clock = ContinuousClock()
    queue.state = .active
    let start = clock.now
    try await store.updateQueue(queue)
    while worker.started.load(ordering: .relaxed) < measured {
        try await Task.sleep(for: .milliseconds(2))
    }
    let elapsed = clock.now - start
    task.cancel()
    _ = await task.result
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    return Double(measured) / seconds
}

let measured = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 2000
var rates: [(Int, Double)] = []
for backlog in [1000, 10_000, 100_000] {
    let rate = try await measure(backlog: max(backlog, measured), measured: measured)
    rates.append((backlog, rate))
    print("backlog=\(backlog) dispatched=\(measured) jobs_per_s=\(Int(rate))")
}
let reference = rates[0].1
for (backlog, rate) in rates.dropFirst() {
    print("ratio_backlog_\(backlog)_over_1000=\(String(format: "%.2f", rate / reference))")
}
