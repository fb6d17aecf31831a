import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import MetricsTestKit
import Testing
@testable import MediaQueueEngine

/// `MeteredJobStore` counts the jobs a store call stores where it commits: those of workflow runs
/// too, once each, so that a bucket's submitted and finished counts agree.
@Suite struct MeteredJobStoreTests {
    struct AnyWorker: MediaWorker {
        let tag: String
        func validate(_ operation: CreateMediaJobsRequest.Operation) throws(CIError) {}
        func run(_ job: Job, context: WorkContext) async throws -> WorkResult { WorkResult() }
    }

    @Test func theJobsOfWorkflowRunsAreCountedAsSubmittedOnce() async throws {
        let metrics = TestMetrics()
        let time = ManualTimeSource(Timestamp(seconds: 1_700_000_000))
        let base = MemoryJobStore(time: time)
        let store = MeteredJobStore(base, metrics: EngineMetrics(factory: metrics))
        let queues = QueueDirectory(store: store) { MediaQueue(bucket: "", name: MediaQueue.defaultName, createTime: Timestamp(seconds: 0)) }
        let queue = try await queues.defaultQueue(bucket: "b")
        let topology = try XMLDocumentParser.parse("""
            <Topology><Dependencies><Start>Snapshot_1</Start><Snapshot_1>MediaInfo_1</Snapshot_1><MediaInfo_1>End</MediaInfo_1></Dependencies>
            <Nodes><Start><Type>Start</Type><Input><ObjectPrefix>in/</ObjectPrefix></Input></Start>
            <Snapshot_1><Type>Snapshot</Type><Operation/></Snapshot_1><MediaInfo_1><Type>MediaInfo</Type><Operation/></MediaInfo_1></Nodes></Topology>
            """)
        try await store.createDefinition(Definition(
            id: "wflow", kind: .workflow, bucket: "b", name: "flow", label: WorkflowState.active, body: topology, createTime: time.now, updateTime: time.now
        ))
        let runner = WorkflowRunner(
            store: store, queues: queues, templates: nil, workers: WorkerRegistry(["Snapshot", "MediaInfo"].map(AnyWorker.init)),
            formatting: CIFormatting(), time: time
        )
        func submitted(_ tag: String) throws -> Int64 {
            try metrics.expectCounter("mediaqueue_jobs_submitted_total", [("bucket", "b"), ("queue", queue.id.rawValue), ("tag", tag)]).totalValue
        }

        let run = try #require(try await runner.upload(bucket: "b", key: "in/a.mp4") {}.runs.first)
        #expect(try submitted("Snapshot") == 1)
        // The same origin again (a replay racing the upload's own start) stores nothing.
        var again = run
        again.id = WorkflowRun.newID()
        let firstJob = try #require(try await base.jobs(JobQuery(bucket: "b")).first)
        let copy = Job(
            bucket: "b", queueID: queue.id, tag: "Snapshot", jobLevel: 0, input: firstJob.input, operation: firstJob.operation, creationTime: time.now
        )
        #expect(try await store.createRun(again, jobs: [copy]).id == run.id)
        #expect(try submitted("Snapshot") == 1)

        try await base.endWaitingJobs(.success, owner: "n", now: time.now)
        try await runner.advance(try #require(try await store.run(id: run.id)))
        #expect(try submitted("MediaInfo") == 1)
    }

    /// A job handed back (a shutdown) and claimed again keeps its first start: its wait was
    /// recorded once, at that start, not again with the same figure at every claim.
    @Test func aJobsWaitIsRecordedAtItsFirstStartOnly() async throws {
        let metrics = TestMetrics()
        let time = ManualTimeSource(Timestamp(seconds: 1_700_000_000))
        let store = MeteredJobStore(MemoryJobStore(time: time), metrics: EngineMetrics(factory: metrics))
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: MediaQueue(bucket: "", name: MediaQueue.defaultName, createTime: time.now))
        let job = Job(bucket: "b", queueID: queue.id, tag: "Snapshot", jobLevel: 0, input: XMLTree("Input"), operation: XMLTree("Operation"), creationTime: time.now)
        _ = try await store.submit([Submission(idempotencyKey: nil, jobs: [job])])
        func claim() async throws -> [Job] {
            try await store.claim(ClaimRequest(owner: "n", now: time.now, leaseUntil: time.now + .seconds(60), limit: 1)).jobs
        }
        time.advance(by: .seconds(5))
        #expect(try await claim().count == 1)
        try await store.release([job.id], owner: "n")
        time.advance(by: .seconds(20))
        #expect(try await claim().count == 1)
        let wait = try metrics.expectTimer(EngineMetrics.jobWait, [("bucket", "b"), ("queue", queue.id.rawValue)])
        #expect(wait.values == [5_000_000_000], "one wait, of five seconds")
    }

    /// A gauge whose queue is gone reads 0: the exporter keeps
    /// every series it has seen, so it showed its last count until the process restarted, and
    /// a "waiting > 0" alert fired for ever.
    @Test func aQueueGaugeThatIsNoLongerReportedReadsZero() async throws {
        let metrics = TestMetrics()
        let engine = EngineMetrics(factory: metrics)
        let time = ManualTimeSource(Timestamp(seconds: 1_700_000_000))
        let store = MemoryJobStore(time: time)
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: MediaQueue(bucket: "", name: MediaQueue.defaultName, createTime: time.now))
        let job = Job(bucket: "b", queueID: queue.id, tag: "Snapshot", jobLevel: 2, input: XMLTree("Input"), operation: XMLTree("Operation"), creationTime: time.now)
        _ = try await store.submit([Submission(idempotencyKey: nil, jobs: [job])])
        let levelTwo = [("bucket", "b"), ("queue", queue.id.rawValue), ("level", "2")]
        try await engine.collect(from: store, connections: [])
        #expect(try metrics.expectGauge(EngineMetrics.jobsWaiting, levelTwo).lastValue == 1)
        // Between two scrapes the job is cancelled and its queue deleted.
        _ = try await store.cancel(job.id, now: time.now)
        try await store.deleteQueue(id: queue.id)
        try await engine.collect(from: store, connections: [])
        #expect(try metrics.expectGauge(EngineMetrics.jobsWaiting, levelTwo).lastValue == 0)
    }
}
