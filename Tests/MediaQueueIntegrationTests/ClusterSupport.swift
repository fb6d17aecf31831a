import Foundation
import FoundationNetworking
import Logging
import MediaQueueAMQP
import MediaQueueApp
import MediaQueueCore
import MediaQueuePostgres
import MediaQueueTestSupport
import MediaQueueXML
import Synchronization
import Testing

/// Several real `mediaqueue serve` processes on one PostgreSQL database (a new one), the
/// harness's broker names and one storage folder: the scale-out deployment on one machine.
final class Cluster: Sendable {
    let harness: ServiceHarness
    let databaseURL: String
    /// The test's own view of the database.
    let store: PostgresJobStore
    private let environment: [String: String]
    private let nodes: Mutex<[ChildProcess]>

    static var binary: String? { CrashTests.binary }

    init(extra: [String: String] = [:]) async throws {
        harness = try ServiceHarness()
        databaseURL = try await TestDatabase.create()
        store = try PostgresJobStore(url: databaseURL, logger: harness.logger)
        environment = harness.serveEnvironment([
            "MEDIAQUEUE_DATABASE_URL": databaseURL, "MEDIAQUEUE_ENABLE_NOOP": "1", "MEDIAQUEUE_ANONYMOUS": "1",
            "MEDIAQUEUE_LEASE_SECONDS": "5",
        ].merging(extra) { $1 })
        nodes = Mutex([])
        try FileManager.default.createDirectory(atPath: harness.configuration.dataDir, withIntermediateDirectories: true)
    }

    deinit {
        for node in nodes.withLock({ $0 }) { node.terminate() }
    }

    /// The default queue, created before any node starts, as the nodes would create it but
    /// with `change` applied (a node that starts later finds it).
    func prepareDefaultQueue(_ change: (inout MediaQueue) -> Void) async throws -> MediaQueue {
        var template = harness.configuration.defaultQueueTemplate(now: SystemTimeSource().now)
        change(&template)
        return try await store.ensureDefaultQueue(bucket: harness.configuration.bucket, template: template)
    }

    /// Starts `count` more nodes and waits until every node consumes the intake queue.
    @discardableResult
    func start(_ count: Int) throws -> [ChildProcess] {
        let binary = try #require(Self.binary)
        let started = try (0..<count).map { _ in
            let index = nodes.withLock { $0.count }
            let node = try ChildProcess(binary, ["serve"], environment: environment, logPath: harness.configuration.dataDir + "/node-\(index).log")
            nodes.withLock { $0.append(node) }
            return node
        }
        return started
    }

    var running: [ChildProcess] { nodes.withLock { $0 } }

    func waitForConsumers(_ count: Int) async throws {
        try await eventually("\(count) nodes to consume the intake queue") {
            (try? await harness.client.queueStatus(harness.configuration.intakeQueue))?.consumers == UInt32(count)
        }
    }

    /// `GET /jobs?queueId=…&states=Running` on one node's API: the jobs it reports running.
    func runningJobs(port: Int, queue: QueueID) async throws -> Int {
        let url = URL(string: "http://127.0.0.1:\(port)/\(harness.configuration.bucket)/jobs?queueId=\(queue.rawValue)&states=Running&size=100")!
        let (body, response) = try await URLSession.shared.data(from: url)
        guard (response as? HTTPURLResponse)?.statusCode == 200 else {
            throw TimedOut(description: "GET /jobs answered \(String(decoding: body, as: UTF8.self))")
        }
        return try XMLDocumentParser.parse(Array(body)).all("JobsDetail").count
    }

    /// `PUT /queue/<id>` with a new state, on one node's API.
    func setQueueState(_ state: MediaQueue.State, queue: QueueID, port: Int) async throws {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/\(harness.configuration.bucket)/queue/\(queue.rawValue)")!)
        request.httpMethod = "PUT"
        request.httpBody = Data("<Request><State>\(state.rawValue)</State></Request>".utf8)
        let (body, response) = try await URLSession.shared.data(for: request)
        guard (response as? HTTPURLResponse)?.statusCode == 200 else {
            throw TimedOut(description: "PUT /queue answered \(String(decoding: body, as: UTF8.self))")
        }
    }

    /// Every job of the bucket, oldest first.
    func jobs() async throws -> [Job] {
        try await store.jobs(JobQuery(bucket: harness.configuration.bucket, newestFirst: false, limit: 100_000))
    }

    func count(_ states: Set<JobState>) async throws -> Int {
        try await store.jobs(JobQuery(bucket: harness.configuration.bucket, states: states, limit: 100_000)).count
    }

    /// What the nodes logged, for failure messages.
    var logTails: String { running.enumerated().map { "node \($0.offset): \($0.element.logTail)" }.joined(separator: "\n") }
}

/// A submission of one job of `tag` at `level`, with `UserData` `n-<index>`.
func clusterSubmission(_ index: Int, tag: String = "Noop", level: Int = 0, extra: String = "") -> (id: String, body: String) {
    (
        "n-\(index)",
        """
        <Request><Tag>\(tag)</Tag><Input><Object>input/a.mp4</Object></Input>\
        <Operation><JobLevel>\(level)</JobLevel><UserData>n-\(index)</UserData>\(extra)</Operation></Request>
        """
    )
}
