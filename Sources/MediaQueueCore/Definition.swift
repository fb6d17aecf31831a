public import MediaQueueXML

/// A bucket's saved template or workflow, kept as CI's XML.
public struct Definition: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case template, workflow
    }

    public var id: String
    public var kind: Kind
    public var bucket: String
    public var name: String
    /// A template's `Tag` (Transcode, Snapshot…); a workflow's `State` (Active, Paused).
    public var label: String
    /// A template's operation container (`<Transcode>…`); a workflow's `<Topology>`.
    public var body: XMLTree
    /// The custom template ids a workflow's nodes name, so that no template in use is deleted.
    public var references: [String]
    public var createTime: Timestamp
    public var updateTime: Timestamp

    public init(
        id: String, kind: Kind, bucket: String, name: String, label: String, body: XMLTree, references: [String] = [],
        createTime: Timestamp, updateTime: Timestamp
    ) {
        self.id = id
        self.kind = kind
        self.bucket = bucket
        self.name = name
        self.label = label
        self.body = body
        self.references = references
        self.createTime = createTime
        self.updateTime = updateTime
    }

    /// `references` as stored: every id between commas, so one `LIKE '%,id,%'` finds users.
    public var referenceList: String { references.isEmpty ? "" : "," + references.joined(separator: ",") + "," }

    public static func references(from list: String) -> [String] {
        list.split(separator: ",").map(String.init)
    }
}

/// Where buckets' templates and workflows are kept; each method is one transaction.
public protocol DefinitionStore: Sendable {
    /// Adds a definition with a new id.
    func createDefinition(_ definition: Definition) async throws

    /// Replaces the definition with `definition.id` of that kind in that bucket; throws
    /// `NoSuchTemplate` or `NoSuchWorkflow` when there is none.
    func updateDefinition(_ definition: Definition) async throws

    /// The bucket's definitions of `kind`, oldest first.
    func definitions(_ kind: Definition.Kind, bucket: String) async throws -> [Definition]

    func definition(_ kind: Definition.Kind, id: String) async throws -> Definition?

    /// Removes a definition of the bucket. Throws `NoSuchTemplate`/`NoSuchWorkflow` when there
    /// is none, and `ResourceInUse` naming the workflows for a template one of them references.
    func deleteDefinition(_ kind: Definition.Kind, id: String, bucket: String) async throws
}

extension Definition.Kind {
    /// The error for an id the bucket does not have.
    public func missing(_ id: String) -> CIError {
        switch self {
        case .template: CIError(.noSuchTemplate, "template \(id) does not exist in this bucket", element: "TemplateId")
        case .workflow: CIError(.noSuchWorkflow, "workflow \(id) does not exist in this bucket", element: "WorkflowId")
        }
    }

    /// The error for deleting a template that the workflows `users` use.
    public static func inUse(_ id: String, by users: [String]) -> CIError {
        CIError(.resourceInUse, "template \(id) is used by workflow \(users.sorted().joined(separator: ", ")); change or delete the workflow first", element: "TemplateId")
    }
}

extension Definition {
    /// A workflow as CI shows it (`<MediaWorkflow>` or a `<MediaWorkflowList>` entry).
    public func workflowDocument(_ elementName: String, _ formatting: CIFormatting) -> XMLTree {
        XMLTree(elementName, children: [
            XMLTree("Name", text: name), XMLTree("WorkflowId", text: id), XMLTree("State", text: label),
            XMLTree("CreateTime", text: formatting.times.format(createTime)), XMLTree("UpdateTime", text: formatting.times.format(updateTime)),
            XMLTree("BucketId", text: bucket), body,
        ])
    }
}
