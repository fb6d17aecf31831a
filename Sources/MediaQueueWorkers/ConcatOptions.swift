import Foundation
import MediaQueueCore
import MediaQueueXML

/// A Concat operation's `Operation.ConcatTemplate`: the `ConcatFragment` list and the output's
/// `Container`/`Video`/`Audio` (read as Transcode reads them).
///
/// The joined media is: the `Mode=Start` fragments in list order, then `Input.Object`, then the
/// `Mode=End` fragments in list order (CI's fragment modes; `Start` when unset). A fragment names
/// an object of the job's own bucket by its `Url`: either the object key itself
/// (`clips/intro.mp4`) or a URL whose host is the bucket's (`https://<bucket>.cos.<region>.myqcloud.com/clips/intro.mp4`;
/// the path is the key). Nothing is fetched from elsewhere.
struct ConcatOptions: Sendable, Hashable {
    struct Fragment: Sendable, Hashable {
        enum Mode: String, Sendable, Hashable, CaseIterable {
            case start = "Start"
            case end = "End"
        }

        /// The object key in the bucket.
        var object: ObjectKey
        /// The host the `Url` named, checked against the job's bucket at run time; nil for a bare key.
        var host: String?
        var mode: Mode
        var startTime: Double?
        var endTime: Double?
        /// The element path, for messages (`Operation.ConcatTemplate.ConcatFragment[2]`).
        var path: String
    }

    var fragments: [Fragment]
    var output: TranscodeOptions

    static let maxFragments = 100

    init(operation: XMLTree) throws(CIError) {
        if operation.text("TemplateId")?.trimmed.isEmpty == false {
            // No Concat templates exist; this names the unknown or foreign one.
            _ = try SystemTemplates.resolve(operation, tag: "Concat", container: "ConcatTemplate")
        }
        let path = "Operation.ConcatTemplate"
        let fields = OperationFields(operation["ConcatTemplate"], path: path)
        let elements = fields.element.all("ConcatFragment")
        guard !elements.isEmpty else { throw fields.invalid("ConcatFragment", "needs at least one fragment") }
        guard elements.count <= Self.maxFragments else {
            throw fields.invalid("ConcatFragment", "at most \(Self.maxFragments) fragments, not \(elements.count)")
        }
        fragments = []
        for (index, element) in elements.enumerated() {
            let fragment = OperationFields(element, path: "\(path).ConcatFragment[\(index + 1)]")
            fragments.append(try Self.fragment(fragment))
        }
        try fields.refuse("DirectConcat", unless: { $0.lowercased() == "false" })
        try fields.child("SceneChangeInfo").refuse("Mode", unless: { $0.lowercased() == "default" })
        output = try TranscodeOptions(fields.element, path: path, readsTimeInterval: false)
    }

    private static func fragment(_ fields: OperationFields) throws(CIError) -> Fragment {
        guard let url = fields.string("Url") else { throw fields.invalid("Url", "is required (an object key in the bucket)") }
        var object = url
        var host: String?
        if url.contains("://") {
            guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
                  scheme == "http" || scheme == "https", let urlHost = components.host, !urlHost.isEmpty
            else {
                throw fields.invalid("Url", "'\(url)' is neither an object key nor an http(s) URL of the bucket")
            }
            host = urlHost.lowercased()
            object = String(components.path.drop(while: { $0 == "/" }))
        }
        let key: ObjectKey
        do {
            key = try ObjectKey(object)
        } catch {
            throw fields.invalid("Url", "must name an object inside the bucket: it \(error.reason)")
        }
        let mode = try fields.choice("Mode", Fragment.Mode.allCases.map(\.rawValue)).flatMap(Fragment.Mode.init) ?? .start
        let start = try fields.number("StartTime", above: 0, inclusive: true, unit: " seconds")
        let end = try fields.number("EndTime", above: 0, unit: " seconds")
        if let end, end <= (start ?? 0) {
            throw fields.invalid("EndTime", "must be after StartTime")
        }
        return Fragment(object: key, host: host, mode: mode, startTime: start, endTime: end, path: fields.path)
    }
}
