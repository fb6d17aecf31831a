import Foundation
import MediaQueueCore

/// A job's input as a local file for ffmpeg: an object of the bucket's storage, or the job's
/// `Input.Url` downloaded into a staging folder of its own (removed by `close()`).
struct JobInput: Sendable {
    /// The key or URL as the client gave it; messages show this, never the server path.
    let source: InputSource
    /// The local file ffmpeg reads.
    let path: String
    /// The download's staging folder (URL inputs, and objects of a remote storage).
    private let downloadFolder: String?
    private let storage: any ObjectStorage

    /// Resolves the job's `Input.Object` (throws `InputNotExist` when the bucket has no such
    /// object) or downloads its `Input.Url` (throws what the downloader throws).
    static func open(_ job: Job, context: WorkContext) async throws -> JobInput {
        let source: InputSource
        do {
            source = try job.inputSource()
        } catch {
            throw error.asWorkFailure
        }
        switch source {
        case .object(let key):
            return try await object(key, context: context)
        case .url(let url):
            guard let downloader = context.downloader else {
                throw WorkFailure(code: "InputFetchFailed", message: "this MediaQueue process does not fetch Input.Url")
            }
            let folder = try context.storage.makeStagingFolder(bucket: context.bucket, name: "\(job.id.rawValue)-input", for: nil)
            let path = folder + "/input" + Self.fileExtension(ofURL: url)
            do {
                try await downloader.download(url, to: path)
            } catch {
                context.storage.removeStagingFolder(folder)
                throw error
            }
            return JobInput(source: source, path: path, downloadFolder: folder, storage: context.storage)
        }
    }

    /// Another object of the job's bucket (e.g. a Concat fragment).
    static func object(_ key: ObjectKey, context: WorkContext) async throws(WorkFailure) -> JobInput {
        guard let file = try await context.storage.readableFile(bucket: context.bucket, key: key) else {
            throw WorkFailure.inputNotExist(key.rawValue)
        }
        return JobInput(source: .object(key), path: file.path, downloadFolder: file.temporaryFolder, storage: context.storage)
    }

    /// Removes a downloaded input (or a storage's downloaded copy); stored objects stay.
    func close() {
        if let downloadFolder { storage.removeStagingFolder(downloadFolder) }
    }

    /// What messages call the input: its key, or its URL without the query (which may hold a
    /// signature).
    var displayName: String {
        switch source {
        case .object(let key): key.rawValue
        case .url(let url): Self.withoutQuery(url)
        }
    }

    /// The input's file name without folders and extension (CI's `${InputName}`); for a URL, its
    /// path's last segment, percent-decoded (`input` when the path has none).
    var name: String {
        let file: String
        switch source {
        case .object(let key):
            file = key.fileName
        case .url(let url):
            let path = Self.withoutQuery(url).split(separator: "/", omittingEmptySubsequences: false).dropFirst(3)
            let last = String(path.last ?? "")
            file = last.removingPercentEncoding ?? last
        }
        return file.isEmpty ? "input" : OutputStaging.stem(file)
    }

    /// `(path, shown as)` for hiding this input's server path in ffmpeg's messages.
    var hiding: (path: String, shownAs: String) { (path, displayName) }

    static func withoutQuery(_ url: String) -> String {
        String(url.prefix { $0 != "?" && $0 != "#" })
    }

    /// `.mp4` for `…/a.mp4?x=1`: short alphanumeric extensions only (they help ffmpeg guess
    /// raw formats), else nothing.
    static func fileExtension(ofURL url: String) -> String {
        let last = withoutQuery(url).split(separator: "/").last ?? ""
        guard let dot = last.lastIndex(of: ".") else { return "" }
        let ext = last[last.index(after: dot)...]
        guard (1...5).contains(ext.count), ext.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else { return "" }
        return "." + ext
    }
}
