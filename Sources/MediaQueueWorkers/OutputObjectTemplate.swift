import Foundation
import MediaQueueCore

/// CI's wildcards in `Output.Object`: `${Number}` (file index from 0), `${jobid}`,
/// `${InputName}` (input file name without extension) and `${ext}`.
struct OutputObjectTemplate: Sendable, Hashable {
    static let number = "${Number}"

    var template: String
    var jobID: String
    var inputName: String
    /// What `${ext}` stands for, e.g. `jpg`.
    var ext: String

    /// The object key of file `number`.
    func object(number: Int = 0) -> String {
        template
            .replacingOccurrences(of: Self.number, with: String(number))
            .replacingOccurrences(of: "${jobid}", with: jobID)
            .replacingOccurrences(of: "${InputName}", with: inputName)
            .replacingOccurrences(of: "${ext}", with: ext)
    }

    /// The extension the keys end with (after `${ext}` is filled in), lowercased; empty when none.
    var fileExtension: String {
        let file = object(number: 0).split(separator: "/").last ?? ""
        guard let dot = file.lastIndex(of: ".") else { return "" }
        return file[file.index(after: dot)...].lowercased()
    }

    /// Whether the template holds `${Number}`.
    var isNumbered: Bool { template.contains(Self.number) }

    /// The key a filled-in template names, refused when it would leave the bucket: the wildcards
    /// may bring in `..` (an input named `...mp4`), which validation at submission could not see.
    static func key(_ object: String) throws(WorkFailure) -> ObjectKey {
        do {
            return try ObjectKey(object)
        } catch {
            throw WorkFailure.invalidArgument("Operation.Output.Object", error.description)
        }
    }
}
