import Foundation
import MediaQueueAMQP
import MediaQueueApp
import MediaQueueCore
import MediaQueueSQLite
import MediaQueueTestSupport
import MediaQueueXML
import Synchronization

/// How large a chaos run is: short in the test command, long on demand (`Benchmarks/chaos.sh`
/// sets `MEDIAQUEUE_CHAOS_LONG=1`).
enum ChaosScale {
    static var isLong: Bool { TestEnvironment.value("MEDIAQUEUE_CHAOS_LONG") == "1" }

    static func pick<T>(short: T, long: T) -> T { isLong ? long : short }
}

/// What one scenario did to the jobs it submitted, printed as one line (and appended to the file
/// `MEDIAQUEUE_CHAOS_REPORT` names, so a long run collects them).
struct ChaosFigures: CustomStringConvertible {
    var scenario: String
    var faults: String
    var submitted = 0
    /// Jobs in a terminal state.
    var finished = 0
    /// Submissions that never became a job.
    var lost = 0
    /// Submissions that became more than one job.
    var createdTwice = 0
    /// Jobs announced with more than one terminal state, or with another than the store's.
    var multipleTerminalStates = 0
    /// Finished jobs whose TaskFinish never arrived.
    var callbacksLost = 0
    /// Announcements beyond the first of each job (allowed: delivery is at least once).
    var duplicateDeliveries = 0
    /// Jobs that ended Failed for another reason than their process dying on every attempt
    /// (`WorkerCrashed`, which a node killed again and again may cause): a fault must not fail jobs.
    var failed = 0

    var description: String {
        "chaos \(scenario): submitted \(submitted), finished \(finished), lost \(lost), created twice \(createdTwice), "
            + "more than one terminal state \(multipleTerminalStates), callbacks lost \(callbacksLost), "
            + "duplicate deliveries \(duplicateDeliveries), failed \(failed) [\(faults)]"
    }

    var isClean: Bool {
        lost == 0 && createdTwice == 0 && multipleTerminalStates == 0 && callbacksLost == 0 && finished == submitted && failed == 0
    }

    func report() {
        print(description)
        guard let path = TestEnvironment.value("MEDIAQUEUE_CHAOS_REPORT") else { return }
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        if let file = FileHandle(forWritingAtPath: path) {
            file.seekToEndOfFile()
            file.write(Data((description + "\n").utf8))
            try? file.close()
        }
    }

    /// The figures of a run whose submissions carry `UserData` `chaos-<n>`, from the store and
    /// (when there is one) what a subscriber received: job id → announced states.
    static func measure(
        scenario: String, faults: String, submitted: Int, store: any JobStore, announcements: [String: [String]]?
    ) async throws -> ChaosFigures {
        var figures = ChaosFigures(scenario: scenario, faults: faults, submitted: submitted)
        let jobs = try await store.jobs(JobQuery(limit: submitted * 2 + 100))
        let byUserData = Dictionary(grouping: jobs) { $0.userData ?? "" }
        figures.lost = (0..<submitted).filter { byUserData["chaos-\($0)"] == nil }.count
        figures.createdTwice = byUserData.values.filter { $0.count > 1 }.count
        figures.finished = jobs.filter(\.state.isTerminal).count
        figures.failed = jobs.filter { $0.state == .failed && $0.code != "WorkerCrashed" }.count
        guard let announcements else { return figures }
        for job in jobs where job.state.isTerminal {
            guard let states = announcements[job.id.rawValue] else {
                figures.callbacksLost += 1
                continue
            }
            if Set(states).count > 1 || states.first != job.state.rawValue { figures.multipleTerminalStates += 1 }
            figures.duplicateDeliveries += states.count - 1
        }
        return figures
    }
}

/// Chaos submissions: `Noop` jobs (they end at once, so thousands fit in a short run), each with
/// `UserData` `chaos-<n>` and a `message-id`, so a submission published twice is one job.
func chaosSubmissions(_ range: Range<Int>, tag: String = "Noop") -> [(id: String, body: String)] {
    range.map { index in
        ("chaos-\(index)", "<Request><Tag>\(tag)</Tag><Input><Object>input/a.mp4</Object></Input><Operation><UserData>chaos-\(index)</UserData></Operation></Request>")
    }
}

extension ServiceHarness {
    /// Publishes submissions with their message ids in one confirmed batch.
    func publish(identified submissions: [(id: String, body: String)]) async throws {
        let messages = submissions.map {
            AMQPOutgoingMessage(
                routingKey: configuration.intakeQueue, body: Array($0.body.utf8),
                properties: AMQPProperties(contentType: "application/xml", messageID: $0.id, persistent: true)
            )
        }
        for result in await client.publish(batch: messages) { try result.get() }
    }

    /// Jobs in each state, read from the store file (a serve process may be writing it).
    func stateCounts(_ store: any JobStore) async throws -> [JobState: Int] {
        try await store.activity(bucket: configuration.bucket, since: Timestamp(seconds: 0), now: SystemTimeSource().now).byState
    }
}

/// Every TaskFinish a subscriber receives, acked as it arrives: job id → the states announced.
final class EventTally: Sendable {
    private final class Announced: Sendable {
        let value = Mutex<[String: [String]]>([:])
    }

    private let announced = Announced()
    private let task: Task<Void, Never>

    init(consumer: AMQPConsumer, client: AMQPConnection) {
        task = Task { [announced] in
            while let batch = await consumer.nextBatch(max: 500) {
                for message in batch {
                    client.ack(message.deliveryTag)
                    guard let detail = message.xml?["JobsDetail"], let id = detail.text("JobId"), let state = detail.text("State") else { continue }
                    announced.value.withLock { $0[id, default: []].append(state) }
                }
            }
        }
    }

    deinit { task.cancel() }

    var announcements: [String: [String]] { announced.value.withLock { $0 } }
    var distinctJobs: Int { announced.value.withLock { $0.count } }
}
