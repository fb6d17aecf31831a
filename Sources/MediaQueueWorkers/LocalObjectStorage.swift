import Foundation
public import MediaQueueCore

/// Buckets as folders of one local directory: object `a/b.mp4` of bucket `media-1250000000` is
/// the file `<root>/media-1250000000/a/b.mp4`.
///
/// Staging folders are hidden folders beside the outputs (`<folder>/.mediaqueue-<name>/`): on
/// the same file system, so publishing is one atomic `rename(2)`, and out of every key's reach
/// (`ObjectKey` refuses the `.mediaqueue-` prefix).
public struct LocalObjectStorage: ObjectStorage {
    public let root: String
    let digests = DigestCache()

    public init(root: String) {
        self.root = root
    }

    public func readableFile(bucket: String, key: ObjectKey) -> ReadableFile? {
        let path = bucketFolder(bucket) + "/" + key.rawValue
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue else { return nil }
        return ReadableFile(path: path)
    }

    /// The object's file opened once: its info and the bytes read through it are of one version.
    /// On a thread of its own, as `objectInfo` and `listObjects`: a version seen first is read
    /// whole for its digests.
    public func openObject(bucket: String, key: ObjectKey) async throws(WorkFailure) -> OpenObject? {
        let path = bucketFolder(bucket) + "/" + key.rawValue
        return try await onOwnThread { () throws(WorkFailure) in
            try opened(path: path, key: key.rawValue).map { handle, info in
                OpenObject(info: info, file: ReadableFile(path: path, opened: handle))
            }
        }
    }

    public func makeStagingFolder(bucket: String, name: String, for key: ObjectKey?) throws(WorkFailure) -> String {
        let folder = key?.folder ?? ""
        let parent = bucketFolder(bucket) + (folder.isEmpty ? "" : "/" + folder)
        let staging = parent + "/" + ObjectKey.reservedPrefix + name
        // A folder left by a process that died mid-job holds nothing anyone wants.
        try? FileManager.default.removeItem(atPath: staging)
        try Self.createFolder(staging, for: key?.rawValue ?? "the input download")
        return staging
    }

    @discardableResult
    public func publish(_ path: String, bucket: String, as key: ObjectKey) throws(WorkFailure) -> String? {
        let target = bucketFolder(bucket) + "/" + key.rawValue
        // The object's time is its publishing, as S3's Last-Modified is (a copied file keeps its own).
        utimes(path, nil)
        // An empty folder of the key's name holds no object: it gives way, as in S3.
        rmdir(target)
        // Twice: a removal may take away the key's folder, emptied, between its making and the rename.
        for attempt in 1...2 {
            if !key.folder.isEmpty { try Self.createFolder(bucketFolder(bucket) + "/" + key.folder, for: key.rawValue) }
            // rename(2) replaces an existing object atomically, as an overwrite in CI would.
            if rename(path, target) == 0 { return nil }
            guard errno == ENOENT, attempt == 1, FileManager.default.fileExists(atPath: path) else { break }
        }
        throw WorkFailure.outputWriteFailed(key.rawValue, String(cString: strerror(errno)))
    }

    /// Files and folders are one tree here: `a` and `a/b` cannot both be kept.
    public func conflict(of key: ObjectKey, bucket: String) -> String? {
        let root = bucketFolder(bucket)
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: root + "/" + key.rawValue, isDirectory: &isFolder), isFolder.boolValue,
           (try? FileManager.default.contentsOfDirectory(atPath: root + "/" + key.rawValue))?.isEmpty != true {
            return "objects under \(key.rawValue)/ exist, and the folder storage keeps no object of that name beside them"
        }
        var folder = key.folder
        while !folder.isEmpty {
            if FileManager.default.fileExists(atPath: root + "/" + folder, isDirectory: &isFolder) {
                return isFolder.boolValue ? nil : "the object \(folder) is where a folder of the key would be, and the folder storage keeps no keys under an object's name"
            }
            folder = ObjectKey.folder(of: folder) ?? ""
        }
        return nil
    }

    /// A regular file at the key: its digests (`objectInfo`) would read it whole.
    public func exists(bucket: String, key: ObjectKey) -> Bool {
        var status = stat()
        return lstat(bucketFolder(bucket) + "/" + key.rawValue, &status) == 0 && status.st_mode & S_IFMT == S_IFREG
    }

    /// Removes the object's file, and its folders that are left empty; a folder of that name
    /// (keys under it) stays, as in S3.
    public func remove(bucket: String, key: ObjectKey) throws(WorkFailure) {
        let path = bucketFolder(bucket) + "/" + key.rawValue
        var status = stat()
        guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { return }
        guard unlink(path) == 0 || errno == ENOENT else {
            throw WorkFailure(code: "InternalError", message: "cannot remove '\(key.rawValue)': \(String(cString: strerror(errno)))")
        }
        removeEmptyFolders(from: key.folder, bucket: bucket)
    }

    public func removeStagingFolder(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
        // The folders made for a key whose job or upload failed: empty, they would stand in the
        // way of an object of their name, though no listing shows them.
        let bucketsRoot = root + "/"
        guard path.hasPrefix(bucketsRoot) else { return }
        let inside = path.dropFirst(bucketsRoot.count).split(separator: "/", omittingEmptySubsequences: false)
        guard inside.count > 2 else { return }
        removeEmptyFolders(from: inside[1..<(inside.count - 1)].joined(separator: "/"), bucket: String(inside[0]))
    }

    /// Removes `folder` of `bucket` and its parents, as long as they are empty (rmdir(2) leaves a
    /// folder that is not); never the bucket's own folder.
    private func removeEmptyFolders(from folder: String, bucket: String) {
        var folder = folder
        while !folder.isEmpty, rmdir(bucketFolder(bucket) + "/" + folder) == 0 {
            folder = ObjectKey.folder(of: folder) ?? ""
        }
    }

    public func displayPrefixes(bucket: String) -> [(path: String, shownAs: String)] {
        [(bucketFolder(bucket) + "/", "")]
    }

    func bucketFolder(_ bucket: String) -> String {
        root + "/" + bucket
    }

    /// Creates `folder` with its parents; a file in the way fails the output `object`.
    private static func createFolder(_ folder: String, for object: String) throws(WorkFailure) {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) {
            guard isFolder.boolValue else {
                throw WorkFailure.outputWriteFailed(object, "a file is in the way of its folder")
            }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw WorkFailure.outputWriteFailed(object, "cannot create its folder")
        }
    }
}
