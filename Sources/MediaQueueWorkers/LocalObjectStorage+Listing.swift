import Crypto
import Foundation
import Synchronization
public import MediaQueueCore

/// HEAD and ListObjects on a folder of buckets.
extension LocalObjectStorage {
    /// The ETag is the content's MD5, computed once per version of the file (`DigestCache`); on
    /// a thread of its own, since a version seen first is read whole (`onOwnThread`).
    public func objectInfo(bucket: String, key: ObjectKey) async throws(WorkFailure) -> ObjectInfo? {
        let path = bucketFolder(bucket) + "/" + key.rawValue
        return try await onOwnThread { () throws(WorkFailure) in try info(path: path, key: key.rawValue) }
    }

    /// On a thread of its own, as `objectInfo`.
    public func listObjects(bucket: String, _ query: ObjectListQuery) async throws(WorkFailure) -> ObjectListing {
        try await onOwnThread { () throws(WorkFailure) in try listObjectsNow(bucket: bucket, query) }
    }

    private func listObjectsNow(bucket: String, _ query: ObjectListQuery) throws(WorkFailure) -> ObjectListing {
        let folder = bucketFolder(bucket)
        // Only the folder the prefix names can hold matching keys; one that is no folder inside
        // the bucket (`..`, a staging folder) holds none.
        let start = ObjectKey.folder(of: query.prefix) ?? ""
        guard start.isEmpty || ObjectKey.problem(start) == nil else { return ObjectListing() }
        let keys = SortedKeyWalk(bucketFolder: folder, from: start, query)
        return try ObjectListing.page(ofSorted: keys, query) { key throws(WorkFailure) in try info(path: folder + "/" + key, key: key) }
    }

    /// What a client sees of the file at `path`, read through one descriptor: the size, the
    /// time and the digests are all of the version opened, even when an upload replaces it
    /// meanwhile.
    private func info(path: String, key: String) throws(WorkFailure) -> ObjectInfo? {
        guard let (handle, info) = try opened(path: path, key: key) else { return nil }
        try? handle.close()
        return info
    }

    /// The file at `path` opened for reading, with what a client sees of it; nil when it is no
    /// regular file.
    func opened(path: String, key: String) throws(WorkFailure) -> (FileHandle, ObjectInfo)? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            try? handle.close()
            return nil
        }
        let modified = Timestamp(milliseconds: Int64(status.st_mtim.tv_sec) * 1000 + Int64(status.st_mtim.tv_nsec) / 1_000_000)
        let version = FileVersion(device: UInt64(status.st_dev), inode: UInt64(status.st_ino), size: Int64(status.st_size),
                                  modified: Int64(status.st_mtim.tv_sec) * 1_000_000_000 + Int64(status.st_mtim.tv_nsec))
        let content: FileDigests
        if let known = digests.digests(of: version) {
            content = known
        } else {
            do {
                content = try FileDigests(of: handle)
            } catch {
                try? handle.close()
                throw WorkFailure(code: "InternalError", message: "cannot read '\(key)': \(error)")
            }
            digests.remember(content, of: version)
        }
        return (handle, ObjectInfo(key: key, size: Int(status.st_size), etag: "\"\(content.md5)\"", lastModified: modified, crc64: content.crc64))
    }
}

/// A file's MD5 (its ETag) and `CRC64`, read in one pass.
struct FileDigests: Hashable {
    var md5: String
    var crc64: UInt64

    init(of handle: FileHandle) throws {
        var md5 = Insecure.MD5()
        var crc = CRC64()
        try MD5.forEachChunk(of: handle) { chunk in
            md5.update(data: chunk)
            chunk.withUnsafeBytes { crc.update($0) }
        }
        self.md5 = MD5.hex(md5.finalize())
        crc64 = crc.checksum
    }
}

/// One content of a file: a replacing `rename` gives a new inode, a rewrite a new time or size.
struct FileVersion: Hashable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modified: Int64
}

/// The digests of files read lately, so that HEAD and ListObjects read each file once.
final class DigestCache: Sendable {
    private let digests = Mutex<[FileVersion: FileDigests]>([:])
    private let capacity: Int

    init(capacity: Int = 50_000) {
        self.capacity = capacity
    }

    func digests(of version: FileVersion) -> FileDigests? {
        digests.withLock { $0[version] }
    }

    func remember(_ digest: FileDigests, of version: FileVersion) {
        digests.withLock { digests in
            if digests.count >= capacity { digests.removeAll(keepingCapacity: true) }
            digests[version] = digest
        }
    }
}
