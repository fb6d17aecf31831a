public import MediaQueueXML

/// One run of a workflow on one object (CI's workflow instance, `WorkflowExecution`): its tasks
/// (a job per work node), and where it stands.
public struct WorkflowRun: Sendable, Hashable {
    public enum State: String, Sendable, Hashable, CaseIterable {
        case running = "Running", success = "Success", failed = "Failed", cancel = "Cancel"
    }

    /// One work node of the run: waiting for the nodes before it, then its job.
    public struct Task: Sendable, Hashable {
        public var name: String
        public var type: String
        public var jobID: JobID?
        /// `Waiting` until the node's job exists, then the job's state.
        public var state: String
        public var createTime: Timestamp?
        public var startTime: Timestamp?
        public var endTime: Timestamp?
        public var code: String = ""
        public var message: String = ""
        public var templateID: String?
        public var templateName: String?

        public static let waiting = "Waiting"

        public init(name: String, type: String) {
            self.name = name
            self.type = type
            self.state = Self.waiting
        }
    }

    public var id: String
    public var bucket: String
    public var workflowID: String
    public var workflowName: String
    /// The key of the object the run works on.
    public var object: String
    public var queueID: QueueID
    public var state: State
    public var createTime: Timestamp
    /// When the run last changed; its end time once it ended.
    public var updateTime: Timestamp
    /// The workflow's topology when the run started: later changes to it do not reach the run.
    public var topology: XMLTree
    public var tasks: [Task]
    /// What started it, unique among runs: `<arrival id>/<workflow id>` for an upload, so that
    /// replaying an arrival after a crash starts no run twice; nil for a trigger.
    public var origin: String?
    /// The headers its object was uploaded with (none for a trigger).
    public var cosHeaders: [CosHeader] = []
    /// Counts the run's stored changes; an update names the one it read (see `RunStore`).
    public var version: Int = 0
    /// Its place in the order runs were created (assigned by the store), for paging.
    public var sequence: Int64 = 0

    /// What its node jobs' `Input` carries: the upload's headers and, as CI's do, the COS event
    /// that started the run (only uploads start runs by an event; a trigger has none).
    public var jobCosHeaders: [CosHeader] {
        origin == nil ? cosHeaders : cosHeaders + [CosHeader.objectCreatedEvent]
    }

    /// `i` and 32 hex digits, as CI's RunIds look.
    public static func newID() -> String { "i" + timeOrderedHex32() }

    public init(
        id: String = newID(), bucket: String, workflowID: String, workflowName: String, object: String, queueID: QueueID,
        topology: WorkflowTopology, now: Timestamp
    ) {
        self.id = id
        self.bucket = bucket
        self.workflowID = workflowID
        self.workflowName = workflowName
        self.object = object
        self.queueID = queueID
        self.state = .running
        self.createTime = now
        self.updateTime = now
        self.topology = topology.xml
        self.tasks = topology.nodes.map { Task(name: $0.name, type: $0.type) }
    }

    public func task(_ name: String) -> Task? { tasks.first { $0.name == name } }

    /// The run after its jobs moved on (`jobs` holds the tasks' jobs as they are now): task
    /// states and times follow the jobs; the nodes whose dependencies all succeeded are the
    /// ones to start next (the caller gives them jobs with `started(_:jobs:at:)`). A failed or
    /// cancelled task makes the run end `Failed` (`Cancel`) once no other task is unfinished, and
    /// no new node starts; a run whose tasks all succeeded ends `Success`.
    public func advanced(jobs: [JobID: Job], topology: WorkflowTopology, now: Timestamp) -> (run: WorkflowRun, ready: [String]) {
        var run = self
        for index in run.tasks.indices {
            guard let id = run.tasks[index].jobID, let job = jobs[id] else { continue }
            run.tasks[index].state = job.state.rawValue
            run.tasks[index].startTime = job.startTime
            run.tasks[index].endTime = job.endTime
            run.tasks[index].code = job.code
            run.tasks[index].message = job.message
        }
        guard run.state == .running else { return (run, []) }
        let states = Dictionary(uniqueKeysWithValues: run.tasks.map { ($0.name, $0.state) })
        let unfinished = run.tasks.contains { [JobState.submitted, .running, .pause].map(\.rawValue).contains($0.state) }
        let broken = run.tasks.first { $0.state == JobState.failed.rawValue || $0.state == JobState.cancel.rawValue }
        if let broken {
            if !unfinished {
                run.state = broken.state == JobState.cancel.rawValue && !run.tasks.contains { $0.state == JobState.failed.rawValue } ? .cancel : .failed
                run.updateTime = now
            }
            return (run, [])
        }
        if run.tasks.allSatisfy({ $0.state == JobState.success.rawValue }) {
            run.state = .success
            run.updateTime = now
            return (run, [])
        }
        let ready = run.tasks.filter { task in
            task.state == Task.waiting
                && (topology.dependencies[task.name] ?? []).allSatisfy { $0 == WorkflowTopology.startName || states[$0] == JobState.success.rawValue }
        }.map(\.name)
        return (run, ready)
    }

    /// The run with `jobs` (one per node name) recorded as its tasks' jobs. (Whoever writes the
    /// run sets its `updateTime`.)
    public func started(_ jobs: [String: Job]) -> WorkflowRun {
        var run = self
        for index in run.tasks.indices {
            guard let job = jobs[run.tasks[index].name] else { continue }
            run.tasks[index].jobID = job.id
            run.tasks[index].state = job.state.rawValue
            run.tasks[index].createTime = job.creationTime
            run.tasks[index].templateID = job.operation.text("TemplateId").flatMap { $0.trimmed.isEmpty ? nil : $0.trimmed }
            run.tasks[index].templateName = job.operation.text("TemplateName")
        }
        return run
    }

    /// The `Workflow` block a task's job carries (kept in its stored `Operation`; `JobsDetail`
    /// shows it beside the Operation, as CI does).
    public func workflowBlock(node: String) -> XMLTree {
        XMLTree("Workflow", children: [
            XMLTree("Name", text: node), XMLTree("RunId", text: id), XMLTree("WorkflowId", text: workflowID),
            XMLTree("WorkflowName", text: workflowName),
        ])
    }
}

/// What `RunStore.runs` lists.
public struct RunQuery: Sendable, Hashable {
    public var bucket: String
    public var workflowID: String?
    public var states: Set<WorkflowRun.State> = []
    public var object: String?
    /// Only the run that has this job as one of its tasks'.
    public var jobID: JobID?
    public var createdFrom: Timestamp?
    public var createdTo: Timestamp?
    public var newestFirst = true
    /// Only runs after this sequence number in the chosen order (the previous page's last).
    public var after: Int64?
    public var limit = 10

    public init(bucket: String, workflowID: String? = nil) {
        self.bucket = bucket
        self.workflowID = workflowID
    }

    /// Whether `run` is one the query asks for (ignoring `after` and `limit`).
    public func matches(_ run: WorkflowRun) -> Bool {
        run.bucket == bucket && (workflowID == nil || run.workflowID == workflowID)
            && (states.isEmpty || states.contains(run.state)) && (object == nil || run.object == object)
            && (createdFrom.map { run.createTime >= $0 } ?? true) && (createdTo.map { run.createTime <= $0 } ?? true)
            && (jobID.map { id in run.tasks.contains { $0.jobID == id } } ?? true)
    }

    /// For stores that keep a run as XML text: what the text of a run with task job `jobID`
    /// contains.
    public var storedTextNeedle: String? { jobID.map { XMLTree("JobId", text: $0.rawValue).xmlString() } }
}

/// An object upload that may start workflow runs, recorded before the object is published and
/// removed once its runs exist: one a crash left behind is replayed (see `WorkflowRunner`).
public struct Arrival: Sendable, Hashable {
    public var id: String
    public var bucket: String
    public var key: String
    public var time: Timestamp
    /// The headers the object is uploaded with, for its runs.
    public var cosHeaders: [CosHeader]

    public init(id: String = "a" + timeOrderedHex32(), bucket: String, key: String, time: Timestamp, cosHeaders: [CosHeader] = []) {
        self.id = id
        self.bucket = bucket
        self.key = key
        self.time = time
        self.cosHeaders = cosHeaders
    }
}

/// Where workflow runs are kept; each method is one transaction.
public protocol RunStore: Sendable {
    /// Stores a new run with the jobs of its first tasks (`submit`'s rules: order, MaxSize,
    /// `Pause` in a paused queue): both or neither. Returns the run with its sequence number; a
    /// run with the same `origin` that exists already is returned instead, and nothing stored.
    func createRun(_ run: WorkflowRun, jobs: [Job]) async throws -> WorkflowRun

    func recordArrival(_ arrival: Arrival) async throws

    func removeArrival(id: String) async throws

    /// Arrivals recorded before `cutoff`, oldest first (by time, then id), after `after` when
    /// given (the last of the page before), at most `limit`.
    func arrivals(before cutoff: Timestamp, after: Arrival?, limit: Int) async throws -> [Arrival]

    /// Stores `run`'s new state and the jobs of the tasks it started, and queues `outbox`
    /// (the run's end announced), only if the stored run is still at `run.version` (then it
    /// becomes `version + 1`); false when another node changed it first (read it again).
    func updateRun(_ run: WorkflowRun, jobs: [Job], outbox: [OutboxEntry]) async throws -> Bool

    func run(id: String) async throws -> WorkflowRun?

    /// Runs matching `query`, by creation order, after `query.after`, at most `query.limit`.
    func runs(_ query: RunQuery) async throws -> [WorkflowRun]

    /// Runs still `Running` after sequence number `sequence`, in creation order, at most
    /// `limit`: the ones whose tasks may have moved on.
    func runningRuns(after sequence: Int64, limit: Int) async throws -> [WorkflowRun]
}

extension Job {
    /// The run this job is a task of, if a workflow made it.
    public var workflowRunID: String? { operation.text("Workflow", "RunId") }
}

extension RunStore {
    /// The first page of `arrivals(before:after:limit:)`.
    public func arrivals(before cutoff: Timestamp, limit: Int) async throws -> [Arrival] {
        try await arrivals(before: cutoff, after: nil, limit: limit)
    }
}
