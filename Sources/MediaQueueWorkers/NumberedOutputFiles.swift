import Foundation
import MediaQueueCore

/// Numbered files of one job (snapshots, sprites, segments; `${Number}` from 0): ffmpeg writes
/// them under hidden temporary names beside the first output (its `%d` pattern), and only
/// finished files are renamed to their object keys, so a client never sees a half-written file.
/// Whatever the job wrote is removed again when it fails or is cancelled.
struct NumberedOutputFiles: Sendable {
    let bucketRoot: String
    let names: OutputObjectTemplate
    let maxShots: Int
    /// The extension of the temporary files, which tells ffmpeg's muxer what to write.
    let fileExtension: String
    /// The folder of the first output key, where the temporary files go (same file system as
    /// every output, so renaming is atomic).
    let temporaryFolder: String
    private let temporaryPrefix: String

    /// - Parameters:
    ///   - kind: tells apart the temporary files of two sets of one job (shots and sprites).
    ///   - fileExtension: nil for images: `png` when the keys end in `.png`, else `jpg` (JPEG is
    ///     CI's default shot format).
    init(bucketRoot: String, names: OutputObjectTemplate, maxShots: Int, kind: String = "out", fileExtension: String? = nil) {
        self.bucketRoot = bucketRoot
        self.names = names
        self.maxShots = maxShots
        self.fileExtension = fileExtension ?? (names.fileExtension == "png" ? "png" : "jpg")
        temporaryFolder = Self.folder(of: bucketRoot + "/" + names.object(number: 0))
        temporaryPrefix = ".mediaqueue-\(names.jobID)-\(kind)-"
    }

    /// The output pattern for ffmpeg's image2 and segment muxers (`%d` from 0).
    var ffmpegPattern: String { "\(FFmpegConfiguration.patternEscaped(temporaryFolder))/\(temporaryPrefix)%d.\(fileExtension)" }

    /// Checks every key stays inside the bucket and creates the temporary folder.
    func prepare() throws(WorkFailure) {
        for number in 0..<maxShots {
            try OutputObjectTemplate.checkInsideBucket(names.object(number: number))
        }
        try OutputStaging.createFolder(temporaryFolder, for: names.object(number: 0))
    }

    /// Hashes the shots ffmpeg wrote (consecutive from 0), then renames them to their keys.
    /// On failure the renamed files are removed again and the error is thrown.
    func publish() throws -> [PublishedObject] {
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
                if folder != temporaryFolder { try OutputStaging.createFolder(folder, for: shot.object) }
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
        return shots.map { PublishedObject(object: $0.object, md5: $0.md5) }
    }

    /// Removes the temporary files; published files are the job's result and stay.
    func removeTemporaryFiles() {
        for number in 0..<maxShots {
            let path = temporaryPath(number)
            if FileManager.default.fileExists(atPath: path) { try? FileManager.default.removeItem(atPath: path) }
        }
    }

    private func temporaryPath(_ number: Int) -> String {
        "\(temporaryFolder)/\(temporaryPrefix)\(number).\(fileExtension)"
    }

    private static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return String(path[..<slash])
    }
}
