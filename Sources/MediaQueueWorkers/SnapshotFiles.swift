import Foundation
import MediaQueueCore

/// The files one Snapshot job writes: ffmpeg renders into hidden temporary names beside the
/// first output, and only finished files are renamed to their object keys, so a client never
/// sees a half-written image. Whatever the job wrote is removed again when it fails or is
/// cancelled.
struct SnapshotFiles: Sendable {
    /// One published shot.
    struct Published: Sendable, Hashable {
        var object: String
        var md5: String
    }

    let bucketRoot: String
    let names: OutputObjectTemplate
    let maxShots: Int
    /// The folder of the first output key, where the temporary files go (same file system as
    /// every output, so renaming is atomic).
    let temporaryFolder: String
    private let temporaryPrefix: String

    init(bucketRoot: String, names: OutputObjectTemplate, maxShots: Int) {
        self.bucketRoot = bucketRoot
        self.names = names
        self.maxShots = maxShots
        temporaryFolder = Self.folder(of: bucketRoot + "/" + names.object(number: 0))
        temporaryPrefix = ".mediaqueue-\(names.jobID)-"
    }

    /// The output pattern for ffmpeg's image2 muxer (`%d` from `-start_number 0`).
    var ffmpegPattern: String { "\(temporaryFolder)/\(temporaryPrefix)%d.\(imageExtension)" }

    /// `png` when the keys end in `.png`, else `jpg` (JPEG is CI's default shot format).
    var imageExtension: String { names.fileExtension == "png" ? "png" : "jpg" }

    /// Checks every key stays inside the bucket and creates the temporary folder.
    func prepare() throws(WorkFailure) {
        for number in 0..<maxShots {
            let object = names.object(number: number)
            // The wildcards may bring in `..` (e.g. an input named `...mp4`); never leave the bucket.
            if object.hasPrefix("/") || object.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) {
                throw WorkFailure.invalidArgument("Operation.Output.Object", "'\(object)' is not a key inside the bucket")
            }
        }
        try createFolder(temporaryFolder, for: names.object(number: 0))
    }

    /// Hashes the shots ffmpeg wrote (consecutive from 0), then renames them to their keys.
    /// On failure the renamed files are removed again and the error is thrown.
    func publish() throws -> [Published] {
        var shots: [(temporary: String, object: String, md5: String)] = []
        for number in 0..<maxShots {
            let temporary = temporaryPath(number)
            guard FileManager.default.fileExists(atPath: temporary) else { break }
            try Task.checkCancellation()
            let object = names.object(number: number)
            let md5: String
            do {
                md5 = try MD5.hexDigest(ofFile: temporary)
            } catch {
                throw WorkFailure.outputWriteFailed(object, "cannot read the rendered image: \(error)")
            }
            shots.append((temporary, object, md5))
        }
        var renamed: [String] = []
        do {
            for shot in shots {
                let path = bucketRoot + "/" + shot.object
                let folder = Self.folder(of: path)
                if folder != temporaryFolder { try createFolder(folder, for: shot.object) }
                // rename(2) replaces an existing object atomically, as an overwrite in CI would.
                guard rename(shot.temporary, path) == 0 else {
                    throw WorkFailure.outputWriteFailed(shot.object, String(cString: strerror(errno)))
                }
                renamed.append(path)
            }
        } catch {
            for path in renamed { try? FileManager.default.removeItem(atPath: path) }
            throw error
        }
        return shots.map { Published(object: $0.object, md5: $0.md5) }
    }

    /// Removes the temporary files; published files are the job's result and stay.
    func removeTemporaryFiles() {
        for number in 0..<maxShots {
            let path = temporaryPath(number)
            if FileManager.default.fileExists(atPath: path) { try? FileManager.default.removeItem(atPath: path) }
        }
    }

    private func temporaryPath(_ number: Int) -> String {
        "\(temporaryFolder)/\(temporaryPrefix)\(number).\(imageExtension)"
    }

    private func createFolder(_ folder: String, for object: String) throws(WorkFailure) {
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

    private static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return String(path[..<slash])
    }
}
