import Foundation
import MediaQueueCore

/// A job's `Input.Object`, resolved to a file under the bucket's folder and known to exist.
struct BucketInput: Sendable {
    /// The key as the client gave it (used in messages instead of the server path).
    var object: String
    /// Where the object is stored.
    var path: String

    /// Throws `WorkFailure.inputNotExist` when the object is not a file in the bucket.
    init(job: Job, context: WorkContext) throws(WorkFailure) {
        // Validation refused a missing key at submission; a stored job without one cannot exist
        // unless the store was edited, and then it simply does not exist.
        try self.init(object: job.inputObject?.trimmingCharacters(in: .whitespaces) ?? "", context: context)
    }

    /// Another object of the job's bucket (e.g. a Concat fragment); the key was checked at submission.
    init(object: String, context: WorkContext) throws(WorkFailure) {
        let path = context.bucketRoot + "/" + object
        var isFolder: ObjCBool = false
        guard !object.isEmpty,
              FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue
        else { throw WorkFailure.inputNotExist(object) }
        self.object = object
        self.path = path
    }

    /// The object's file name without folders and extension (CI's `${InputName}`).
    var name: String {
        let file = object.split(separator: "/").last.map(String.init) ?? object
        guard let dot = file.lastIndex(of: "."), dot != file.startIndex else { return file }
        return String(file[..<dot])
    }
}
