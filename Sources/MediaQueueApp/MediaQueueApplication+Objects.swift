import Foundation
import Logging
public import MediaQueueCore

/// Objects as the CLI moves them: the same storage, and the same consequences (workflow runs
/// start), as the COS object calls of the API.
extension MediaQueueApplication {
    /// Uploads the local file at `path` as object `key`, visible only once whole. Refused as the
    /// API's PUT refuses it: a key the storage cannot hold, a file over `maxObjectBytes`.
    public func putObject(from path: String, bucket: String, key: ObjectKey) async throws {
        try storage.checkUpload(of: key, bucket: bucket)
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        guard size <= configuration.maxObjectBytes else {
            throw CIError(CIError.Code("EntityTooLarge"), "\(path) is \(size) bytes; objects are at most \(configuration.maxObjectBytes) (MEDIAQUEUE_MAX_OBJECT_BYTES)")
        }
        let staging = try storage.makeStagingFolder(bucket: bucket, name: "upload-" + randomHex32(), for: key)
        defer { storage.removeStagingFolder(staging) }
        let staged = staging + "/" + key.fileName
        try FileManager.default.copyItem(atPath: path, toPath: staged)
        // Dispatchers find the runs' first jobs on their next poll.
        let outcome = try await workflowRunner(workers).upload(bucket: bucket, key: key.rawValue) {
            try await storage.publish(staged, bucket: bucket, as: key)
        }
        if let error = outcome.deferred {
            logger.warning("the upload's workflow runs start later, from a running node", metadata: ["object": "\(key)", "error": "\(error)"])
        }
    }
}

/// Objects as the CLI reads them, from the storage alone: no store is needed.
extension ObjectStorage {
    /// Copies object `key` to the local file at `path`, or into the folder `path` names (as `cp`
    /// does); returns the file written, nil when there is no such object. The copy is written
    /// beside its target and renamed over it: an existing file is replaced whole, and nothing else
    /// is ever removed.
    public func getObject(bucket: String, key: ObjectKey, to path: String) async throws -> String? {
        guard let file = try await self.readableFile(bucket: bucket, key: key) else { return nil }
        defer { if let folder = file.temporaryFolder { removeStagingFolder(folder) } }
        var isFolder: ObjCBool = false
        let target = FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) && isFolder.boolValue
            ? (path.hasSuffix("/") ? path : path + "/") + key.fileName : path
        let partial = target + ".mediaqueue-partial-" + UUID().uuidString
        try FileManager.default.copyItem(atPath: file.path, toPath: partial)
        guard rename(partial, target) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: partial)
            throw CIError(.invalidArgument, "cannot write \(target): \(reason)")
        }
        return target
    }

    /// Every object under `prefix` (and, with a delimiter, the common prefixes), page after page.
    public func listAllObjects(bucket: String, prefix: String, delimiter: String) async throws -> ObjectListing {
        try ObjectListQuery.checkPrefix(prefix)
        var all = ObjectListing()
        var query = ObjectListQuery(prefix: prefix, delimiter: delimiter)
        while true {
            let page = try await self.listObjects(bucket: bucket, query)
            all.objects += page.objects
            all.commonPrefixes += page.commonPrefixes
            guard page.isTruncated, let next = page.nextMarker else { return all }
            query.marker = next
        }
    }
}
