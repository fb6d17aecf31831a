import Foundation
import Logging
import MediaQueueAMQP
import Synchronization

// End to end through a real `mediaqueue serve`: N trivial (Noop) jobs published to the intake
// queue with publisher confirms, stored in SQLite, dispatched, and announced as confirmed
// TaskFinish events on the topic exchange of queue-1's rule; a subscriber bound to `job.#` takes
// them. Prints jobs/s (first publish to last event), p50 and p99 of submit-to-event latency
// (each job's UserData carries its submit time) and the peak RSS of the serve process.
//
//   mediaqueue-e2e-bench [--amqp URL] [--jobs N] [--rate R] [--mediaqueue PATH] [--nodes K] [--database URL]
//
// --rate 0 (the default) publishes as fast as confirms allow; --rate R paces the producer to R
// jobs a second (latency at a given load). --nodes K starts K serve processes on one intake
// queue; --database puts them on that PostgreSQL database (empty: each run's own SQLite file,
// which suits one node). Also printed: the CPU the serve processes used per job, and the CPU the
// whole machine used per job (broker, database and this client included).
// Benchmarks/end-to-end.sh and Benchmarks/scale-out.sh run it against private servers.

struct Options {
    var amqpURL = "amqp://guest:guest@127.0.0.1:5672/"
    var jobs = 20_000
    var rate = 0
    var mediaqueue = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("mediaqueue").path
    var nodes = 1
    var databaseURL = ""

    init(_ arguments: [String]) {
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            guard let value = rest.popFirst() else { fail("\(flag) needs a value") }
            switch flag {
            case "--amqp": amqpURL = value
            case "--jobs": jobs = number(flag, value)
            case "--rate": rate = number(flag, value)
            case "--mediaqueue": mediaqueue = value
            case "--nodes": nodes = number(flag, value)
            case "--database": databaseURL = value
            default: fail("unknown option \(flag)")
            }
        }
        guard jobs > 0 else { fail("--jobs must be positive") }
        guard nodes > 0 else { fail("--nodes must be positive") }
    }
}

func number(_ flag: String, _ value: String) -> Int {
    guard let number = Int(value), number >= 0 else { fail("\(flag) takes a number") }
    return number
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("mediaqueue-e2e-bench: \(message)\n".utf8))
    stopServe()
    exit(2)
}

func wallNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

/// Submit-to-event latencies and the time of the last event, filled by the subscriber.
final class Arrivals: Sendable {
    private struct State {
        var latencies: [Int64] = []
        var seen = Set<Int>()
        var duplicates = 0
        var lastArrival: Int64 = 0
    }
    private let state = Mutex(State())

    func record(job: Int, submitted: Int64, at now: Int64) {
        state.withLock { state in
            guard state.seen.insert(job).inserted else {
                state.duplicates += 1
                return
            }
            state.latencies.append(now - submitted)
            state.lastArrival = now
        }
    }

    var count: Int { state.withLock { $0.seen.count } }
    var snapshot: (latencies: [Int64], duplicates: Int, lastArrival: Int64) {
        state.withLock { ($0.latencies, $0.duplicates, $0.lastArrival) }
    }
}

/// `job-<index>:<submit ns>` from the event's `<UserData>`.
func userData(in body: [UInt8]) -> (job: Int, submitted: Int64)? {
    let open = Array("<UserData>job-".utf8)
    guard let start = body.firstRange(of: open)?.upperBound,
          let end = body[start...].firstIndex(of: UInt8(ascii: "<")),
          let colon = body[start..<end].firstIndex(of: UInt8(ascii: ":")),
          let job = Int(String(decoding: body[start..<colon], as: UTF8.self)),
          let submitted = Int64(String(decoding: body[(colon + 1)..<end], as: UTF8.self))
    else { return nil }
    return (job, submitted)
}

func request(job: Int, level: Int, submitted: Int64) -> [UInt8] {
    Array("""
        <Request><Tag>Noop</Tag><Input><Object>bench/noop</Object></Input><Operation>\
        <JobLevel>\(level)</JobLevel><UserData>job-\(job):\(submitted)</UserData></Operation></Request>
        """.utf8)
}

/// The serve process's peak resident memory (VmHWM), in MiB.
func peakRSS(of pid: Int32) -> Double? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "")
    else { return nil }
    return kilobytes / 1024
}

/// CPU seconds (user and system, all threads) a live process has used so far.
func cpuSeconds(of pid: Int32) -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")")
    else { return 0 }
    // Fields after the command name: state is field 3, utime 14 and stime 15.
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// CPU seconds the whole machine has spent busy (all but idle and I/O wait), from /proc/stat.
func machineBusySeconds() -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
          let line = stat.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
    else { return 0 }
    let ticks = line.split(separator: " ").dropFirst().compactMap { Double($0) }
    guard ticks.count >= 5 else { return 0 }
    return (ticks.reduce(0, +) - ticks[3] - ticks[4]) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

func percentile(_ sorted: [Int64], _ fraction: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let index = min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.down)))
    return Double(sorted[index]) / 1e6
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
let run = "bench.e2e.\(getpid())"
let jobsQueue = "\(run).jobs"
let eventsExchange = "\(run).events"
let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent(run).path
/// The serve processes and their data folder, ended and removed on every way out (`fail` included).
let started = Mutex<(serves: [Process], dataDir: String)?>(nil)

func stopServe() {
    guard let (serves, dataDir) = started.withLock({ $0 }) else { return }
    for serve in serves where serve.isRunning {
        serve.terminate()
        serve.waitUntilExit()
    }
    try? FileManager.default.removeItem(atPath: dataDir)
}

func runBenchmark() async throws {
    var logger = Logger(label: "mediaqueue-e2e-bench")
    logger.logLevel = .warning

    let connection = AMQPConnection(configuration: try AMQPConfiguration(url: options.amqpURL), logger: logger)
    let connectionTask = Task { try await connection.run() }
    try await connection.waitUntilConnected()

    // The subscriber first, so no event is missed.
    try await connection.declare(AMQPTopology(exchanges: [AMQPExchange(name: eventsExchange, type: "topic", durable: true)]))
    let subscription = try await connection.declareQueue(AMQPQueue(name: "", durable: false, exclusive: true, autoDelete: true))
    try await connection.bind(AMQPBinding(queue: subscription, exchange: eventsExchange, routingKey: "job.#"))
    let events = try await connection.consume(queue: subscription, prefetch: 2000)
    let arrivals = Arrivals()
    let subscriber = Task {
        while let batch = await events.nextBatch(max: 500) {
            let now = wallNanoseconds()
            for message in batch {
                if let (job, submitted) = userData(in: message.body) { arrivals.record(job: job, submitted: submitted, at: now) }
            }
            if let last = batch.last { connection.ack(last.deliveryTag, multiple: true) }
        }
    }

    // MediaQueue with a fresh database, the benchmark's queue and exchange, and queue limits that
    // let the whole run wait at once.
    var environment = ProcessInfo.processInfo.environment
    environment.merge([
        "MEDIAQUEUE_AMQP_URL": options.amqpURL, "MEDIAQUEUE_DATA_DIR": dataDir, "MEDIAQUEUE_HTTP_ADDRESS": "127.0.0.1:0",
        "MEDIAQUEUE_INTAKE_QUEUE": jobsQueue, "MEDIAQUEUE_DEAD_LETTER_QUEUE": "\(jobsQueue).dead",
        "MEDIAQUEUE_EVENTS_EXCHANGE": eventsExchange, "MEDIAQUEUE_ENABLE_NOOP": "1", "MEDIAQUEUE_LOG_LEVEL": "warning",
        "MEDIAQUEUE_QUEUE_MAX_SIZE": String(options.jobs + 1000), "MEDIAQUEUE_QUEUE_MAX_CONCURRENT": "256",
        "MEDIAQUEUE_MAX_RUNNING_JOBS": "256", "MEDIAQUEUE_DATABASE_URL": options.databaseURL,
    ]) { $1 }
    var serves: [Process] = []
    for _ in 0..<options.nodes {
        let serve = Process()
        serve.executableURL = URL(fileURLWithPath: options.mediaqueue)
        serve.arguments = ["serve"]
        serve.environment = environment
        // Its log lines go to standard error: standard output is the result line alone.
        serve.standardOutput = FileHandle.standardError
        try serve.run()
        serves.append(serve)
        started.withLock { $0 = (serves, dataDir) }
    }
    defer { stopServe() }
    let ready = ContinuousClock.now + .seconds(60)
    while (try? await connection.queueStatus(jobsQueue).consumers) ?? 0 < options.nodes {
        guard serves.allSatisfy(\.isRunning), ContinuousClock.now < ready else { fail("mediaqueue serve did not start consuming \(jobsQueue)") }
        try await Task.sleep(for: .milliseconds(100))
    }
    let serveCPUAtStart = serves.map { cpuSeconds(of: $0.processIdentifier) }.reduce(0, +)
    let machineCPUAtStart = machineBusySeconds()

    // The producer: batches of confirmed publishes, paced when --rate is set.
    let firstPublish = wallNanoseconds()
    let clock = ContinuousClock()
    let start = clock.now
    var published = 0
    var generator = SystemRandomNumberGenerator()
    while published < options.jobs {
        var count = min(500, options.jobs - published)
        if options.rate > 0 {
            // Publish what is due by now: a millisecond's worth or so at a time.
            let elapsed = clock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let due = Int(Double(options.rate) * seconds) - published
            if due <= 0 {
                try await Task.sleep(for: .milliseconds(1))
                continue
            }
            count = min(count, due)
        }
        let batch = (published..<(published + count)).map { job in
            let level = Int.random(in: 0...2, using: &generator)
            return AMQPOutgoingMessage(
                routingKey: jobsQueue, body: request(job: job, level: level, submitted: wallNanoseconds()),
                properties: AMQPProperties(contentType: "application/xml", messageID: "\(run)-\(job)", persistent: true, priority: UInt8(level))
            )
        }
        for result in await connection.publish(batch: batch) {
            if case .failure(let error) = result { fail("a publish failed: \(error)") }
        }
        published += count
    }

    let deadline = ContinuousClock.now + .seconds(max(120, options.jobs / 500))
    while arrivals.count < options.jobs {
        guard serves.allSatisfy(\.isRunning) else { fail("a mediaqueue serve exited") }
        guard ContinuousClock.now < deadline else { fail("only \(arrivals.count) of \(options.jobs) events arrived") }
        try await Task.sleep(for: .milliseconds(20))
    }
    let serveCPU = serves.map { cpuSeconds(of: $0.processIdentifier) }.reduce(0, +) - serveCPUAtStart
    let machineCPU = machineBusySeconds() - machineCPUAtStart
    let rss = serves.compactMap { peakRSS(of: $0.processIdentifier) }.max()
    stopServe()

    let result = arrivals.snapshot
    let latencies = result.latencies.sorted()
    let seconds = Double(result.lastArrival - firstPublish) / 1e9
    print(String(
        format: "jobs=%d rate=%@ nodes=%d store=%@ jobs_per_s=%.0f p50_ms=%.1f p99_ms=%.1f serve_cpu_us_per_job=%.0f machine_cpu_us_per_job=%.0f peak_rss_mb=%.0f duplicates=%d",
        options.jobs, options.rate > 0 ? "\(options.rate)" : "max", options.nodes, options.databaseURL.isEmpty ? "sqlite" : "postgres",
        Double(options.jobs) / seconds, percentile(latencies, 0.5), percentile(latencies, 0.99),
        serveCPU * 1e6 / Double(options.jobs), machineCPU * 1e6 / Double(options.jobs), rss ?? .nan, result.duplicates
    ))

    await events.cancel()
    subscriber.cancel()
    try? await connection.deleteQueue(jobsQueue)
    try? await connection.deleteQueue("\(jobsQueue).dead")
    try? await connection.deleteExchange(eventsExchange)
    connectionTask.cancel()
}

do {
    try await runBenchmark()
} catch {
    fail("\(error)")
}
