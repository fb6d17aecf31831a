import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import Synchronization
import Testing

/// `WorkflowRunner` on the memory store: nodes become jobs as their dependencies succeed, and
/// a run's end is queued to the queue's rule when the Start node has no NotifyConfig.
@Suite struct WorkflowRunnerTests {
    struct AnyWorker: MediaWorker {
        let tag: String
        func validate(_ operation: CreateMediaJobsRequest.Operation) throws(CIError) {}
        func run(_ job: Job, context: WorkContext) async throws -> WorkResult { WorkResult() }
    }

    let store = MemoryJobStore()
    let time = ManualTimeSource(Timestamp(seconds: 1_700_000_000))

    func runner(rule: NotifyConfig, templates: TemplateResolver? = nil, maxSize: Int = 10_000) async throws -> (WorkflowRunner, Definition) {
        let queues = QueueDirectory(store: store) {
            MediaQueue(bucket: "", name: MediaQueue.defaultName, maxSize: maxSize, notifyConfig: rule, createTime: Timestamp(seconds: 1_700_000_000))
        }
        _ = try await queues.defaultQueue(bucket: "b")
        let runner = WorkflowRunner(
            store: store, queues: queues, templates: templates, workers: WorkerRegistry(["Snapshot", "MediaInfo"].map(AnyWorker.init)),
            formatting: CIFormatting(), time: time
        )
        let topology = try XMLDocumentParser.parse("""
            <Topology><Dependencies><Start>Snapshot_1</Start><Snapshot_1>MediaInfo_1</Snapshot_1><MediaInfo_1>End</MediaInfo_1></Dependencies>
            <Nodes><Start><Type>Start</Type><Input><ObjectPrefix>in/</ObjectPrefix></Input></Start>
            <Snapshot_1><Type>Snapshot</Type><Operation><Output><Object>out/${RunId}/s-${Number}.jpg</Object></Output></Operation></Snapshot_1>
            <MediaInfo_1><Type>MediaInfo</Type><Operation><JobLevel>2</JobLevel></Operation></MediaInfo_1></Nodes></Topology>
            """)
        let workflow = Definition(
            id: "wflow", kind: .workflow, bucket: "b", name: "flow", label: WorkflowState.active, body: topology, createTime: time.now, updateTime: time.now
        )
        try await store.createDefinition(workflow)
        return (runner, workflow)
    }

    /// Another active workflow of bucket `b` for uploads under `in/`, made after those before,
    /// with one node of `operation` (a Snapshot) and its Start on `queueID`.
    @discardableResult
    func workflow(_ id: String, queueID: String? = nil, operation: String = "<Operation/>") async throws -> Definition {
        let queue = queueID.map { "<QueueId>\($0)</QueueId>" } ?? ""
        let topology = try XMLDocumentParser.parse("""
            <Topology><Dependencies><Start>Snapshot_1</Start><Snapshot_1>End</Snapshot_1></Dependencies>
            <Nodes><Start><Type>Start</Type><Input>\(queue)<ObjectPrefix>in/</ObjectPrefix></Input></Start>
            <Snapshot_1><Type>Snapshot</Type>\(operation)</Snapshot_1></Nodes></Topology>
            """)
        time.advance(by: .seconds(1))
        let workflow = Definition(
            id: id, kind: .workflow, bucket: "b", name: id, label: WorkflowState.active, body: topology, createTime: time.now, updateTime: time.now
        )
        try await store.createDefinition(workflow)
        return workflow
    }

    /// Runs every waiting job to `state` as a dispatcher would.
    func finishWaitingJobs(_ state: JobState) async throws -> [Job] {
        try await store.endWaitingJobs(state, owner: "n", now: time.now)
    }

    @Test func nodesRunInTurnAndTheRunsEndGoesToTheQueuesRule() async throws {
        let rule = NotifyConfig(isOn: true, events: [.taskFinish, .workflowFinish], resultFormat: .xml, type: .tdmq, mqMode: .topic, mqName: "events", mqRegion: "sh")
        let (runner, _) = try await runner(rule: rule)
        let headers = [CosHeader(key: "Content-Type", value: "video/mp4"), CosHeader(key: "x-cos-meta-camera", value: "A7")]
        let runs = try await runner.upload(bucket: "b", key: "in/a.mp4", cosHeaders: headers) {}.runs
        let run = try #require(runs.first)
        #expect(try await runner.upload(bucket: "b", key: "other/a.mp4") {}.runs.isEmpty, "outside the prefix")

        let first = try await finishWaitingJobs(.success)
        #expect(first.map(\.tag) == ["Snapshot"])
        #expect(first.first?.operation.text("Output", "Object") == "out/\(run.id)/s-${Number}.jpg", "${RunId} is filled in")
        #expect(first.first?.workflowRunID == run.id)
        let input = try #require(first.first?.jobsDetail(CIFormatting())["Input"])
        #expect(input.children.map(\.name) == ["BucketId", "Object", "Region", "CosHeaders", "CosHeaders", "CosHeaders"], "the upload's headers, after Region")
        #expect(CosHeader.all(in: input) == headers + [CosHeader(key: "EventName", value: "cos:ObjectCreated:Put")], "and the event, as CI's (spec §5.2)")
        try await runner.advance(try #require(try await store.run(id: run.id)))
        let second = try await finishWaitingJobs(.success)
        #expect(second.map(\.tag) == ["MediaInfo"] && second.first?.jobLevel == 2)
        try await runner.advance(try #require(try await store.run(id: run.id)))

        let done = try #require(try await store.run(id: run.id))
        #expect(done.state == .success && done.tasks.map(\.state) == ["Success", "Success"])
        let events = try await store.dueOutbox(.tdmq, now: time.now, limit: 10)
        #expect(events.count == 1)
        let event = try #require(events.first)
        #expect(event.target == .mq(mode: .topic, name: "events", region: "sh"))
        #expect(event.routingKey == "workflow.\(run.queueID.rawValue).wflow.Success" && event.event == .workflowFinish)
        let body = try XMLDocumentParser.parse(event.body)
        #expect(body.text("WorkflowExecution", "RunId") == run.id && body.all("WorkflowExecution").first?.all("Tasks").count == 2)
        #expect(CosHeader.all(in: try #require(body["WorkflowExecution"])) == headers)

        try await runner.advance(done)
        #expect(try await store.dueOutbox(.tdmq, now: time.now, limit: 10).count == 1, "an ended run is announced once")
    }

    @Test func aRuleWithoutWorkflowFinishAnnouncesNoRunAndAFailedNodeStopsTheRest() async throws {
        let (runner, _) = try await runner(rule: .topic("events"))
        let run = try #require(try await runner.upload(bucket: "b", key: "in/a.mp4") {}.runs.first)
        _ = try await finishWaitingJobs(.failed)
        try await runner.advance(try #require(try await store.run(id: run.id)))
        let failed = try #require(try await store.run(id: run.id))
        #expect(failed.state == .failed && failed.tasks.map(\.state) == ["Failed", "Waiting"])
        #expect(try await store.jobs(JobQuery(bucket: "b")).count == 1, "the node after the failed one never got a job")
        #expect(try await store.dueOutbox(.tdmq, now: time.now, limit: 10).isEmpty, "the rule announces TaskFinish only")
    }

    /// A waiting node job ends when it is cancelled, not in a dispatcher: the cancel itself moves
    /// its run on and announces the run's end. A running one is only asked to stop.
    @Test func cancellingAWaitingNodeJobEndsItsRunAtOnce() async throws {
        let rule = NotifyConfig(isOn: true, events: [.workflowFinish], resultFormat: .xml, type: .tdmq, mqMode: .queue, mqName: "runs", mqRegion: "sh")
        let (runner, _) = try await runner(rule: rule)
        let running = try #require(try await runner.upload(bucket: "b", key: "in/a.mp4") {}.runs.first)
        let claimed = try #require(try await store.claimJobs(owner: "n", now: time.now, leaseUntil: time.now + .seconds(60), limit: 1).first)
        let waiting = try #require(try await runner.upload(bucket: "b", key: "in/b.mp4") {}.runs.first)
        let waitingJob = try #require(try await store.run(id: waiting.id)?.tasks.first?.jobID)

        let stopping = try await runner.cancel(claimed.id, now: time.now)
        #expect(stopping.outcome == .stopping(try #require(try await store.job(id: claimed.id))) && stopping.runDeferred == nil)
        #expect(try await store.run(id: running.id)?.state == .running, "its run moves on when the dispatcher ends the job")

        let cancelled = try await runner.cancel(waitingJob, now: time.now)
        guard case .cancelled = cancelled.outcome else { Issue.record("\(cancelled.outcome)"); return }
        #expect(cancelled.runDeferred == nil)
        let ended = try #require(try await store.run(id: waiting.id))
        #expect(ended.state == .cancel && ended.tasks.map(\.state) == ["Cancel", "Waiting"])
        let announced = try await store.dueOutbox(.tdmq, now: time.now, limit: 10)
        #expect(announced.map(\.event) == [.workflowFinish] && announced.first?.target == .mq(mode: .queue, name: "runs", region: "sh"))
        let body = try XMLDocumentParser.parse(try #require(announced.first).body)
        // CI's WorkflowFinish says Success or Failed; the run itself keeps Cancel.
        #expect(body.text("WorkflowExecution", "RunId") == waiting.id && body.text("WorkflowExecution", "State") == "Failed")
    }

    /// A run whose queue is full when it starts waits for room, as its later nodes do: it used
    /// to fail at once, each upload's run during a burst, with nothing to start it again. Past
    /// `nodePatience` it fails, naming why, and is announced.
    @Test func aRunWhoseQueueIsFullWaitsForRoomThenFailsNamingWhyAndIsAnnounced() async throws {
        let rule = NotifyConfig(isOn: true, events: [.workflowFinish], resultFormat: .xml, type: .tdmq, mqMode: .queue, mqName: "runs", mqRegion: "sh")
        let (runner, _) = try await runner(rule: rule)
        var queue = try #require(try await store.queues(bucket: "b").first)
        queue.maxSize = 1
        try await store.updateQueue(queue)
        _ = try await store.submit([Submission(idempotencyKey: nil, jobs: [Job(
            bucket: "b", queueID: queue.id, tag: "Snapshot", jobLevel: 0, input: XMLTree("Input"), operation: XMLTree("Operation"), creationTime: time.now
        )])])

        // Two uploads during the burst: both runs wait.
        let first = try #require(try await runner.upload(bucket: "b", key: "in/a.mp4") {}.runs.first)
        let second = try #require(try await runner.upload(bucket: "b", key: "in/b.mp4") {}.runs.first)
        for run in [first, second] {
            #expect(run.state == .running)
            #expect(run.tasks.first?.state == WorkflowRun.Task.waiting && run.tasks.first?.jobID == nil)
        }
        #expect(try await store.dueOutbox(.tdmq, now: time.now, limit: 10).isEmpty)

        // Room: the next look starts the first run's node.
        _ = try await finishWaitingJobs(.success)
        try await runner.advance(try #require(try await store.run(id: first.id)))
        #expect(try await store.run(id: first.id)?.tasks.first?.jobID != nil)

        // The queue stays full for the second: past the patience its node fails, naming why.
        time.advance(by: runner.nodePatience)
        try await runner.advance(try #require(try await store.run(id: second.id)))
        let failed = try #require(try await store.run(id: second.id))
        #expect(failed.state == .failed)
        #expect(failed.tasks.first?.code == "QueueFull" && failed.tasks.first?.jobID == nil)
        #expect(try await store.dueOutbox(.tdmq, now: time.now, limit: 10).map(\.event) == [.workflowFinish])
    }

    /// A run that started but could not be moved on at once (its queue full) is still the start's
    /// answer, not an error that would have a trigger's client start it again; a later look
    /// ends it.
    @Test func aRunThatStartedButCouldNotMoveOnIsStillTheStartsAnswer() async throws {
        let rule = NotifyConfig(isOn: true, events: [.workflowFinish], resultFormat: .xml, type: .tdmq, mqMode: .queue, mqName: "runs", mqRegion: "sh")
        let deferred = Mutex<[String]>([])
        let queues = QueueDirectory(store: store) {
            MediaQueue(bucket: "", name: MediaQueue.defaultName, maxSize: 1, notifyConfig: rule, createTime: Timestamp(seconds: 1_700_000_000))
        }
        let queue = try await queues.defaultQueue(bucket: "b")
        let runner = WorkflowRunner(
            store: store, queues: queues, templates: nil, workers: WorkerRegistry(["Snapshot", "MediaInfo"].map(AnyWorker.init)),
            formatting: CIFormatting(), time: time, onAdvanceDeferred: { run, _ in deferred.withLock { $0.append(run.id) } }
        )
        let workflow = try await workflow("wfull")
        _ = try await store.submit([Submission(idempotencyKey: nil, jobs: [Job(
            bucket: "b", queueID: queue.id, tag: "Snapshot", jobLevel: 0, input: XMLTree("Input"), operation: XMLTree("Operation"), creationTime: time.now
        )])])

        let run = try await runner.start(workflow, object: "in/a.mp4")
        #expect(run.state == .running && run.tasks.first?.jobID == nil)
        #expect(deferred.withLock { $0 } == [run.id])
        #expect(try await store.runs(RunQuery(bucket: "b")).map(\.id) == [run.id], "one run")

        time.advance(by: runner.nodePatience)
        try await runner.advance(try #require(try await store.run(id: run.id)))
        #expect(try await store.run(id: run.id)?.state == .failed)
        #expect(try await store.dueOutbox(.tdmq, now: time.now, limit: 10).map(\.event) == [.workflowFinish])
    }

    /// The workflow service looks at every running run on each scan: one whose jobs did not
    /// change is not written again.
    @Test func aRunWhoseJobsDidNotChangeIsNotWrittenAgain() async throws {
        let (runner, _) = try await runner(rule: .topic("events"))
        let run = try #require(try await runner.upload(bucket: "b", key: "in/a.mp4") {}.runs.first)
        try await runner.advance(try #require(try await store.run(id: run.id)))
        let stored = try #require(try await store.run(id: run.id))
        time.advance(by: .seconds(10))
        try await runner.advance(stored)
        #expect(try await store.run(id: run.id)?.version == stored.version)

        _ = try await finishWaitingJobs(.success)
        try await runner.advance(stored)
        let moved = try #require(try await store.run(id: run.id))
        #expect(moved.version > stored.version && moved.updateTime == time.now, "written once something changed")
    }

    /// A run whose queue was deleted between its steps (its jobs had all ended, so the queue
    /// could go) does not stay Running: the next step fails naming why, and the run ends.
    @Test func aRunWhoseQueueWasDeletedBetweenItsStepsEnds() async throws {
        let (runner, _) = try await runner(rule: .topic("events"))
        let run = try #require(try await runner.upload(bucket: "b", key: "in/a.mp4") {}.runs.first)
        _ = try await finishWaitingJobs(.success)
        try await store.deleteQueue(id: run.queueID)

        try await runner.advance(try #require(try await store.run(id: run.id)))
        let ended = try #require(try await store.run(id: run.id))
        #expect(ended.state == .failed)
        #expect(ended.tasks.map(\.state) == ["Success", "Failed"])
        #expect(ended.tasks.last?.code == "NoSuchQueue" && ended.tasks.last?.jobID == nil)
    }

    /// A run whose next node its queue has no room for (MaxSize reached by other jobs) waits for
    /// room: the node starts once there is some.
    @Test func aRunWhoseNextNodeTheFullQueueRefusesStartsItOnceThereIsRoom() async throws {
        let (runner, _) = try await runner(rule: .topic("events"), maxSize: 1)
        let run = try #require(try await runner.upload(bucket: "b", key: "in/a.mp4") {}.runs.first)
        _ = try await finishWaitingJobs(.success)
        try await fillQueue(of: run)

        await #expect(throws: CIError.self) { try await runner.advance(try #require(try await store.run(id: run.id))) }
        #expect(try await store.run(id: run.id)?.state == .running, "waiting for room")
        _ = try await finishWaitingJobs(.success)
        try await runner.advance(try #require(try await store.run(id: run.id)))
        let moved = try #require(try await store.run(id: run.id))
        #expect(moved.state == .running && moved.task("MediaInfo_1")?.jobID != nil, "started once the other job ended")
    }

    /// One that finds no room for the whole patience (more nodes than MaxSize, or a queue never
    /// drained) does not stay Running, refused at every look: the node fails with the reason and
    /// the run ends, announced, as a run whose first node is refused does.
    @Test func aRunWhoseNextNodeTheFullQueueRefusesForThePatienceEnds() async throws {
        let rule = NotifyConfig(isOn: true, events: [.workflowFinish], resultFormat: .xml, type: .tdmq, mqMode: .queue, mqName: "runs", mqRegion: "sh")
        let (runner, _) = try await runner(rule: rule, maxSize: 1)
        let run = try #require(try await runner.upload(bucket: "b", key: "in/a.mp4") {}.runs.first)
        _ = try await finishWaitingJobs(.success)
        try await fillQueue(of: run)

        time.advance(by: runner.nodePatience - .seconds(1))
        await #expect(throws: CIError.self) { try await runner.advance(try #require(try await store.run(id: run.id))) }
        time.advance(by: .seconds(1))
        try await runner.advance(try #require(try await store.run(id: run.id)))
        let ended = try #require(try await store.run(id: run.id))
        #expect(ended.state == .failed)
        #expect(ended.tasks.map(\.state) == ["Success", "Failed"])
        #expect(ended.tasks.last?.code == "QueueFull" && ended.tasks.last?.jobID == nil)
        #expect(try await store.dueOutbox(.tdmq, now: time.now, limit: 10).map(\.event) == [.workflowFinish])
    }

    /// A job of another client in `run`'s queue, which a MaxSize of 1 then leaves no room beside.
    func fillQueue(of run: WorkflowRun) async throws {
        let other = Job(bucket: "b", queueID: run.queueID, tag: "Snapshot", jobLevel: 0, input: XMLTree("Input"), operation: XMLTree("Operation"), creationTime: time.now)
        guard case .created? = try await store.submit([Submission(idempotencyKey: nil, jobs: [other])]).first else {
            Issue.record("the other job fills the queue")
            return
        }
    }

    /// A template change is checked against the workflows that use it: refused, naming the
    /// workflow, when one could not run with it; not when the workflow could not run with the
    /// template as it is either (its queue is gone), which is not the change's doing.
    @Test func aTemplateChangeIsRefusedOnlyForWorkflowsItWouldBreak() async throws {
        /// Snapshots as the real worker checks them: more than one needs `${Number}` in the output.
        struct Snapshots: MediaWorker {
            var tag: String { "Snapshot" }
            func validate(_ operation: CreateMediaJobsRequest.Operation) throws(CIError) {
                let count = Int(operation.operation["Snapshot"]?.text("Count") ?? "1") ?? 1
                if count > 1, operation.operation.text("Output", "Object")?.contains("${Number}") != true {
                    throw CIError(.invalidArgument, "Operation.Output.Object: must contain ${Number} when Count is more than 1")
                }
            }
            func run(_ job: Job, context: WorkContext) async throws -> WorkResult { WorkResult() }
        }
        let queues = QueueDirectory(store: store) {
            MediaQueue(bucket: "", name: MediaQueue.defaultName, createTime: Timestamp(seconds: 1_700_000_000))
        }
        let runner = WorkflowRunner(
            store: store, queues: queues, templates: TemplateResolver(store: store, builtInIDs: []), workers: WorkerRegistry([Snapshots()]),
            formatting: CIFormatting(), time: time
        )
        let shot = Definition(
            id: "tshot", kind: .template, bucket: "b", name: "one", label: "Snapshot", body: XMLTree("Snapshot", children: [XMLTree("Count", text: "1")]),
            createTime: time.now, updateTime: time.now
        )
        try await store.createDefinition(shot)
        var users = try await workflow("wcover", operation: "<Operation><TemplateId>tshot</TemplateId><Output><Object>o/cover.jpg</Object></Output></Operation>")
        users.references = ["tshot"]
        try await store.updateDefinition(users)
        var five = shot
        five.body = XMLTree("Snapshot", children: [XMLTree("Count", text: "5")])

        await #expect(throws: CIError.self) { try await runner.checkWorkflows(using: five) }
        do {
            try await runner.checkWorkflows(using: five)
        } catch let refusal as CIError {
            #expect(refusal.message.contains("wcover"))
        }
        var broken = try await workflow("wgone", queueID: "pgone", operation: "<Operation><TemplateId>tshot</TemplateId></Operation>")
        broken.references = ["tshot"]
        try await store.updateDefinition(broken)
        try await store.deleteDefinition(.workflow, id: "wcover", bucket: "b")
        try await runner.checkWorkflows(using: five)
    }

    /// A workflow that cannot start (its queue was deleted) does not keep the bucket's other
    /// workflows from starting for an upload; the upload says why.
    @Test func aWorkflowThatCannotStartDoesNotKeepTheOthersFromStarting() async throws {
        let (runner, _) = try await runner(rule: .topic("events"))
        try await store.deleteDefinition(.workflow, id: "wflow", bucket: "b")
        try await workflow("wgone", queueID: "pgone")
        try await workflow("wfine")
        let outcome = try await runner.upload(bucket: "b", key: "in/a.mp4") {}
        #expect((outcome.deferred as? CIError)?.code == .noSuchQueue)
        #expect(try await store.runs(RunQuery(bucket: "b")).map(\.workflowID) == ["wfine"])
    }

    /// Of a refusal (a queue gone) and an error that may pass (a template unread), the latter is
    /// the one reported: the arrival then stays for its replay, which a refusal would remove.
    @Test func anErrorThatMayPassOutranksARefusalSoTheArrivalStays() async throws {
        let templates = TemplateResolver(store: UnreadableDefinitions(), builtInIDs: [])
        let (runner, _) = try await runner(rule: .topic("events"), templates: templates)
        try await store.deleteDefinition(.workflow, id: "wflow", bucket: "b")
        try await workflow("wgone", queueID: "pgone")
        try await workflow("wtemplated", operation: "<Operation><TemplateId>tmine</TemplateId></Operation>")
        let outcome = try await runner.upload(bucket: "b", key: "in/a.mp4") {}
        #expect((outcome.deferred as? CIError)?.code == .internalError)
        #expect(try await store.arrivals(before: time.now + .seconds(1), limit: 10).count == 1)
    }

    /// A template the store could not read now is no reason to fail the node: the upload's runs
    /// are deferred, and its arrival stays for the replay.
    @Test func aTemplateTheStoreCouldNotReadDefersTheRunsInsteadOfFailingThem() async throws {
        let templates = TemplateResolver(store: UnreadableDefinitions(), builtInIDs: [])
        let (runner, _) = try await runner(rule: .topic("events"), templates: templates)
        try await store.deleteDefinition(.workflow, id: "wflow", bucket: "b")
        try await workflow("wtemplated", operation: "<Operation><TemplateId>tmine</TemplateId></Operation>")
        let outcome = try await runner.upload(bucket: "b", key: "in/a.mp4") {}
        #expect((outcome.deferred as? CIError)?.code == .internalError)
        #expect(try await store.runs(RunQuery(bucket: "b")).isEmpty, "no run failed for it")
        #expect(try await store.arrivals(before: time.now + .seconds(1), limit: 10).count == 1)
    }

    /// A template the store cannot read is waited for, counted from when its node became ready
    /// (not from the run's start: the node before it ran long), and once that has lasted the
    /// runner's patience the node fails with the reason and the run ends, announced.
    @Test func aNodeWhoseTemplateCannotBeReadFailsOnceItWaitedThePatience() async throws {
        let rule = NotifyConfig(isOn: true, events: [.workflowFinish], resultFormat: .xml, type: .tdmq, mqMode: .queue, mqName: "runs", mqRegion: "sh")
        let (runner, _) = try await runner(rule: rule, templates: TemplateResolver(store: UnreadableDefinitions(), builtInIDs: []))
        try await store.deleteDefinition(.workflow, id: "wflow", bucket: "b")
        let topology = try XMLDocumentParser.parse("""
            <Topology><Dependencies><Start>Snapshot_1</Start><Snapshot_1>MediaInfo_1</Snapshot_1><MediaInfo_1>End</MediaInfo_1></Dependencies>
            <Nodes><Start><Type>Start</Type><Input><ObjectPrefix>in/</ObjectPrefix></Input></Start>
            <Snapshot_1><Type>Snapshot</Type><Operation/></Snapshot_1>
            <MediaInfo_1><Type>MediaInfo</Type><Operation><TemplateId>tmine</TemplateId></Operation></MediaInfo_1></Nodes></Topology>
            """)
        try await store.createDefinition(Definition(
            id: "wtwo", kind: .workflow, bucket: "b", name: "two", label: WorkflowState.active, body: topology, createTime: time.now, updateTime: time.now
        ))
        let run = try #require(try await runner.upload(bucket: "b", key: "in/a.mp4") {}.runs.first)
        time.advance(by: runner.nodePatience * 2)
        _ = try await finishWaitingJobs(.success)

        await #expect(throws: CIError.self) { try await runner.advance(try #require(try await store.run(id: run.id))) }
        time.advance(by: runner.nodePatience - .seconds(1))
        await #expect(throws: CIError.self) { try await runner.advance(try #require(try await store.run(id: run.id))) }
        #expect(try await store.run(id: run.id)?.state == .running, "still waited for")
        #expect(try await store.dueOutbox(.tdmq, now: time.now, limit: 10).isEmpty)

        time.advance(by: .seconds(1))
        try await runner.advance(try #require(try await store.run(id: run.id)))
        let ended = try #require(try await store.run(id: run.id))
        #expect(ended.state == .failed)
        #expect(ended.task("MediaInfo_1")?.code == "InternalError")
        #expect(ended.task("MediaInfo_1")?.message.contains("tmine") == true)
        #expect(try await store.dueOutbox(.tdmq, now: time.now, limit: 10).map(\.event) == [.workflowFinish])
    }

    /// An upload's runs that could not start for a template the store cannot read start from
    /// its arrival once the upload is older than the patience, with that node failed: a failed
    /// run announced, not an upload that never starts anything.
    @Test func anArrivalWhoseTemplateCannotBeReadStartsAFailedRunAfterThePatience() async throws {
        let rule = NotifyConfig(isOn: true, events: [.workflowFinish], resultFormat: .xml, type: .tdmq, mqMode: .queue, mqName: "runs", mqRegion: "sh")
        let (runner, _) = try await runner(rule: rule, templates: TemplateResolver(store: UnreadableDefinitions(), builtInIDs: []))
        try await store.deleteDefinition(.workflow, id: "wflow", bucket: "b")
        try await workflow("wtemplated", operation: "<Operation><TemplateId>tmine</TemplateId></Operation>")
        let uploaded = time.now
        #expect(try await runner.upload(bucket: "b", key: "in/a.mp4") {}.deferred != nil)
        let storage = ObjectsStub(key: "in/a.mp4", written: uploaded)

        time.advance(by: runner.nodePatience - .seconds(1))
        #expect(try await runner.replayArrivals(olderThan: .seconds(300), storage: storage).count == 1)
        #expect(try await store.runs(RunQuery(bucket: "b")).isEmpty, "still waited for")

        time.advance(by: .seconds(1))
        #expect(try await runner.replayArrivals(olderThan: .seconds(300), storage: storage).isEmpty)
        let run = try #require(try await store.runs(RunQuery(bucket: "b")).first)
        #expect(run.state == .failed)
        #expect(run.task("Snapshot_1")?.code == "InternalError")
        #expect(try await store.dueOutbox(.tdmq, now: time.now, limit: 10).map(\.event) == [.workflowFinish])
        #expect(try await store.arrivals(before: time.now, limit: 10).isEmpty)
    }

    /// Arrivals whose replay keeps failing (their objects cannot be read now) stay, and do not
    /// keep the later ones from being replayed, however many there are.
    @Test func arrivalsThatKeepFailingDoNotHideLaterOnesFromTheReplay() async throws {
        let (runner, _) = try await runner(rule: .topic("events"))
        let stuck = WorkflowRunner.arrivalPage + 1
        for index in 0..<stuck { try await store.recordArrival(Arrival(bucket: "b", key: "broken/\(index).mp4", time: time.now)) }
        time.advance(by: .seconds(1))
        try await store.recordArrival(Arrival(bucket: "b", key: "in/a.mp4", time: time.now))
        time.advance(by: .seconds(600))

        let storage = ObjectsStub(key: "in/a.mp4", written: time.now - .seconds(599), unreadablePrefix: "broken/")
        let failures = try await runner.replayArrivals(olderThan: .seconds(300), storage: storage)
        #expect(failures.count == stuck)
        #expect(try await store.runs(RunQuery(bucket: "b")).map(\.object) == ["in/a.mp4"])
        #expect(try await store.arrivals(before: time.now, limit: 1_000).count == stuck, "the failing ones stay for the next replay")
    }

    /// An arrival left behind by a process that died after publishing starts its runs when
    /// replayed, with the headers the object was uploaded with.
    @Test func aReplayedArrivalStartsItsRunWithTheUploadsHeaders() async throws {
        let (runner, _) = try await runner(rule: .topic("events"))
        let headers = [CosHeader(key: "x-cos-meta-camera", value: "A7")]
        try await store.recordArrival(Arrival(bucket: "b", key: "in/a.mp4", time: time.now, cosHeaders: headers))
        time.advance(by: .seconds(600))
        let failures = try await runner.replayArrivals(olderThan: .seconds(300), storage: ObjectsStub(key: "in/a.mp4", written: time.now - .seconds(599)))
        #expect(failures.isEmpty)
        let run = try #require(try await store.runs(RunQuery(bucket: "b")).first)
        #expect(run.cosHeaders == headers)
        let job = try #require(try await store.jobs(JobQuery(bucket: "b")).first)
        #expect(CosHeader.all(in: job.input) == headers + [CosHeader.objectCreatedEvent])
        #expect(try await store.arrivals(before: time.now, limit: 10).isEmpty, "the arrival is gone once its run exists")
    }
}

/// Definitions the store cannot read now (a connection lost, say).
struct UnreadableDefinitions: DefinitionStore {
    struct Unreachable: Error {}
    func createDefinition(_ definition: Definition) async throws { throw Unreachable() }
    func updateDefinition(_ definition: Definition) async throws { throw Unreachable() }
    func definitions(_ kind: Definition.Kind, bucket: String) async throws -> [Definition] { throw Unreachable() }
    func definition(_ kind: Definition.Kind, id: String) async throws -> Definition? { throw Unreachable() }
    func deleteDefinition(_ kind: Definition.Kind, id: String, bucket: String) async throws { throw Unreachable() }
}
