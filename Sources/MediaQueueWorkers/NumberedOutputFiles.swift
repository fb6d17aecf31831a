import Foundation
import MediaQueueCore

/// Numbered files of one job (snapshots, sprites; `${Number}` from 0): ffmpeg writes them into a
/// staging folder of their own (its `%d` pattern), and only finished files are published to their
/// object keys, so a client never sees a half-written file. Whatever the job wrote is removed
/// again when it fails or is cancelled.
struct NumberedOutputFiles: Sendable {
    let names: OutputObjectTemplate
    let maxShots: Int
    /// The extension of the staged files, which tells ffmpeg's muxer what to write.
    let fileExtension: String
    /// The staging folder, beside the first output key.
    let folder: String
    private let storage: any ObjectStorage
    private let bucket: String

    /// Checks every key stays inside the bucket and creates the staging folder.
    ///
    /// - Parameters:
    ///   - kind: tells apart two sets of one job (shots and sprites).
    ///   - fileExtension: nil for images: the format the keys' extension names
    ///     (`SnapshotOptions.imageFormat`).
    init(context: WorkContext, names: OutputObjectTemplate, maxShots: Int, kind: String, fileExtension: String? = nil) throws(WorkFailure) {
        self.names = names
        self.maxShots = maxShots
        self.fileExtension = fileExtension ?? SnapshotOptions.imageFormat(extension: names.fileExtension) ?? "jpg"
        for number in 0..<maxShots {
            _ = try OutputObjectTemplate.key(names.object(number: number))
        }
        storage = context.storage
        bucket = context.bucket
        let first = try OutputObjectTemplate.key(names.object(number: 0))
        folder = try storage.makeStagingFolder(bucket: bucket, name: "\(names.jobID)-\(kind)", for: first)
    }

    /// The output pattern for ffmpeg's image2 and segment muxers (`%d` from 0).
    var ffmpegPattern: String { "\(FFmpegConfiguration.patternEscaped(folder))/%d.\(fileExtension)" }

    /// Hashes the files ffmpeg wrote (consecutive from 0), then publishes them to their keys.
    /// On failure the published objects are removed again and the error is thrown.
    func publish() async throws -> [PublishedObject] {
        var files: [(path: String, object: String)] = []
        for number in 0..<maxShots {
            let path = "\(folder)/\(number).\(fileExtension)"
            guard FileManager.default.fileExists(atPath: path) else { break }
            files.append((path, names.object(number: number)))
        }
        return try await OutputStaging.publish(files, storage: storage, bucket: bucket)
    }

    /// Removes the staging folder; published files are the job's result and stay.
    func removeTemporaryFiles() {
        storage.removeStagingFolder(folder)
    }
}
