import Foundation
import Hummingbird
import MediaQueueCore
import MediaQueueXML

/// CI's workflow calls: `POST /workflow`, `PUT /workflow/<id>` (with a body, or `?active` /
/// `?paused`), `GET /workflow`, `DELETE /workflow/<id>`, `POST /triggerworkflow`, and the runs:
/// `GET /workflowexecution` and `GET /workflowexecution/<RunId>`.
struct WorkflowController: Sendable {
    let store: any JobStore
    let runner: WorkflowRunner
    /// Where triggered objects must exist.
    let storage: any ObjectStorage
    let formatting: CIFormatting
    let time: any TimeSource
    let body: @Sendable (Request) async throws -> [UInt8]
    /// Refuses a Start node's NotifyConfig early (a literal private address), as for queue rules.
    let checkRule: @Sendable (NotifyConfig, _ bucket: String) throws(CIError) -> Void

    func addRoutes(to router: some RouterMethods<APIContext>) {
        for prefix in ["", "/:bucket"] {
            router.post("\(prefix)/workflow") { request, context in try await create(request, context) }
            router.get("\(prefix)/workflow") { request, context in try await list(request, context) }
            router.put("\(prefix)/workflow/:workflowId") { request, context in try await update(request, context) }
            router.delete("\(prefix)/workflow/:workflowId") { request, context in try await delete(request, context) }
            router.post("\(prefix)/triggerworkflow") { request, context in try await trigger(request, context) }
            router.get("\(prefix)/workflowexecution") { request, context in try await listRuns(request, context) }
            router.get("\(prefix)/workflowexecution/:runId") { request, context in try await describeRun(request, context) }
        }
    }

    // MARK: Workflows

    func create(_ request: Request, _ context: APIContext) async throws -> Response {
        let now = time.now
        var workflow = Definition(
            id: "w" + randomHex32(), kind: .workflow, bucket: context.bucket, name: "", label: WorkflowState.paused, body: XMLTree("Topology"),
            createTime: now, updateTime: now
        )
        try await apply(try await body(request), to: &workflow)
        try await store.createDefinition(workflow)
        return context.answer([workflow.workflowDocument("MediaWorkflow", formatting)])
    }

    func update(_ request: Request, _ context: APIContext) async throws -> Response {
        let id = try context.parameters.require("workflowId")
        guard var workflow = try await store.definition(.workflow, id: id), workflow.bucket == context.bucket else {
            throw Definition.Kind.workflow.missing(id)
        }
        let query = request.queryParameters
        if query.has("active") || query.has("paused") {
            workflow.label = query.has("active") ? WorkflowState.active : WorkflowState.paused
        } else {
            try await apply(try await body(request), to: &workflow)
        }
        workflow.updateTime = time.now
        try await store.updateDefinition(workflow)
        return context.answer([workflow.workflowDocument("MediaWorkflow", formatting)])
    }

    func list(_ request: Request, _ context: APIContext) async throws -> Response {
        let query = request.queryParameters
        var workflows = try await store.definitions(.workflow, bucket: context.bucket)
        var missing: [String] = []
        if let ids = query.nonEmpty("ids") {
            let wanted = ids.split(separator: ",").map { String($0).trimmed }.filter { !$0.isEmpty }
            missing = wanted.filter { id in !workflows.contains { $0.id == id } }
            workflows = workflows.filter { wanted.contains($0.id) }
        }
        if let name = query.nonEmpty("name") { workflows = workflows.filter { $0.name.hasPrefix(name) } }
        let pageNumber = try query.int("pageNumber", default: 1, range: 1...100_000)
        let pageSize = try query.int("pageSize", default: 10, range: 1...100)
        let page = workflows.dropFirst((pageNumber - 1) * pageSize).prefix(pageSize)
        var children = page.map { $0.workflowDocument("MediaWorkflowList", formatting) }
        // One element per unknown id, as the Go SDK reads them (`NonExistIDs []string`).
        children += missing.map { XMLTree("NonExistIDs", text: $0) }
        children += [
            XMLTree("TotalCount", text: String(workflows.count)), XMLTree("PageNumber", text: String(pageNumber)),
            XMLTree("PageSize", text: String(pageSize)),
        ]
        return context.answer(children)
    }

    func delete(_ request: Request, _ context: APIContext) async throws -> Response {
        let id = try context.parameters.require("workflowId")
        try await store.deleteDefinition(.workflow, id: id, bucket: context.bucket)
        return context.answer([XMLTree("WorkflowId", text: id)])
    }

    /// Reads a `<Request><MediaWorkflow>` body into `workflow`: name, state and a topology that
    /// `WorkflowRunner.check` accepts.
    private func apply(_ bytes: [UInt8], to workflow: inout Definition) async throws {
        let tree: XMLTree
        do {
            tree = try XMLDocumentParser.parse(bytes)
        } catch {
            throw CIError(.invalidArgument, "the body is not a workflow request: \(error)", element: "Request")
        }
        guard tree.name == "Request", let element = tree["MediaWorkflow"] else {
            throw CIError(.invalidArgument, "MediaWorkflow: a <Request><MediaWorkflow> body is required", element: "MediaWorkflow")
        }
        guard let name = element.text("Name")?.trimmed, !name.isEmpty, name.count <= 128 else {
            throw CIError(.invalidArgument, "MediaWorkflow.Name: is required, at most 128 characters", element: "MediaWorkflow.Name")
        }
        if let state = element.text("State")?.trimmed, !state.isEmpty {
            switch state.lowercased() {
            case "active": workflow.label = WorkflowState.active
            case "paused": workflow.label = WorkflowState.paused
            default: throw CIError(.invalidArgument, "MediaWorkflow.State: must be Active or Paused, not '\(state)'", element: "MediaWorkflow.State")
            }
        }
        guard let topology = element["Topology"] else {
            throw CIError(.invalidArgument, "MediaWorkflow.Topology: is required", element: "MediaWorkflow.Topology")
        }
        let (parsed, templates) = try await runner.check(topology, bucket: workflow.bucket)
        if let config = parsed.start.notifyConfig, config.isOn {
            do {
                // Checked here, not where stored workflows are read: one saved before must still run.
                try config.validate()
                try checkRule(config, workflow.bucket)
            } catch {
                throw CIError(error.code, "Topology.Nodes.Start.Input.\(error.message)", element: error.element.map { "Topology.Nodes.Start.Input.\($0)" })
            }
        }
        workflow.name = name
        workflow.body = topology
        workflow.references = templates
    }

    // MARK: Runs

    func trigger(_ request: Request, _ context: APIContext) async throws -> Response {
        let query = request.queryParameters
        guard let id = query.nonEmpty("workflowId") else { throw CIError(.invalidArgument, "workflowId is required", element: "workflowId") }
        guard let object = query.nonEmpty("object") else { throw CIError(.invalidArgument, "object is required", element: "object") }
        guard let workflow = try await store.definition(.workflow, id: id), workflow.bucket == context.bucket else {
            throw Definition.Kind.workflow.missing(id)
        }
        let run = try await runner.trigger(workflow, object: object, storage: storage)
        return context.answer([XMLTree("InstanceId", text: run.id)])
    }

    func listRuns(_ request: Request, _ context: APIContext) async throws -> Response {
        let parameters = request.queryParameters
        guard let workflowID = parameters.nonEmpty("workflowId") else {
            throw CIError(.invalidArgument, "workflowId is required", element: "workflowId")
        }
        var query = RunQuery(bucket: context.bucket, workflowID: workflowID)
        query.object = parameters.nonEmpty("name")
        query.states = Set(try parameters.states { name in WorkflowRun.State.allCases.first { $0.rawValue.lowercased() == name.lowercased() } })
        query.newestFirst = try parameters.newestFirst()
        query.createdFrom = try parameters.time("startCreationTime")
        query.createdTo = try parameters.endOfSecond("endCreationTime")
        query.jobID = parameters.nonEmpty("jobId").map(JobID.init(rawValue:))
        let size = try parameters.int("size", default: 10, range: 1...100)
        query.after = try parameters.nextToken()
        query.limit = size + 1
        let runs = try await store.runs(query)
        let page = runs.prefix(size)
        return context.answer(page.map { $0.listEntry(formatting) } + [XMLTree("NextToken", text: runs.count > size ? String(page.last!.sequence) : "")])
    }

    func describeRun(_ request: Request, _ context: APIContext) async throws -> Response {
        let id = try context.parameters.require("runId")
        guard let run = try await store.run(id: id), run.bucket == context.bucket else {
            throw CIError(.noSuchWorkflow, "workflow run \(id) does not exist in this bucket", element: "RunId")
        }
        return context.answer([run.execution(formatting, topology: true)])
    }
}
