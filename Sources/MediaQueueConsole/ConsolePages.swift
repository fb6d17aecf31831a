import Mustache

/// The console's templates, parsed once; each page inherits the layout.
struct ConsolePages: Sendable {
    private let library: MustacheLibrary

    init() throws {
        let sources: [String: String] = [
            "layout": LayoutTemplates.layout, "login": LayoutTemplates.login, "message": LayoutTemplates.message,
            "queues": QueueTemplates.queues, "queue": QueueTemplates.queue,
            "jobs": JobTemplates.jobs, "job": JobTemplates.job,
            "overview": OperationsTemplates.overview, "dead": OperationsTemplates.dead,
            "workflows": WorkflowTemplates.workflows, "run": WorkflowTemplates.run,
        ]
        library = MustacheLibrary(templates: try sources.mapValues { try MustacheTemplate(string: $0) })
    }

    /// The page `name` rendered with `model`; a missing template is a programming error.
    func render(_ name: String, _ model: Any) -> String {
        guard let html = library.render(model, withTemplate: name) else { preconditionFailure("no console template named \(name)") }
        return html
    }
}

/// What the layout shows around every page.
struct PageFrame: Sendable {
    struct BucketChoice: Sendable {
        var name: String
        var selected: Bool
    }

    var title: String
    var bucket: String?
    var buckets: [BucketChoice] = []
    var user: String?
    var csrf: String = ""
    var notice: String?
    var error: String?
    var onOverview = false
    var onQueues = false
    var onJobs = false
    var onWorkflows = false
    var onDead = false
}
