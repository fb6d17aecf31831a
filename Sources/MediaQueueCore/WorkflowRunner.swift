import Foundation
public import MediaQueueXML

/// Starts and advances workflow runs: the one place where a workflow's nodes become jobs.
///
/// A run starts in one transaction with the jobs of its first nodes. It moves on when its jobs
/// end: `advance` reads the jobs, starts the nodes whose dependencies all succeeded and, when the
/// run ends, queues its `WorkflowFinish` callbacks, all in one update that only applies to the
/// version it read, so that of several nodes advancing one run, each node starts once.
public struct WorkflowRunner: Sendable {
    let store: any JobStore
    let queues: QueueDirectory
    private(set) var templates: TemplateResolver?
    let workers: WorkerRegistry
    let formatting: CIFormatting
    let time: any TimeSource
    /// Called after jobs were stored, to wake the dispatcher.
    let onJobsStored: @Sendable () -> Void
    /// Called after a run's end was queued in the outbox, to wake the relays.
    let onOutboxQueued: @Sendable () -> Void
    /// Called with a run just started, and why it could not be advanced at once (the workflow
    /// service's scan does it later), for the log.
    let onAdvanceDeferred: @Sendable (WorkflowRun, any Error) -> Void
    /// How long a node that is ready waits for what it needs to start (a template the store
    /// cannot read, room in its queue) before it fails with the reason: a store away or a queue
    /// full for a while is waited for, but a template row that can never be read, or more nodes
    /// than the queue's MaxSize, must not keep a run Running, or an upload's runs from starting,
    /// for ever.
    public let nodePatience: Duration

    public init(
        store: any JobStore, queues: QueueDirectory, templates: TemplateResolver?, workers: WorkerRegistry, formatting: CIFormatting,
        time: any TimeSource, nodePatience: Duration = .seconds(3600), onJobsStored: @escaping @Sendable () -> Void = {},
        onOutboxQueued: @escaping @Sendable () -> Void = {}, onAdvanceDeferred: @escaping @Sendable (WorkflowRun, any Error) -> Void = { _, _ in }
    ) {
        self.nodePatience = nodePatience
        self.onOutboxQueued = onOutboxQueued
        self.onAdvanceDeferred = onAdvanceDeferred
        self.store = store
        self.queues = queues
        self.templates = templates
        self.workers = workers
        self.formatting = formatting
        self.time = time
        self.onJobsStored = onJobsStored
    }

    // MARK: Starting

    /// `POST /triggerworkflow` and `mediaqueue workflows trigger`: a run of `workflow` on
    /// `object`, which must be an object of the workflow's bucket in `storage`.
    public func trigger(_ workflow: Definition, object: String, storage: any ObjectStorage) async throws -> WorkflowRun {
        let key: ObjectKey
        do {
            key = try ObjectKey(object)
        } catch {
            throw CIError(.invalidArgument, "object: \(error)", element: "object")
        }
        let found: ObjectInfo?
        do {
            found = try await storage.objectInfo(bucket: workflow.bucket, key: key)
        } catch {
            throw CIError(.internalError, error.message)
        }
        guard found != nil else {
            throw CIError(.noSuchKey, "the object \(object) does not exist in bucket \(workflow.bucket)", element: "object")
        }
        return try await start(workflow, object: key.rawValue)
    }

    /// Starts a run of `workflow` on object `object` (a key of the workflow's bucket), whatever
    /// the workflow's state and filter; `origin` names the arrival that started it (see
    /// `WorkflowRun.origin`).
    public func start(_ workflow: Definition, object: String, origin: String? = nil, cosHeaders: [CosHeader] = []) async throws -> WorkflowRun {
        try await start(workflow, object: object, origin: origin, cosHeaders: cosHeaders, uploadedAt: nil)
    }

    /// `start`, for an upload made at `uploadedAt` when it is not now (a replayed arrival): its
    /// first nodes have waited since then.
    private func start(_ workflow: Definition, object: String, origin: String?, cosHeaders: [CosHeader], uploadedAt: Timestamp?) async throws -> WorkflowRun {
        let topology = try WorkflowTopology.parse(workflow.body)
        let queue = try await queues.resolve(bucket: workflow.bucket, queueID: topology.start.queueID)
        let now = time.now
        var run = WorkflowRun(
            bucket: workflow.bucket, workflowID: workflow.id, workflowName: workflow.name, object: object, queueID: queue.id,
            topology: topology, now: now
        )
        run.origin = origin
        run.cosHeaders = cosHeaders
        let (ready, jobs) = try await jobs(
            for: run.advanced(jobs: [:], topology: topology, now: now).ready, of: &run, after: [:], topology: topology, firstReady: uploadedAt ?? now,
            now: now
        )
        let waiting = run
        run = run.started(jobs)
        let stored: WorkflowRun
        do {
            stored = try await store.createRun(run, jobs: ready)
        } catch let refusal as CIError where !ready.isEmpty && refusal.code == .queueFull {
            // The first nodes wait for room as later ones do, up to `nodePatience`: the run is
            // stored without their jobs, and the scan of running runs starts them.
            return await advanceStarted(try await store.createRun(waiting, jobs: []))
        } catch let refusal as CIError where !ready.isEmpty && refusal.code != .internalError {
            let failed = try await store.createRun(Self.failing(waiting, nodes: Set(jobs.keys), refusal: refusal, now: now), jobs: [])
            return await advanceStarted(failed)
        }
        if !ready.isEmpty { onJobsStored() }
        if ready.count < topology.firstNodes.count { return await advanceStarted(stored) }
        return stored
    }

    /// Moves on a run that just started without all its first nodes, and returns it as stored
    /// then. The run exists whatever happens here: an error (the store away) leaves it to the
    /// workflow service's scan of running runs, and is not its starter's, whose client would
    /// otherwise start it again.
    private func advanceStarted(_ run: WorkflowRun) async -> WorkflowRun {
        do {
            try await advance(run)
        } catch {
            onAdvanceDeferred(run, error)
            return run
        }
        return ((try? await store.run(id: run.id)) ?? nil) ?? run
    }

    // MARK: Uploads

    /// Publishes an upload of `key` with `publish` and starts a run of each Active workflow of
    /// `bucket` whose Start node admits it, exactly once even across a crash: the arrival is
    /// recorded before the object is published and removed once its runs exist, and one a crash
    /// left behind is replayed (`replayArrivals`).
    ///
    /// Once the object is published the upload has succeeded: runs that cannot start now (the
    /// store is away) are `deferred`, and their arrival stays for `replayArrivals`, so that a
    /// client never uploads again for them (which would start the others twice).
    public func upload(bucket: String, key: String, cosHeaders: [CosHeader] = [], publish: () async throws -> Void) async throws -> UploadOutcome {
        let workflows = try await workflows(bucket: bucket, admitting: key)
        guard !workflows.isEmpty else {
            try await publish()
            return UploadOutcome(runs: [])
        }
        let arrival = Arrival(bucket: bucket, key: key, time: time.now, cosHeaders: cosHeaders)
        try await store.recordArrival(arrival)
        do {
            try await publish()
        } catch {
            try? await store.removeArrival(id: arrival.id)
            throw error
        }
        FaultPoint.reached(.uploadPublished)
        do {
            let runs = try await start(workflows, for: arrival)
            try await store.removeArrival(id: arrival.id)
            return UploadOutcome(runs: runs)
        } catch {
            return UploadOutcome(runs: [], deferred: error)
        }
    }

    /// What an upload started.
    public struct UploadOutcome: Sendable {
        public var runs: [WorkflowRun]
        /// Why its runs could not start now; they start from the arrival later.
        public var deferred: (any Error)?

        public init(runs: [WorkflowRun], deferred: (any Error)? = nil) {
            self.runs = runs
            self.deferred = deferred
        }
    }

    /// Starts the runs of arrivals recorded more than `grace` ago that are still there: their
    /// process died between publishing the object and starting its runs (or while publishing).
    /// An arrival whose object was not written after it was recorded never completed, and goes;
    /// so does one whose runs are refused (a queue gone). Returns the arrivals that failed, each
    /// with its error; those refused are gone, the others are tried again next time.
    public func replayArrivals(olderThan grace: Duration, storage: any ObjectStorage) async throws -> [(Arrival, any Error)] {
        var failures: [(Arrival, any Error)] = []
        let cutoff = time.now - grace
        // Page by page: arrivals that keep failing stay, and must not hide the later ones. A
        // cancelled caller (a stopping service) stops between arrivals; the rest wait for next time.
        var page = try await store.arrivals(before: cutoff, limit: Self.arrivalPage)
        while let last = page.last {
            failures += await replay(page, storage: storage)
            guard page.count == Self.arrivalPage, !Task.isCancelled else { break }
            page = try await store.arrivals(before: cutoff, after: last, limit: Self.arrivalPage)
        }
        return failures
    }

    /// Arrivals read per store call by `replayArrivals`.
    public static let arrivalPage = 100

    /// Starts the runs of `arrivals` and removes those done, until its task is cancelled; returns
    /// the failures.
    private func replay(_ arrivals: [Arrival], storage: any ObjectStorage) async -> [(Arrival, any Error)] {
        var failures: [(Arrival, any Error)] = []
        for arrival in arrivals where !Task.isCancelled {
            do {
                var info: ObjectInfo?
                if let key = try? ObjectKey(arrival.key) { info = try await storage.objectInfo(bucket: arrival.bucket, key: key) }
                // Object times have whole-second precision on some storages, and S3's clock is its own.
                if let info, info.lastModified >= arrival.time - .seconds(2) {
                    _ = try await start(try await workflows(bucket: arrival.bucket, admitting: arrival.key), for: arrival)
                }
                try await store.removeArrival(id: arrival.id)
            } catch let refusal as CIError where refusal.code != .internalError {
                try? await store.removeArrival(id: arrival.id)
                failures.append((arrival, refusal))
            } catch {
                failures.append((arrival, error))
            }
        }
        return failures
    }

    private func workflows(bucket: String, admitting key: String) async throws -> [Definition] {
        try await store.definitions(.workflow, bucket: bucket).filter { workflow in
            guard workflow.label == WorkflowState.active, let topology = try? WorkflowTopology.parse(workflow.body) else { return false }
            return topology.start.admits(key)
        }
    }

    /// Starts a run of each of `workflows` for `arrival`. One that cannot start (its queue was
    /// deleted, or the store is away) does not keep the others from starting. Once all were
    /// tried, an error that may pass is thrown first, so that the arrival stays for its replay
    /// (which starts none twice: a run's origin is unique); else the first refusal.
    private func start(_ workflows: [Definition], for arrival: Arrival) async throws -> [WorkflowRun] {
        var runs: [WorkflowRun] = []
        var (passing, refusal): ((any Error)?, CIError?) = (nil, nil)
        for workflow in workflows {
            do {
                runs.append(try await start(
                    workflow, object: arrival.key, origin: "\(arrival.id)/\(workflow.id)", cosHeaders: arrival.cosHeaders, uploadedAt: arrival.time
                ))
            } catch let error as CIError where error.code != .internalError {
                refusal = refusal ?? error
            } catch {
                passing = passing ?? error
            }
        }
        if let error = passing ?? refusal { throw error }
        return runs
    }

    /// Checks a workflow of `bucket` before it is saved: its graph, its queue, and each node's
    /// operation as its job would run (templates resolved, the job type's checks). Returns the
    /// bucket's own templates it uses. Errors name the node.
    public func check(_ topology: XMLTree, bucket: String) async throws(CIError) -> (WorkflowTopology, templates: [String]) {
        let parsed = try WorkflowTopology.parse(topology)
        let queue: MediaQueue
        do {
            queue = try await queues.resolve(bucket: bucket, queueID: parsed.start.queueID)
        } catch {
            throw CIError(error.code, "Topology.Nodes.Start.Input.QueueId: \(error.message)", element: "Topology.Nodes.Start.Input.QueueId")
        }
        let sample = WorkflowRun(bucket: bucket, workflowID: "w", workflowName: "check", object: "check/input.mp4", queueID: queue.id, topology: parsed, now: time.now)
        var used: [String] = []
        for node in parsed.nodes {
            do {
                _ = try await job(for: node, run: sample, input: sample.object, start: parsed.start, now: time.now)
            } catch {
                let path = "Topology.Nodes.\(node.name)."
                func rename(_ text: String) -> String { text.replacingOccurrences(of: "Operation.", with: path + "Operation.") }
                let message = error.message.hasPrefix("Operation") || error.message.hasPrefix("Input") ? rename(error.message) : path + error.message
                throw CIError(error.code, message, element: error.element.map(rename))
            }
            if let id = node.operation.text("TemplateId")?.trimmed, !id.isEmpty, !(templates?.builtInIDs.contains(id) ?? true) {
                used.append(id)
            }
        }
        return (parsed, Array(Set(used)).sorted())
    }

    /// Checks that the bucket's workflows that use `template` could still run with it as it is
    /// to be saved (its parameters go into their nodes' jobs, which their job types check): a
    /// change they could not run is refused, naming the first workflow and node, rather than
    /// failing those nodes in every later run.
    public func checkWorkflows(using template: Definition) async throws {
        var checker = self
        checker.templates = templates?.replacing(template)
        for workflow in try await store.definitions(.workflow, bucket: template.bucket) where workflow.references.contains(template.id) {
            do {
                _ = try await checker.check(workflow.body, bucket: template.bucket)
            } catch {
                // One that could not run with the template as it is either (its queue deleted,
                // another node refused) is not this change's doing.
                guard (try? await check(workflow.body, bucket: template.bucket)) != nil else { continue }
                throw CIError(
                    error.code, "workflow \(workflow.id) (\(workflow.name)) uses this template and could not run with it: \(error.message)",
                    element: error.element
                )
            }
        }
    }

    // MARK: Cancelling

    /// Cancels a job as `JobStore.cancel` does, for the API, the console and the CLI. A node job
    /// that was waiting ends here, outside the dispatcher, which moves on the runs of the jobs it
    /// ends; so its run is moved on here, at once, and not at the workflow service's next look.
    public func cancel(_ id: JobID, now: Timestamp) async throws -> CancelResult {
        let outcome = try await store.cancel(id, now: now)
        guard case .cancelled(let job) = outcome, let runID = job.workflowRunID else { return CancelResult(outcome: outcome) }
        do {
            if let run = try await store.run(id: runID) { try await advance(run) }
            return CancelResult(outcome: outcome)
        } catch {
            return CancelResult(outcome: outcome, runDeferred: error)
        }
    }

    /// What `cancel` did.
    public struct CancelResult: Sendable {
        public var outcome: CancelOutcome
        /// Why the cancelled job's run could not be moved on now; the workflow service does it at
        /// its next look at the running runs.
        public var runDeferred: (any Error)?

        public init(outcome: CancelOutcome, runDeferred: (any Error)? = nil) {
            self.outcome = outcome
            self.runDeferred = runDeferred
        }
    }

    // MARK: Advancing

    /// Moves `run` on from its jobs' states: starts what is ready and announces its end. Reads
    /// the run again and retries when another node changed it meanwhile.
    public func advance(_ run: WorkflowRun) async throws {
        var current = run
        while current.state == .running {
            let topology = try WorkflowTopology.parse(current.topology)
            let ids = current.tasks.compactMap(\.jobID)
            let jobs = Dictionary(try await store.jobs(ids: ids).map { ($0.id, $0) }) { first, _ in first }
            let now = time.now
            var (next, ready) = current.advanced(jobs: jobs, topology: topology, now: now)
            var (newJobs, started) = try await self.jobs(
                for: ready, of: &next, after: jobs, topology: topology, firstReady: current.createTime, now: now
            )
            let waiting = next
            next = next.started(started)
            if newJobs.count < ready.count {
                // A node that could not start failed; see whether the run ended with it.
                next = next.advanced(jobs: jobs, topology: topology, now: now).run
            }
            // Unchanged, it is not written again: the workflow service looks at every running
            // run on each scan.
            guard next != current else { return }
            next.updateTime = now
            var written: Bool
            do {
                written = try await write(next, jobs: newJobs, topology: topology, now: now)
            } catch let refusal as CIError where !newJobs.isEmpty
                && refusalIsFinal(refusal, waitingSince: Self.readySince(started.keys, run: waiting, topology: topology, firstReady: current.createTime), now: now)
            {
                // The nodes fail with the reason, as a start's first nodes do, and the run ends
                // with them rather than stay Running for ever.
                next = Self.failing(waiting, nodes: Set(started.keys), refusal: refusal, now: now).advanced(jobs: jobs, topology: topology, now: now).run
                next.updateTime = now
                newJobs = []
                written = try await write(next, jobs: [], topology: topology, now: now)
            }
            if written {
                if !newJobs.isEmpty { onJobsStored() }
                return
            }
            guard let reread = try await store.run(id: run.id) else { return }
            current = reread
        }
    }

    /// Writes `run` with `jobs` and, if it ended, its end's callbacks; false if another node
    /// changed it meanwhile.
    private func write(_ run: WorkflowRun, jobs: [Job], topology: WorkflowTopology, now: Timestamp) async throws -> Bool {
        let outbox = run.state == .running ? [] : try await finishCallbacks(run, topology: topology, now: now)
        guard try await store.updateRun(run, jobs: jobs, outbox: outbox) else { return false }
        if !outbox.isEmpty { onOutboxQueued() }
        return true
    }

    /// `run` with the tasks of `nodes` failed for `refusal`: the store refused their jobs.
    static func failing(_ run: WorkflowRun, nodes: Set<String>, refusal: CIError, now: Timestamp) -> WorkflowRun {
        var failed = run
        for index in failed.tasks.indices where nodes.contains(failed.tasks[index].name) {
            failed.tasks[index].state = JobState.failed.rawValue
            failed.tasks[index].code = refusal.code.rawValue
            failed.tasks[index].message = refusal.message
            failed.tasks[index].endTime = now
        }
        return failed
    }

    /// The jobs of nodes `names`, and the same by node name; `ended` holds the run's jobs so far.
    /// A node whose job cannot be made (its template was deleted or changed into something its
    /// job type refuses) fails in `run`. An error that may pass (a template the store could not
    /// read now) is thrown instead, and the run goes on at the next look, until the node has
    /// been ready for `nodePatience` (`readySince`).
    private func jobs(
        for names: [String], of run: inout WorkflowRun, after ended: [JobID: Job], topology: WorkflowTopology, firstReady: Timestamp,
        now: Timestamp
    ) async throws(CIError) -> ([Job], [String: Job]) {
        var jobs: [Job] = []
        var byNode: [String: Job] = [:]
        for name in names {
            guard let node = topology.node(name) else { continue }
            do {
                let input = Self.input(of: name, run: run, jobs: ended, topology: topology)
                let job = try await job(for: node, run: run, input: input, start: topology.start, now: now)
                jobs.append(job)
                byNode[name] = job
            } catch {
                // A cancelled read (the service stopping) says nothing of the template.
                let readySince = Self.readySince([name], run: run, topology: topology, firstReady: firstReady)
                if error.code == .internalError, Task.isCancelled || !hasWaited(since: readySince, now: now) { throw error }
                guard let index = run.tasks.firstIndex(where: { $0.name == name }) else { continue }
                run.tasks[index].state = JobState.failed.rawValue
                run.tasks[index].code = error.code.rawValue
                run.tasks[index].message = error.message
                run.tasks[index].endTime = now
            }
        }
        return (jobs, byNode)
    }

    /// Whether nodes ready since `since` have waited the whole `nodePatience`.
    private func hasWaited(since: Timestamp, now: Timestamp) -> Bool {
        now >= since + nodePatience
    }

    /// Whether nodes the store refused their jobs for `refusal` fail now: their queue was deleted
    /// since the run started, or has been full for the whole patience. Otherwise another look
    /// may find room for them.
    private func refusalIsFinal(_ refusal: CIError, waitingSince: Timestamp, now: Timestamp) -> Bool {
        refusal.code == .noSuchQueue || (refusal.code != .internalError && hasWaited(since: waitingSince, now: now))
    }

    /// Since when the first of `names` has been ready to start: the end of its dependencies'
    /// jobs, or `firstReady` for a first node.
    static func readySince(_ names: some Sequence<String>, run: WorkflowRun, topology: WorkflowTopology, firstReady: Timestamp) -> Timestamp {
        names.map { name in (topology.dependencies[name] ?? []).compactMap { run.task($0)?.endTime }.max() ?? firstReady }.min() ?? firstReady
    }

    /// What node `name` works on: the output of the Transcode or Concat node before it (as CI's
    /// workflows remux or capture a transcode's result), else the run's object.
    static func input(of name: String, run: WorkflowRun, jobs: [JobID: Job], topology: WorkflowTopology) -> String {
        for previous in topology.dependencies[name] ?? [] {
            guard let task = run.task(previous), ["Transcode", "Concat"].contains(task.type), let id = task.jobID,
                  let output = jobs[id]?.mediaResult?.text("OutputFile", "ObjectName"), !output.isEmpty
            else { continue }
            return output
        }
        return run.object
    }

    /// The job of `node` in `run` on object `input`: the node's operation with `${RunId}` filled
    /// in, its template resolved, and the run's `Workflow` block; announced as the Start node's
    /// NotifyConfig says.
    func job(
        for node: WorkflowTopology.Node, run: WorkflowRun, input: String, start: WorkflowTopology.Start, now: Timestamp
    ) async throws(CIError) -> Job {
        var operation = node.operation
        if var output = operation["Output"] {
            for name in ["Object", "SpriteObject"] {
                if let object = output.text(name) { output.set(XMLTree(name, text: object.replacingOccurrences(of: "${RunId}", with: run.id))) }
            }
            operation.set(output)
        }
        let level = try CreateMediaJobsRequest.jobLevel(operation, path: "Topology.Nodes.\(node.name).Operation")
        operation.set(XMLTree("JobLevel", text: String(level)))
        operation.set(run.workflowBlock(node: node.name))
        var request = CreateMediaJobsRequest.Operation(
            tag: node.type, input: XMLTree("Input", children: [XMLTree("Object", text: input)] + run.jobCosHeaders.map(\.xml)), operation: operation,
            jobLevel: level
        )
        try await templates?.resolve(&request, bucket: run.bucket)
        try workers.validate(request)
        return Job(
            bucket: run.bucket, queueID: run.queueID, tag: node.type, jobLevel: level, input: request.input, operation: request.operation,
            callback: Self.taskCallback(start.notifyConfig), creationTime: now
        )
    }

    /// A Start node's NotifyConfig that announces `TaskFinish` is its tasks' callback; without
    /// it, they follow the queue's rule.
    static func taskCallback(_ config: NotifyConfig?) -> CallbackOverride {
        guard let config, config.isOn, config.events.contains(.taskFinish) else { return CallbackOverride() }
        switch config.type {
        case .url?: return CallbackOverride(url: config.url, format: config.resultFormat, type: .url, events: [.taskFinish])
        case .tdmq?:
            return CallbackOverride(
                format: config.resultFormat, type: .tdmq,
                mq: CallbackOverride.MqTarget(mode: config.mqMode ?? .queue, name: config.mqName, region: config.mqRegion), events: [.taskFinish]
            )
        case nil: return CallbackOverride()
        }
    }

    /// `WorkflowFinish` to the Start node's NotifyConfig when it has one, else to the queue's
    /// rule when its events include `WorkflowFinish`.
    private func finishCallbacks(_ run: WorkflowRun, topology: WorkflowTopology, now: Timestamp) async throws -> [OutboxEntry] {
        let rule: NotifyConfig
        if let config = topology.start.notifyConfig, config.isOn {
            rule = config
        } else {
            guard let queue = try await store.queue(id: run.queueID) else { return [] }
            rule = queue.notifyConfig
        }
        guard let target = CallbackTarget.resolve(rule: rule, override: CallbackOverride(), event: .workflowFinish) else { return [] }
        let body = CallbackBody.workflowFinish(run, format: target.format, formatting: formatting)
        return [OutboxEntry(
            jobID: JobID(rawValue: run.id), bucket: run.bucket, target: target.destination,
            routingKey: "workflow.\(run.queueID.rawValue).\(run.workflowID).\(run.state.rawValue)",
            body: body.bytes, contentType: body.contentType, nextAttempt: now, createdAt: now
        )]
    }
}

/// A workflow's `State`.
public enum WorkflowState {
    public static let active = "Active"
    public static let paused = "Paused"
}

extension JobStore {
    /// Cancels job `id`: through `workflows` when there is one (`WorkflowRunner.cancel`, which
    /// also moves a cancelled node job's run on), else in the store alone.
    public func cancel(_ id: JobID, now: Timestamp, workflows: WorkflowRunner?) async throws -> WorkflowRunner.CancelResult {
        if let workflows { return try await workflows.cancel(id, now: now) }
        return WorkflowRunner.CancelResult(outcome: try await cancel(id, now: now))
    }
}
