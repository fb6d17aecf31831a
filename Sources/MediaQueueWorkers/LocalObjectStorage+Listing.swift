import Foundation
import Synchronization
public import MediaQueueCore

/// HEAD and ListObjects on a folder of buckets.
extension LocalObjectStorage {
    /// The ETag is the content's MD5, computed once per version of the file (`DigestCache`).
    public func objectInfo(bucket: String, key: ObjectKey) throws(WorkFailure) -> ObjectInfo? {
        try info(path: bucketFolder(bucket) + "/" + key.rawValue, key: key.rawValue)
    }

    public func listObjects(bucket: String, _ query: ObjectListQuery) throws(WorkFailure) -> ObjectListing {
        let folder = bucketFolder(bucket)
        // Only the folder the prefix names can hold matching keys; one that is no folder inside
        // the bucket (`..`, a staging folder) holds none.
        let start = ObjectKey.folder(of: query.prefix) ?? ""
        guard start.isEmpty || ObjectKey.problem(start) == nil else { return ObjectListing() }
        var keys: [String] = []
        Self.collectFiles(in: start.isEmpty ? folder : folder + "/" + start, as: start, into: &keys)
        return try ObjectListing.page(of: keys, query) { key throws(WorkFailure) in try info(path: folder + "/" + key, key: key) }
    }

    /// The keys of the regular files under `folder`, whose key is `key` ("" for the bucket),
    /// leaving out the store's own folders and files. Not FileManager's enumerator: it gives a
    /// name that starts with a combining mark as a whole path, without its attributes.
    private static func collectFiles(in folder: String, as key: String, into keys: inout [String]) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for name in names where !name.utf8.starts(with: ObjectKey.reservedPrefix.utf8) {
            let path = folder + "/" + name
            let child = key.isEmpty ? name : key + "/" + name
            var status = stat()
            guard lstat(path, &status) == 0 else { continue }
            switch status.st_mode & S_IFMT {
            case S_IFDIR: collectFiles(in: path, as: child, into: &keys)
            case S_IFREG: keys.append(child)
            default: continue
            }
        }
    }

    private func info(path: String, key: String) throws(WorkFailure) -> ObjectInfo? {
        var status = stat()
        guard stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { return nil }
        let modified = Timestamp(milliseconds: Int64(status.st_mtim.tv_sec) * 1000 + Int64(status.st_mtim.tv_nsec) / 1_000_000)
        return ObjectInfo(key: key, size: Int(status.st_size), etag: "\"\(try md5(ofFile: path, key: key, status: status))\"", lastModified: modified)
    }

    private func md5(ofFile path: String, key: String, status: stat) throws(WorkFailure) -> String {
        let version = FileVersion(device: UInt64(status.st_dev), inode: UInt64(status.st_ino), size: Int64(status.st_size),
                                  modified: Int64(status.st_mtim.tv_sec) * 1_000_000_000 + Int64(status.st_mtim.tv_nsec))
        if let digest = digests.digest(of: version) { return digest }
        let digest: String
        do {
            digest = try MD5.hexDigest(ofFile: path)
        } catch {
            throw WorkFailure(code: "InternalError", message: "cannot read '\(key)': \(error)")
        }
        digests.remember(digest, of: version)
        return digest
    }
}

/// One content of a file: a replacing `rename` gives a new inode, a rewrite a new time or size.
struct FileVersion: Hashable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modified: Int64
}

/// The MD5s of files read lately, so that HEAD and ListObjects read each file once.
final class DigestCache: Sendable {
    private let digests = Mutex<[FileVersion: String]>([:])
    private let capacity: Int

    init(capacity: Int = 50_000) {
        self.capacity = capacity
    }

    func digest(of version: FileVersion) -> String? {
        digests.withLock { $0[version] }
    }

    func remember(_ digest: String, of version: FileVersion) {
        digests.withLock { digests in
            if digests.count >= capacity { digests.removeAll(keepingCapacity: true) }
            digests[version] = digest
        }
    }
}
