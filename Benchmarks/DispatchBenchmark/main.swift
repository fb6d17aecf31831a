import Foundation
import Logging
import MediaQueueCore
import MediaQueueEngine
import MediaQueuePostgres
import MediaQueueSQLite
import MediaQueueWorkers
import MediaQueueXML
import Synchronization

// Dispatch rate of trivial jobs with 1k, 10k and 100k jobs waiting, on the real SQLite store (or
// PostgreSQL) and the real DispatcherService: every job is claimed, run and finished, so the rate
// is claims per second. Choosing the next job must not scan the backlog, so the rate should not
// fall as the backlog grows.
//
//   swift run -c release mediaqueue-dispatch-bench [measured] [--databases URL1,URL2,URL3]
//
// --databases: three empty PostgreSQL databases, one per backlog (Benchmarks/scale-out.sh makes
// them); without it each backlog gets a new SQLite file.

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

func measure(backlog: Int, measured: Int, databaseURL: String?) async throws -> Double {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mq-bench-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    let store: any JobStore = if let databaseURL {
        try PostgresJobStore(url: databaseURL, logger: Logger(label: "bench"))
    } else {
        try SQLiteJobStore(path: folder.appendingPathComponent("bench.sqlite").path)
    }
    let now = SystemTimeSource().now
    // The backlog is stored before the dispatcher starts, so the clock runs for claims alone.
    var template = MediaQueue(bucket: "bench", name: "queue-1", maxConcurrent: 64, maxSize: 1_000_000, createTime: now)
    template.notifyConfig = NotifyConfig()
    let queue = try await store.ensureDefaultQueue(bucket: "bench", template: template)

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
    let clock = ContinuousClock()
    let start = clock.now
    let task = Task { try await dispatcher.run() }
    while worker.started.load(ordering: .relaxed) < measured {
        try await Task.sleep(for: .milliseconds(2))
    }
    let elapsed = clock.now - start
    task.cancel()
    _ = await task.result
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    return Double(measured) / seconds
}

var arguments = Array(CommandLine.arguments.dropFirst())
var databases: [String]?
if let flag = arguments.firstIndex(of: "--databases"), flag + 1 < arguments.count {
    databases = arguments[flag + 1].split(separator: ",").map(String.init)
    arguments.removeSubrange(flag...(flag + 1))
}
let measured = arguments.first.flatMap(Int.init) ?? 2000
let backlogs = [1000, 10_000, 100_000]
if let databases, databases.count != backlogs.count {
    print("--databases needs \(backlogs.count) URLs, one per backlog")
    exit(2)
}
var rates: [(Int, Double)] = []
for (index, backlog) in backlogs.enumerated() {
    let rate = try await measure(backlog: max(backlog, measured), measured: measured, databaseURL: databases?[index])
    rates.append((backlog, rate))
    print("store=\(databases == nil ? "sqlite" : "postgres") backlog=\(backlog) dispatched=\(measured) jobs_per_s=\(Int(rate))")
}
let reference = rates[0].1
for (backlog, rate) in rates.dropFirst() {
    print("ratio_backlog_\(backlog)_over_1000=\(String(format: "%.2f", rate / reference))")
}
