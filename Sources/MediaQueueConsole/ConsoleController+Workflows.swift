import Hummingbird
import MediaQueueAPI
import MediaQueueCore

/// Workflows: each with its latest runs, and one run with its tasks.
extension ConsoleController {
    /// Runs shown per workflow on the list.
    static let runsPerWorkflow = 10

    func addWorkflowRoutes(to router: Router<APIContext>) {
        router.get("/console/b/:bucket/workflows") { request, context in
            await bucketPage(request, context) { viewer, bucket in try await workflowsPage(viewer, bucket) }
        }
        router.get("/console/b/:bucket/runs/:runId") { request, context in
            await bucketPage(request, context) { viewer, bucket in
                let id = try context.parameters.require("runId")
                guard let run = try await store.run(id: id), run.bucket == bucket else { throw ConsoleError.notFound("Workflow run \(id)") }
                return try runPage(viewer, run)
            }
        }
    }

    func workflowsPage(_ viewer: ConsoleViewer, _ bucket: String) async throws -> Response {
        var rows: [WorkflowRow] = []
        for workflow in try await store.definitions(.workflow, bucket: bucket) {
            var query = RunQuery(bucket: bucket, workflowID: workflow.id)
            query.limit = Self.runsPerWorkflow
            let topology = try? WorkflowTopology.parse(workflow.body)
            rows.append(WorkflowRow(
                id: workflow.id, name: workflow.name, state: workflow.label, prefix: topology?.start.objectPrefix ?? "",
                nodes: topology?.nodes.map(\.name).joined(separator: ", ") ?? "",
                runs: try await store.runs(query).map { run in
                    RunRow(
                        id: run.id, state: run.state.rawValue, object: run.object, created: formatting.times.format(run.createTime),
                        ended: run.state == .running ? "-" : formatting.times.format(run.updateTime),
                        tasks: run.tasks.map { "\($0.name) \($0.state)" }.joined(separator: ", ")
                    )
                }
            ))
        }
        var frame = viewer.frame("Workflows", bucket: bucket)
        frame.onWorkflows = true
        return html(pages.render("workflows", WorkflowsModel(page: frame, workflows: rows)))
    }

    func runPage(_ viewer: ConsoleViewer, _ run: WorkflowRun) throws -> Response {
        var frame = viewer.frame("Run \(run.id)", bucket: run.bucket)
        frame.onWorkflows = true
        let times = formatting.times
        let detail = RunDetail(
            id: run.id, workflowID: run.workflowID, workflowName: run.workflowName, state: run.state.rawValue, object: run.object,
            created: times.format(run.createTime), ended: run.state == .running ? "-" : times.format(run.updateTime)
        )
        let tasks = run.tasks.map { task in
            TaskRow(
                name: task.name, type: task.type, state: task.state, jobID: task.jobID?.rawValue,
                template: [task.templateName, task.templateID].compactMap { $0 }.joined(separator: " "),
                started: times.format(task.startTime), ended: times.format(task.endTime), code: task.code, message: task.message
            )
        }
        return html(pages.render("run", RunModel(page: frame, run: detail, tasks: tasks)))
    }
}

struct WorkflowsModel: Sendable {
    var page: PageFrame
    var workflows: [WorkflowRow]
}

struct WorkflowRow: Sendable {
    var id: String
    var name: String
    var state: String
    var prefix: String
    var nodes: String
    var runs: [RunRow]
}

struct RunRow: Sendable {
    var id: String
    var state: String
    var object: String
    var created: String
    var ended: String
    var tasks: String
}

struct RunModel: Sendable {
    var page: PageFrame
    var run: RunDetail
    var tasks: [TaskRow]
}

struct RunDetail: Sendable {
    var id: String
    var workflowID: String
    var workflowName: String
    var state: String
    var object: String
    var created: String
    var ended: String
}

struct TaskRow: Sendable {
    var name: String
    var type: String
    var state: String
    var jobID: String?
    var template: String
    var started: String
    var ended: String
    var code: String
    var message: String
}
