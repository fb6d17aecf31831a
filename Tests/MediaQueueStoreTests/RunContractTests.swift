import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import Testing

/// Workflow runs kept by every store: created with their first jobs in one transaction, updated
/// only from the version read, listed and paged.
@Suite struct RunContractTests {
    static let topology = try! WorkflowTopology.parse(try! XMLDocumentParser.parse("""
        <Topology><Dependencies><Start>Snapshot_1</Start><Snapshot_1>End</Snapshot_1></Dependencies>
        <Nodes><Start><Type>Start</Type><Input><ObjectPrefix>in/</ObjectPrefix></Input></Start>
        <Snapshot_1><Type>Snapshot</Type><Operation><Output><Object>o/${Number}.jpg</Object></Output></Operation></Snapshot_1></Nodes></Topology>
        """))

    func run(_ queue: MediaQueue, workflow: String = "w1", object: String = "in/a.mp4", at seconds: Int64 = 1) -> WorkflowRun {
        WorkflowRun(bucket: queue.bucket, workflowID: workflow, workflowName: "flow", object: object, queueID: queue.id, topology: Self.topology, now: Timestamp(seconds: seconds))
    }

    @Test(arguments: StoreKind.allCases)
    func aRunIsStoredWithItsFirstJobsAndUpdatedOnlyFromTheVersionRead(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template())
        let job = newJob(queue)
        let created = try await store.createRun(run(queue).started(["Snapshot_1": job]), jobs: [job])
        #expect(created.sequence > 0)
        #expect(try await store.job(id: job.id)?.state == .submitted, "the first job is stored with the run")
        let read = try #require(try await store.run(id: created.id))
        #expect(read == created, "every field of the run reads back")
        #expect(read.tasks.first?.jobID == job.id)

        var succeeded = read
        succeeded.state = .success
        let event = OutboxEntry(
            jobID: JobID(rawValue: read.id), bucket: "b", target: .url("http://127.0.0.1:9/hook"), routingKey: "r", body: Array("x".utf8),
            contentType: "application/xml", nextAttempt: Timestamp(seconds: 1), createdAt: Timestamp(seconds: 1)
        )
        #expect(try await store.updateRun(succeeded, jobs: [], outbox: [event]))
        #expect(try await store.run(id: read.id)?.state == .success)
        #expect(try await store.run(id: read.id)?.version == read.version + 1)
        #expect(try await store.dueOutbox(.url, now: Timestamp(seconds: 2), limit: 10).map(\.id) == [event.id], "the run's end is queued with it")

        var stale = read
        stale.state = .failed
        #expect(try await store.updateRun(stale, jobs: [newJob(queue)], outbox: []) == false, "an update from an old version changes nothing")
        #expect(try await store.run(id: read.id)?.state == .success)
        #expect(try await store.jobs(JobQuery(bucket: "b")).count == 1, "nor stores its jobs")
    }

    @Test(arguments: StoreKind.allCases)
    func aRunWhoseJobsDoNotFitItsQueueIsNotStored(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template(maxSize: 1))
        _ = try await submitOne(store, newJob(queue))
        let refused = run(queue)
        await #expect(throws: CIError.self) { _ = try await store.createRun(refused, jobs: [newJob(queue)]) }
        #expect(try await store.run(id: refused.id) == nil)
    }

    @Test(arguments: StoreKind.allCases)
    func runsAreListedByWorkflowAndStateNewestFirstInPages(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template())
        var ids: [String] = []
        for index in 0..<5 {
            let stored = try await store.createRun(run(queue, workflow: index == 4 ? "w2" : "w1", at: Int64(index)), jobs: [])
            ids.append(stored.id)
        }
        var done = try #require(try await store.run(id: ids[1]))
        done.state = .failed
        #expect(try await store.updateRun(done, jobs: [], outbox: []))

        var query = RunQuery(bucket: "b", workflowID: "w1")
        query.limit = 2
        let first = try await store.runs(query)
        #expect(first.map(\.id) == [ids[3], ids[2]])
        query.after = first.last?.sequence
        #expect(try await store.runs(query).map(\.id) == [ids[1], ids[0]])
        var failed = RunQuery(bucket: "b")
        failed.states = [.failed]
        #expect(try await store.runs(failed).map(\.id) == [ids[1]])
        var oldest = RunQuery(bucket: "b")
        oldest.newestFirst = false
        oldest.limit = 1
        #expect(try await store.runs(oldest).map(\.id) == [ids[0]])
        #expect(try await store.runs(RunQuery(bucket: "other")).isEmpty)

        let running = try await store.runningRuns(after: 0, limit: 10).map(\.id)
        #expect(running == [ids[0], ids[2], ids[3], ids[4]])
        let later = try await store.runningRuns(after: try #require(try await store.run(id: ids[2])?.sequence), limit: 1).map(\.id)
        #expect(later == [ids[3]])
    }

    /// `GET /jobs?workflowId=&inputObject=` and `GET /workflowexecution?jobId=`: a workflow's
    /// jobs, the jobs on one object (exactly: not a key it begins, nor one with characters XML
    /// escapes written otherwise), and the run of a job.
    @Test(arguments: StoreKind.allCases)
    func jobsAreListedByWorkflowAndObjectAndRunsByTheirJob(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template())
        func nodeJob(_ run: WorkflowRun, object: String) -> Job {
            Job(
                bucket: "b", queueID: queue.id, tag: "Snapshot", jobLevel: 0, input: XMLTree("Input", children: [XMLTree("Object", text: object)]),
                operation: XMLTree("Operation", children: [run.workflowBlock(node: "Snapshot_1")]), creationTime: Timestamp(seconds: 1_700_000_000)
            )
        }
        let first = run(queue, workflow: "w\(String(repeating: "1", count: 32))", object: "in/a&b <1>.mp4")
        let firstJob = nodeJob(first, object: first.object)
        _ = try await store.createRun(first.started(["Snapshot_1": firstJob]), jobs: [firstJob])
        let second = run(queue, workflow: "w\(String(repeating: "2", count: 32))", object: "in/a&b <1>.mp4.jpg", at: 2)
        let secondJob = nodeJob(second, object: second.object)
        _ = try await store.createRun(second.started(["Snapshot_1": secondJob]), jobs: [secondJob])
        let plain = try await submitOne(store, newJob(queue))

        var byWorkflow = JobQuery(bucket: "b")
        byWorkflow.workflowID = first.workflowID
        #expect(try await store.jobs(byWorkflow).map(\.id) == [firstJob.id])
        var byObject = JobQuery(bucket: "b")
        byObject.inputObject = "in/a&b <1>.mp4"
        #expect(try await store.jobs(byObject).map(\.id) == [firstJob.id])
        byObject.inputObject = "in/a.mp4"
        #expect(try await store.jobs(byObject).map(\.id) == [plain.id])
        byObject.workflowID = first.workflowID
        #expect(try await store.jobs(byObject).isEmpty, "both filters apply")

        var byJob = RunQuery(bucket: "b")
        byJob.jobID = secondJob.id
        #expect(try await store.runs(byJob).map(\.id) == [second.id])
        byJob.jobID = plain.id
        #expect(try await store.runs(byJob).isEmpty)
    }

    @Test(arguments: StoreKind.allCases)
    func aRunsOriginStartsItOnceAndArrivalsWaitUntilRemoved(_ kind: StoreKind) async throws {
        let store = try await kind.make()
        let queue = try await store.ensureDefaultQueue(bucket: "b", template: template())
        var first = run(queue)
        first.origin = "a1/w1"
        let job = newJob(queue)
        let stored = try await store.createRun(first.started(["Snapshot_1": job]), jobs: [job])
        var replay = run(queue)
        replay.origin = "a1/w1"
        let again = try await store.createRun(replay, jobs: [newJob(queue)])
        #expect(again.id == stored.id, "the run of that origin, not a new one")
        #expect(try await store.jobs(JobQuery(bucket: "b")).count == 1, "and no second job")
        #expect(try await store.run(id: replay.id) == nil)

        let older = Arrival(bucket: "b", key: "in/a.mp4", time: Timestamp(seconds: 10))
        let newer = Arrival(
            bucket: "b", key: "in/b.mp4", time: Timestamp(seconds: 20),
            cosHeaders: [CosHeader(key: "Content-Type", value: "video/mp4"), CosHeader(key: "x-cos-meta-camera", value: "A7 <&>")]
        )
        try await store.recordArrival(newer)
        try await store.recordArrival(older)
        #expect(try await store.arrivals(before: Timestamp(seconds: 30), limit: 10) == [older, newer])
        #expect(try await store.arrivals(before: Timestamp(seconds: 15), limit: 10) == [older])
        // Pages: after the last of the one before, by time and then id.
        let tied = Arrival(id: older.id + "z", bucket: "b", key: "in/c.mp4", time: older.time)
        try await store.recordArrival(tied)
        #expect(try await store.arrivals(before: Timestamp(seconds: 30), limit: 1) == [older])
        #expect(try await store.arrivals(before: Timestamp(seconds: 30), after: older, limit: 1) == [tied])
        #expect(try await store.arrivals(before: Timestamp(seconds: 30), after: tied, limit: 10) == [newer])
        #expect(try await store.arrivals(before: Timestamp(seconds: 30), after: newer, limit: 10).isEmpty)
        try await store.removeArrival(id: tied.id)
        try await store.removeArrival(id: older.id)
        #expect(try await store.arrivals(before: Timestamp(seconds: 30), limit: 10) == [newer])
    }
}
