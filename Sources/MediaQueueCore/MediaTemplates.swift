import Foundation
public import MediaQueueXML

/// The job types templates are made for, and where each keeps its parameters.
public enum TemplateTags {
    /// The element of a job's `Operation` holding a tag's parameters (`Concat` → `ConcatTemplate`).
    public static let operationContainers = [
        "Transcode": "Transcode", "Snapshot": "Snapshot", "Animation": "Animation", "Concat": "ConcatTemplate", "Segment": "Segment",
    ]

    /// The element of a template document holding them, as CI's DescribeMediaTemplates shows it.
    public static let documentContainers = [
        "Transcode": "TransTpl", "Animation": "TransTpl", "Snapshot": "Snapshot", "Concat": "ConcatTemplate", "Segment": "Segment",
    ]

    /// A template's document (`<Template>` or `<TemplateList>`): id, name, tag, state, times,
    /// bucket, category, and the parameters under the tag's document container.
    public static func document(
        _ elementName: String, id: String, name: String, tag: String, category: String, parameters: XMLTree,
        bucket: String?, created: Timestamp?, updated: Timestamp?, formatting: CIFormatting
    ) -> XMLTree {
        var children = [
            XMLTree("TemplateId", text: id), XMLTree("Name", text: name), XMLTree("Tag", text: tag), XMLTree("State", text: "Normal"),
        ]
        if let created { children.append(XMLTree("CreateTime", text: formatting.times.format(created))) }
        if let updated { children.append(XMLTree("UpdateTime", text: formatting.times.format(updated))) }
        if let bucket { children.append(XMLTree("BucketId", text: bucket)) }
        children.append(XMLTree("Category", text: category))
        children.append(XMLTree(documentContainers[tag] ?? tag, children: parameters.children))
        return XMLTree(elementName, children: children)
    }
}

/// A `POST /template` or `PUT /template/<id>` body: `<Request><Tag/><Name/>…</Request>`.
///
/// Transcode and Animation templates carry their parameters at the top (`Container`, `Video`…),
/// as CI's CreateMediaTemplate has them; the others in their operation container (`Snapshot`,
/// `ConcatTemplate`, `Segment`). Both forms are read for every tag.
public struct TemplateRequest: Sendable, Hashable {
    public var tag: String
    public var name: String
    /// The parameters as a job's operation container, e.g. `<Transcode>…</Transcode>`.
    public var parameters: XMLTree

    public static let maxNameLength = 64

    public static func parse(_ body: [UInt8]) throws(CIError) -> TemplateRequest {
        let tree: XMLTree
        do {
            tree = try XMLDocumentParser.parse(body)
        } catch {
            throw CIError(.invalidArgument, "the body is not a template request: \(error)", element: "Request")
        }
        return try parse(tree)
    }

    public static func parse(_ request: XMLTree) throws(CIError) -> TemplateRequest {
        guard request.name == "Request" else { throw CIError.invalid(request.name, "the root element must be Request") }
        guard let tag = request.text("Tag")?.trimmed, !tag.isEmpty else { throw CIError.invalid("Tag", "is required") }
        guard let container = TemplateTags.operationContainers[tag] else {
            throw CIError.invalid("Tag", "'\(tag)' is not a template type here (\(TemplateTags.operationContainers.keys.sorted().joined(separator: ", ")))")
        }
        guard let name = request.text("Name")?.trimmed, !name.isEmpty else { throw CIError.invalid("Name", "is required") }
        guard name.count <= maxNameLength else { throw CIError.invalid("Name", "is longer than \(maxNameLength) characters") }
        let wrapped = request[container] ?? TemplateTags.documentContainers[tag].flatMap { request[$0] }
        let children = wrapped?.children ?? request.children.filter { !["Tag", "Name"].contains($0.name) }
        guard !children.isEmpty else { throw CIError.invalid(container, "the template has no parameters") }
        return TemplateRequest(tag: tag, name: name, parameters: XMLTree(container, children: children))
    }

    /// An operation that runs with these parameters, for checking them as the tag's worker
    /// checks a job's: outputs that every tag accepts are filled in.
    public var checkOperation: CreateMediaJobsRequest.Operation {
        CreateMediaJobsRequest.Operation(
            tag: tag, input: XMLTree("Input", children: [XMLTree("Object", text: "template-check/input.mp4")]),
            operation: XMLTree("Operation", children: [
                parameters,
                XMLTree("Output", children: [
                    XMLTree("Object", text: "template-check/out-${Number}"), XMLTree("SpriteObject", text: "template-check/sprite-${Number}.jpg"),
                ]),
            ]),
            jobLevel: 0
        )
    }

    /// A worker's error about the check operation, named as the template request's fields.
    public func renamed(_ error: CIError) -> CIError {
        let container = parameters.name
        let prefix = "Operation.\(container)"
        func rename(_ text: String) -> String {
            text.replacingOccurrences(of: prefix, with: ["Transcode", "Animation"].contains(tag) ? "Request" : "Request.\(container)")
                .replacingOccurrences(of: "Operation.", with: "Request.")
        }
        return CIError(error.code, rename(error.message), element: error.element.map(rename))
    }
}

/// Custom templates in jobs: an `Operation.TemplateId` naming one of the bucket's templates gets
/// that template's parameters when the job is submitted (they win over inline ones, as CI has
/// it), plus its `TemplateName`; the job then runs as if they had been inline. Built-in
/// template ids are left to the workers.
public struct TemplateResolver: Sendable {
    let store: any DefinitionStore
    let builtInIDs: Set<String>

    public init(store: any DefinitionStore, builtInIDs: Set<String>) {
        self.store = store
        self.builtInIDs = builtInIDs
    }

    /// This resolver as it would be with `template` saved: to check a change before it is made.
    public func replacing(_ template: Definition) -> TemplateResolver {
        TemplateResolver(store: ReplacedTemplate(base: store, template: template), builtInIDs: builtInIDs)
    }

    public func resolve(_ operation: inout CreateMediaJobsRequest.Operation, bucket: String) async throws(CIError) {
        guard let id = operation.operation.text("TemplateId")?.trimmed, !id.isEmpty, !builtInIDs.contains(id) else { return }
        let found: Definition?
        do {
            found = try await store.definition(.template, id: id)
        } catch {
            throw CIError(.internalError, "cannot read template \(id): \(error)")
        }
        guard let template = found, template.bucket == bucket else {
            throw CIError.invalid("Operation.TemplateId", "'\(id)' is not a template of this bucket (GET /template lists them)")
        }
        guard template.label == operation.tag, let container = TemplateTags.operationContainers[operation.tag] else {
            throw CIError.invalid("Operation.TemplateId", "'\(id)' (\(template.name)) is a \(template.label) template, not \(operation.tag)")
        }
        var element = operation.operation
        element.remove(container)
        element.remove("TemplateName")
        let at = (element.children.firstIndex { $0.name == "TemplateId" } ?? element.children.count - 1) + 1
        element.children.insert(XMLTree("TemplateName", text: template.name), at: at)
        element.children.append(XMLTree(container, children: template.body.children))
        operation.operation = element
    }
}

/// Definitions as `base` holds them, but with `template` in place of the stored one of its id.
private struct ReplacedTemplate: DefinitionStore {
    let base: any DefinitionStore
    let template: Definition

    func definition(_ kind: Definition.Kind, id: String) async throws -> Definition? {
        kind == .template && id == template.id ? template : try await base.definition(kind, id: id)
    }

    func definitions(_ kind: Definition.Kind, bucket: String) async throws -> [Definition] {
        try await base.definitions(kind, bucket: bucket).map { kind == .template && $0.id == template.id ? template : $0 }
    }

    func createDefinition(_ definition: Definition) async throws { try await base.createDefinition(definition) }
    func updateDefinition(_ definition: Definition) async throws { try await base.updateDefinition(definition) }
    func deleteDefinition(_ kind: Definition.Kind, id: String, bucket: String) async throws {
        try await base.deleteDefinition(kind, id: id, bucket: bucket)
    }
}
