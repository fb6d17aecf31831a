public import MediaQueueXML
import MediaQueueWorkers

extension MediaQueueApplication {
    /// The built-in templates as `(id, tag, name, summary)` rows, for `mediaqueue templates list`.
    public static var templateRows: [(id: String, tag: String, name: String, summary: String)] {
        SystemTemplates.all.map { ($0.id, $0.tag, $0.name, $0.summary) }
    }

    /// The built-in templates as CI's DescribeMediaTemplates `<Response>`.
    public static var templateList: XMLTree {
        XMLTree("Response", children: [
            XMLTree("TotalCount", text: String(SystemTemplates.all.count)),
            XMLTree("PageNumber", text: "1"),
            XMLTree("PageSize", text: String(SystemTemplates.all.count)),
        ] + SystemTemplates.all.map(\.xml))
    }
}
