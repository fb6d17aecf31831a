public import MediaQueueXML
import MediaQueueCore

/// A CI media template: a named, reusable set of parameters for one job type. An operation that
/// names it with `Operation.TemplateId` runs with the template's parameters instead of its inline
/// ones (spec §4.3: `TemplateId` wins).
public struct MediaTemplate: Sendable, Hashable {
    /// `t` + hex, as CI spells template ids.
    public var id: String
    /// CI's `TemplateName`, echoed in `JobsDetail`.
    public var name: String
    /// The job type it applies to (`Transcode`, `Animation`, `Snapshot`).
    public var tag: String
    /// The operation element it stands for, e.g. `<Transcode>…</Transcode>`.
    public var body: XMLTree
    /// One line for listings.
    public var summary: String

    public init(id: String, name: String, tag: String, body: XMLTree, summary: String) {
        self.id = id
        self.name = name
        self.tag = tag
        self.body = body
        self.summary = summary
    }
}
