public import MediaQueueXML

/// A header an object was uploaded with, as CI's workflow documents name them (`CosHeaders`):
/// a run started by an upload carries the upload's `Content-Type` and `x-cos-meta-*` headers
/// into its node jobs' `Input` (with the upload's `EventName`) and its `WorkflowFinish`
/// (spec §4.5, §5.2, §5.4).
public struct CosHeader: Sendable, Hashable {
    public var key: String
    public var value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }

    /// Of an upload's request headers, the ones CI passes on: `Content-Type` and every
    /// `x-cos-meta-*`, in the order given.
    public static func passedOn(from headers: [(name: String, value: String)]) -> [CosHeader] {
        headers.compactMap { header in
            let name = header.name.lowercased()
            if name == "content-type" { return CosHeader(key: "Content-Type", value: header.value) }
            return name.hasPrefix(metadataPrefix) ? CosHeader(key: header.name, value: header.value) : nil
        }
    }

    /// The bytes of `headers`' user metadata (`x-cos-meta-*` names and values), which COS
    /// limits to `maxMetadataBytes`.
    public static func metadataBytes(_ headers: [CosHeader]) -> Int {
        headers.filter { $0.key.lowercased().hasPrefix(metadataPrefix) }.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
    }

    /// The event of an object written by a PUT, as CI names it in a workflow's node jobs.
    public static let objectCreatedEvent = CosHeader(key: "EventName", value: "cos:ObjectCreated:Put")

    /// COS's limit on an object's user metadata.
    public static let maxMetadataBytes = 2048
    static let metadataPrefix = "x-cos-meta-"

    /// `<CosHeaders><Key>…</Key><Value>…</Value></CosHeaders>`
    public var xml: XMLTree {
        XMLTree("CosHeaders", children: [XMLTree("Key", text: key), XMLTree("Value", text: value)])
    }

    /// The `CosHeaders` children of `element`.
    public static func all(in element: XMLTree) -> [CosHeader] {
        element.all("CosHeaders").map { CosHeader(key: $0.text("Key") ?? "", value: $0.text("Value") ?? "") }
    }

    /// One text for a store column; "" for none.
    public static func stored(_ headers: [CosHeader]) -> String {
        headers.isEmpty ? "" : XMLTree("Headers", children: headers.map(\.xml)).xmlString()
    }

    /// What `stored` wrote; an unreadable text reads as none.
    public static func read(stored text: String) -> [CosHeader] {
        guard !text.isEmpty, let tree = try? XMLDocumentParser.parse(text) else { return [] }
        return all(in: tree)
    }
}
