import Foundation
import MediaQueueCore

/// The files one job writes, staged in a hidden folder beside its outputs
/// (`<output folder>/.mediaqueue-<jobid>/`) under their final file names, and renamed to their
/// object keys only once ffmpeg has finished: a client never sees a half-written file, and HLS
/// playlists keep pointing at their segments, which keep their names.
///
/// `remove()` deletes the staging folder with whatever is left in it; a failed or cancelled job
/// therefore leaves nothing behind.
struct OutputStaging: Sendable {
    let bucketRoot: String
    /// The key's folder of the first output, e.g. `out/hls` (empty at the bucket's top).
    let outputFolder: String
    /// Absolute path of the staging folder.
    let folder: String

    /// Checks `object` stays inside the bucket and creates the staging folder next to it.
    init(bucketRoot: String, jobID: String, object: String) throws(WorkFailure) {
        try OutputObjectTemplate.checkInsideBucket(object)
        self.bucketRoot = bucketRoot
        outputFolder = Self.folder(ofKey: object)
        folder = bucketRoot + "/" + (outputFolder.isEmpty ? "" : outputFolder + "/") + ".mediaqueue-\(jobID)"
        try Self.createFolder(folder, for: object)
    }

    /// Where ffmpeg writes the file that becomes `object` (its file name inside the staging folder).
    func path(for object: String) -> String {
        folder + "/" + Self.fileName(ofKey: object)
    }

    /// The key a file of the staging folder gets when published beside the first output.
    func object(forFile name: String) -> String {
        outputFolder.isEmpty ? name : outputFolder + "/" + name
    }

    /// The names of the files in the staging folder, sorted naturally (`a-2.ts` before `a-10.ts`).
    func stagedFiles() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.sorted { $0.compare($1, options: .numeric) == .orderedAscending }
    }

    /// Hashes the staged files of `objects`, then renames them to their keys in that order
    /// (put a playlist last, so it never points at segments that are not there yet). On failure
    /// the files renamed so far are removed and the error is thrown.
    func publish(_ objects: [String]) throws -> [PublishedObject] {
        try publish(objects.map { (Self.fileName(ofKey: $0), $0) })
    }

    /// Publishes staged file `file` as `object`, for each pair in order (see `publish(_:)`).
    func publish(_ files: [(file: String, object: String)]) throws -> [PublishedObject] {
        var published: [PublishedObject] = []
        for (file, object) in files {
            try OutputObjectTemplate.checkInsideBucket(object)
            try Task.checkCancellation()
            do {
                published.append(PublishedObject(object: object, md5: try MD5.hexDigest(ofFile: folder + "/" + file)))
            } catch {
                throw WorkFailure.outputWriteFailed(object, "ffmpeg did not write it")
            }
        }
        var renamed: [String] = []
        do {
            for (file, object) in files {
                let target = bucketRoot + "/" + object
                try Self.createFolder(Self.folder(ofPath: target), for: object)
                // rename(2) replaces an existing object atomically, as an overwrite in CI would.
                guard rename(folder + "/" + file, target) == 0 else {
                    throw WorkFailure.outputWriteFailed(object, String(cString: strerror(errno)))
                }
                renamed.append(target)
            }
        } catch {
            for path in renamed { try? FileManager.default.removeItem(atPath: path) }
            throw error
        }
        return published
    }

    /// Removes the staging folder and what is left in it; published files stay.
    func remove() {
        try? FileManager.default.removeItem(atPath: folder)
    }

    static func createFolder(_ folder: String, for object: String) throws(WorkFailure) {
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

    static func folder(ofKey key: String) -> String {
        guard let slash = key.lastIndex(of: "/") else { return "" }
        return String(key[..<slash])
    }

    static func folder(ofPath path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return String(path[..<slash])
    }

    static func fileName(ofKey key: String) -> String {
        key.split(separator: "/").last.map(String.init) ?? key
    }
}

/// One output written to the bucket, with the MD5 CI reports for it.
struct PublishedObject: Sendable, Hashable {
    var object: String
    var md5: String
}
