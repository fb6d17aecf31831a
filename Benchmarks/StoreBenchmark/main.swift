import Foundation
import MediaQueueCore
import MediaQueueSQLite
import MediaQueueWorkers

// The store's share of one job's path, without a broker or other processes competing for the
// CPU: CPU microseconds per job for what `serve` does with a Noop job between the AMQP message
// and the broker's confirm of its event. Batches of submissions (the shared harness's CI body,
// each with its message id as the idempotency key) are parsed, stored and claimed in one
// transaction, ended with a TaskFinish to a topic exchange in a second, and recorded as
// delivered in a third, as the intake, the completion batcher and the TDMQ relay do.
//
//   swift run -c release mediaqueue-store-bench [jobs] [batch] [rounds]
//
// Each round uses a new SQLite file; the figure of a round is `serve`'s without AMQP frames,
// thread hand-offs between stages and the lingers, so compare it only with another build's
// rounds on the same machine, minutes apart.

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

func body(_ index: Int, submitted: Timestamp) -> [UInt8] {
    Array("""
        <Request><Tag>Noop</Tag><Input><Object>bench/noop</Object></Input><Operation>\
        <JobLevel>\(index % 3)</JobLevel><UserData>bench-\(index):\(submitted.milliseconds * 1_000_000)</UserData>\
        </Operation></Request>
        """.utf8)
}

/// Runs `jobs` jobs through the store in batches of `batch`; returns CPU µs per job and jobs/s.
func round(jobs: Int, batch: Int) async throws -> (cpuPerJob: Double, jobsPerSecond: Double) {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("mq-store-bench-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    let store = try SQLiteJobStore(path: folder.appendingPathComponent("store.sqlite").path)
    let time = SystemTimeSource()
    let template = MediaQueue(
        bucket: "bench", name: MediaQueue.defaultName, maxConcurrent: 256, maxSize: 1_000_000,
        notifyConfig: .topic("job-events"), createTime: time.now
    )
    _ = try await store.ensureDefaultQueue(bucket: "bench", template: template)
    let factory = SubmissionFactory(
        queues: QueueDirectory(store: store) { template }, workers: WorkerRegistry([NoopWorker()]),
        limits: SubmissionLimits()
    )
    let formatting = CIFormatting()

    let clock = ContinuousClock()
    let (startCPU, start) = (cpuSeconds(), clock.now)
    var next = 0
    while next < jobs {
        let count = min(batch, jobs - next)
        var submissions: [Submission] = []
        for index in next..<(next + count) {
            let submission = try await factory.submission(
                body: body(index, submitted: time.now), bucket: "bench", idempotencyKey: "bench-\(index)", now: time.now
            ).get()
            submissions.append(submission)
        }
        next += count
        let now = time.now
        let claimed = try await store.submit(
            submissions, thenClaim: ClaimRequest(owner: "bench", now: now, leaseUntil: now + .seconds(60), limit: count)
        ).claim.jobs
        // What the dispatcher and the completion batcher make of a Noop job that succeeded.
        guard let first = claimed.first, let queue = try await store.queue(id: first.queueID) else {
            fatalError("a batch of \(count) stored jobs claimed none")
        }
        let ended = time.now
        let finished = claimed.map { job in
            var job = job
            job.state = .success
            job.progress = 100
            job.endTime = ended
            let target = CallbackTarget.resolve(rule: queue.notifyConfig, override: job.callback)!
            return FinishedJob(job: job, outbox: [OutboxEntry.taskFinish(job, target: target, formatting: formatting, now: ended)])
        }
        _ = try await store.finish(finished, owner: "bench")
        try await store.markDelivered(finished.flatMap { $0.outbox.map(\.id) }, at: time.now)
    }
    let elapsed = clock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    return ((cpuSeconds() - startCPU) * 1e6 / Double(jobs), Double(jobs) / seconds)
}

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let jobs = arguments.first ?? 20_000
let batch = arguments.dropFirst().first ?? 32
let rounds = arguments.dropFirst(2).first ?? 5
guard jobs > 0, batch > 0, rounds > 0 else {
    print("usage: mediaqueue-store-bench [jobs] [batch] [rounds], each at least 1")
    exit(2)
}
var figures: [Double] = []
for number in 1...rounds {
    let result = try await round(jobs: jobs, batch: batch)
    figures.append(result.cpuPerJob)
    print("round=\(number) jobs=\(jobs) batch=\(batch) cpu_us_per_job=\(String(format: "%.1f", result.cpuPerJob)) jobs_per_s=\(Int(result.jobsPerSecond))")
}
let median = figures.sorted()[figures.count / 2]
print("median_cpu_us_per_job=\(String(format: "%.1f", median))")
