public import MediaQueueXML
public import MediaQueueCore
import MediaQueueWorkers

extension MediaQueueApplication {
    /// The built-in templates as `(id, tag, name, summary)` rows, for `mediaqueue templates list`.
    public static var templateRows: [(id: String, tag: String, name: String, summary: String)] {
        SystemTemplates.all.map { ($0.id, $0.tag, $0.name, $0.summary) }
    }

    /// The built-in templates as CI's DescribeMediaTemplates `<Response>` (category Official).
    public static var templateList: XMLTree {
        XMLTree("Response", children: [
            XMLTree("TotalCount", text: String(SystemTemplates.all.count)),
            XMLTree("PageNumber", text: "1"),
            XMLTree("PageSize", text: String(SystemTemplates.all.count)),
        ] + officialTemplates.map { template in
            TemplateTags.document(
                "TemplateList", id: template.id, name: template.name, tag: template.label, category: "Official", parameters: template.body,
                bucket: nil, created: nil, updated: nil, formatting: CIFormatting()
            )
        })
    }

    /// The built-in templates as the API lists them (`GET /template?category=Official`).
    public static var officialTemplates: [Definition] {
        SystemTemplates.all.map { template in
            Definition(
                id: template.id, kind: .template, bucket: "", name: template.name, label: template.tag, body: template.body,
                createTime: Timestamp(milliseconds: 0), updateTime: Timestamp(milliseconds: 0)
            )
        }
    }
}
