import Foundation
import MediaQueueCore

/// The files one job writes, staged in a folder of the storage's beside its outputs under their
/// final file names, and published to their object keys only once ffmpeg has finished: a client
/// never sees a half-written file, and HLS playlists keep pointing at their segments, which keep
/// their names.
///
/// `remove()` deletes the staging folder with whatever is left in it; a failed or cancelled job
/// therefore leaves nothing behind.
struct OutputStaging: Sendable {
    let storage: any ObjectStorage
    let bucket: String
    /// The key's folder of the first output, e.g. `out/hls` (empty at the bucket's top).
    let outputFolder: String
    /// Local path of the staging folder.
    let folder: String

    /// Checks `object` stays inside the bucket and creates the staging folder for it.
    init(context: WorkContext, jobID: String, object: String) throws(WorkFailure) {
        let key = try OutputObjectTemplate.key(object)
        storage = context.storage
        bucket = context.bucket
        outputFolder = key.folder
        folder = try storage.makeStagingFolder(bucket: bucket, name: jobID, for: key)
    }

    /// Where ffmpeg writes the file that becomes `object` (its file name inside the staging folder).
    func path(for object: String) -> String {
        folder + "/" + Self.fileName(ofKey: object)
    }

    /// The key a file of the staging folder gets when published beside the first output.
    func object(forFile name: String) -> String {
        outputFolder.isEmpty ? name : outputFolder + "/" + name
    }

    /// `(path, shown as)` for hiding the staging folder in ffmpeg's messages.
    var hiding: (path: String, shownAs: String) {
        (folder + "/", outputFolder.isEmpty ? "" : outputFolder + "/")
    }

    /// The names of the files in the staging folder, sorted naturally (`a-2.ts` before `a-10.ts`).
    func stagedFiles() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.sorted { $0.compare($1, options: .numeric) == .orderedAscending }
    }

    /// Hashes the staged files of `objects`, then publishes them in that order (see
    /// `publish(_:)` with pairs).
    func publish(_ objects: [String]) async throws -> [PublishedObject] {
        try await publish(objects.map { (Self.fileName(ofKey: $0), $0) })
    }

    /// Publishes staged file `file` as `object`, for each pair in order (put a playlist last, so
    /// it never points at segments that are not there yet). On failure the objects published so
    /// far are removed again and the error is thrown.
    func publish(_ files: [(file: String, object: String)]) async throws -> [PublishedObject] {
        try await Self.publish(files.map { (folder + "/" + $0.file, $0.object) }, storage: storage, bucket: bucket)
    }

    /// Removes the staging folder and what is left in it; published files stay.
    func remove() {
        storage.removeStagingFolder(folder)
    }

    /// Hashes every local file, then publishes each as its object, in order; on failure the
    /// objects published so far that are new are removed again and the error is thrown. One
    /// that replaced an object keeps its new content: removing it would lose both versions.
    static func publish(
        _ files: [(path: String, object: String)], storage: any ObjectStorage, bucket: String
    ) async throws -> [PublishedObject] {
        var published: [PublishedObject] = []
        for (path, object) in files {
            let key = try OutputObjectTemplate.key(object)
            try Task.checkCancellation()
            do {
                published.append(PublishedObject(key: key, md5: try await onOwnThread { try MD5.hexDigest(ofFile: path) }))
            } catch {
                throw WorkFailure.outputWriteFailed(object, "ffmpeg did not write it")
            }
        }
        var done: [PublishedObject] = []
        do {
            for ((path, _), var output) in zip(files, published) {
                // A look that fails counts as "there was one": only what surely is new is removed.
                output.replaced = (try? await storage.exists(bucket: bucket, key: output.key)) != false
                try await storage.publish(path, bucket: bucket, as: output.key)
                done.append(output)
            }
        } catch {
            await unpublish(done, storage: storage, bucket: bucket)
            throw error
        }
        return done
    }

    /// Removes the objects of `published` that the job created (not those it replaced), also
    /// when the job was cancelled: in a task of its own, since the S3 storage's client sends
    /// nothing from a cancelled task.
    static func unpublish(_ published: [PublishedObject], storage: any ObjectStorage, bucket: String) async {
        let created = published.filter { !$0.replaced }
        guard !created.isEmpty else { return }
        // What cannot be removed stays: the job fails either way, and says why.
        await Task {
            for object in created { try? await storage.remove(bucket: bucket, key: object.key) }
        }.value
    }

    /// The last segment of a key, split by bytes as `ObjectKey` splits it.
    static func fileName(ofKey key: String) -> String {
        ObjectKey.lastSegment(of: key)
    }

    /// A file name without its extension (a leading dot is part of the name).
    static func stem(_ fileName: String) -> String {
        guard let dot = fileName.lastIndex(of: "."), dot != fileName.startIndex else { return fileName }
        return String(fileName[..<dot])
    }
}

/// One output written to the bucket, with the MD5 CI reports for it.
struct PublishedObject: Sendable, Hashable {
    var key: ObjectKey
    var md5: String
    /// Whether it replaced an object of that key (then it is not removed when the job fails).
    var replaced = false

    var object: String { key.rawValue }
}

extension WorkContext {
    /// Removes the objects a job created before it failed (those it replaced keep their new
    /// content: removing them would lose both versions).
    func unpublish(_ objects: [PublishedObject]) async {
        await OutputStaging.unpublish(objects, storage: storage, bucket: bucket)
    }
}
