import Foundation
import Hummingbird
import MediaQueueCore
import MediaQueueXML

/// CI's template calls: `POST /template`, `PUT /template/<id>`, `GET /template` and
/// `DELETE /template/<id>` for the bucket's own (Custom) templates; the built-in ones are the
/// Official category.
struct TemplateController: Sendable {
    let store: any JobStore
    let workers: WorkerRegistry
    /// The built-in templates (kind template, label = tag, no bucket).
    let official: [Definition]
    let formatting: CIFormatting
    let time: any TimeSource
    let body: @Sendable (Request) async throws -> [UInt8]
    /// Checks the workflows that use a template being changed; nil where workflows are not served.
    let workflows: WorkflowRunner?

    func addRoutes(to router: some RouterMethods<APIContext>) {
        for prefix in ["", "/:bucket"] {
            router.post("\(prefix)/template") { request, context in try await create(request, context) }
            router.get("\(prefix)/template") { request, context in try await list(request, context) }
            router.put("\(prefix)/template/:templateId") { request, context in try await update(request, context) }
            router.delete("\(prefix)/template/:templateId") { request, context in try await delete(request, context) }
        }
    }

    func create(_ request: Request, _ context: APIContext) async throws -> Response {
        let parsed = try await parse(request)
        let now = time.now
        let template = Definition(
            id: "t" + randomHex32(), kind: .template, bucket: context.bucket, name: parsed.name, label: parsed.tag,
            body: parsed.parameters, createTime: now, updateTime: now
        )
        try await store.createDefinition(template)
        return context.answer([document("Template", template)])
    }

    func update(_ request: Request, _ context: APIContext) async throws -> Response {
        let id = try context.parameters.require("templateId")
        let parsed = try await parse(request)
        guard var template = try await store.definition(.template, id: id), template.bucket == context.bucket else {
            throw Definition.Kind.template.missing(id)
        }
        guard template.label == parsed.tag else {
            throw CIError(.invalidArgument, "template \(id) is a \(template.label) template; its Tag cannot become \(parsed.tag)", element: "Tag")
        }
        template.name = parsed.name
        template.body = parsed.parameters
        template.updateTime = time.now
        try await workflows?.checkWorkflows(using: template)
        try await store.updateDefinition(template)
        return context.answer([document("Template", template)])
    }

    func list(_ request: Request, _ context: APIContext) async throws -> Response {
        let query = request.queryParameters
        var templates: [Definition]
        switch query.nonEmpty("category") ?? "Custom" {
        case "Custom": templates = try await store.definitions(.template, bucket: context.bucket)
        case "Official": templates = official
        case let other: throw CIError(.invalidArgument, "category must be Custom or Official, not '\(other)'", element: "category")
        }
        if let tag = query.nonEmpty("tag") { templates = templates.filter { $0.label == tag } }
        if let name = query.nonEmpty("name") { templates = templates.filter { $0.name.hasPrefix(name) } }
        if let ids = query.nonEmpty("ids") {
            let wanted = Set(ids.split(separator: ",").map { String($0).trimmed })
            templates = templates.filter { wanted.contains($0.id) }
        }
        let pageNumber = try query.int("pageNumber", default: 1, range: 1...100_000)
        let pageSize = try query.int("pageSize", default: 10, range: 1...100)
        let page = templates.dropFirst((pageNumber - 1) * pageSize).prefix(pageSize)
        return context.answer([
            XMLTree("TotalCount", text: String(templates.count)),
            XMLTree("PageNumber", text: String(pageNumber)),
            XMLTree("PageSize", text: String(pageSize)),
        ] + page.map { document("TemplateList", $0) })
    }

    func delete(_ request: Request, _ context: APIContext) async throws -> Response {
        let id = try context.parameters.require("templateId")
        if official.contains(where: { $0.id == id }) {
            throw CIError(.invalidArgument, "template \(id) is built in and cannot be deleted", element: "TemplateId")
        }
        try await store.deleteDefinition(.template, id: id, bucket: context.bucket)
        return context.answer([XMLTree("TemplateId", text: id)])
    }

    /// The body as a template request whose parameters pass the checks of the tag's worker.
    private func parse(_ request: Request) async throws -> TemplateRequest {
        let parsed = try TemplateRequest.parse(try await body(request))
        do {
            try workers.validate(parsed.checkOperation)
        } catch {
            throw parsed.renamed(error)
        }
        return parsed
    }

    private func document(_ name: String, _ template: Definition) -> XMLTree {
        let custom = !template.bucket.isEmpty
        return TemplateTags.document(
            name, id: template.id, name: template.name, tag: template.label, category: custom ? "Custom" : "Official",
            parameters: template.body, bucket: custom ? template.bucket : nil, created: custom ? template.createTime : nil,
            updated: custom ? template.updateTime : nil, formatting: formatting
        )
    }
}
