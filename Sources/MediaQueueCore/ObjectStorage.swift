public import Foundation

/// Where buckets keep their objects, as the media workers use them.
///
/// ffmpeg and ffprobe read and write local files, so a storage hands out local paths: the file
/// of an input object, and a staging folder for a job's outputs, from which finished files are
/// published as objects. `LocalObjectStorage` (a folder, maybe a shared mount) hands out the
/// objects' own files and publishes by `rename`; `S3ObjectStorage` downloads inputs into a scratch
/// folder and uploads on `publish`.
///
/// Keys reach a storage only as `ObjectKey`s, which cannot leave their bucket.
public protocol ObjectStorage: Sendable {
    /// A local file with the content of object `key`, or nil when the bucket has no such object.
    /// Failures other than a missing object (the storage refused the key, cannot be reached)
    /// throw.
    func readableFile(bucket: String, key: ObjectKey) async throws(WorkFailure) -> ReadableFile?

    /// A local file holding bytes `range` of object `key` at least (`ReadableFile.firstByte`
    /// says where in the object it begins): for a ranged read, which a storage that downloads
    /// should not pay for with the whole object. Nil when there is no such object.
    func readableFile(bucket: String, key: ObjectKey, range: Range<Int>) async throws(WorkFailure) -> ReadableFile?

    /// Object `key` for a download (GET): what a client sees of it and, where the storage can
    /// hold on to that version (a local file opened once), its file; nil when there is no such
    /// object. Without a file, the bytes come from `readableFile(bucket:key:range:)`, whose
    /// `etag` says whether they are of the same version.
    func openObject(bucket: String, key: ObjectKey) async throws(WorkFailure) -> OpenObject?

    /// Whether object `key` exists, without reading its content.
    func exists(bucket: String, key: ObjectKey) async throws(WorkFailure) -> Bool

    /// Why the storage could not keep an object at `key` beside the objects it holds now (a
    /// folder storage: `a` and `a/b` both), or nil when it could: checked before an upload.
    func conflict(of key: ObjectKey, bucket: String) -> String?

    /// Creates an empty folder in which a job writes files before they are published to `key`
    /// and keys beside it (publishing from it must be cheap and atomic, e.g. the same file
    /// system); nil: files that are never published (a downloaded input). `name` is unique per
    /// job and purpose, e.g. `<jobid>-shot`. Failures name `key`.
    func makeStagingFolder(bucket: String, name: String, for key: ObjectKey?) throws(WorkFailure) -> String

    /// Makes the local file at `path` the object `key`, replacing an existing object atomically;
    /// the local file is used up (moved or uploaded, then gone from the staging folder or not).
    /// Returns the ETag the storage gave the object when it makes its own (S3's multipart ETag
    /// is not the content's MD5), nil when it is the content's MD5.
    @discardableResult
    func publish(_ path: String, bucket: String, as key: ObjectKey) async throws(WorkFailure) -> String?

    /// Removes object `key`; a missing object is fine. Throws when the storage refused it or
    /// could not be reached (a rollback of outputs may ignore that; a client's DELETE may not).
    func remove(bucket: String, key: ObjectKey) async throws(WorkFailure)

    /// What a client sees of object `key` (size, ETag, time), or nil when the bucket has none.
    func objectInfo(bucket: String, key: ObjectKey) async throws(WorkFailure) -> ObjectInfo?

    /// One page of the bucket's objects, as ListObjects gives them (`ObjectListing.page`).
    func listObjects(bucket: String, _ query: ObjectListQuery) async throws(WorkFailure) -> ObjectListing

    /// Removes a staging folder made by `makeStagingFolder` and whatever is still in it.
    func removeStagingFolder(_ path: String)

    /// Local path prefixes of the bucket's files, each with what a client knows it as, for
    /// removing server paths from messages (ffmpeg's errors name the files it opened).
    func displayPrefixes(bucket: String) -> [(path: String, shownAs: String)]
}

/// An object opened for reading as a local file.
public struct ReadableFile: Sendable, Hashable {
    public var path: String
    /// The folder of a downloaded copy, for the reader to remove (`removeStagingFolder`) once it
    /// is done; nil when `path` is the object's own file.
    public var temporaryFolder: String?
    /// The object's offset of the file's first byte: 0 but for a download of part of it.
    public var firstByte: Int
    /// The file opened once, when it is the object's own: read through this, the bytes are
    /// those of the version opened even when the object is replaced meanwhile (a `rename` over
    /// it). ffmpeg, which needs a path, reads `path`.
    public var opened: FileHandle?
    /// The ETag of the version downloaded, when the storage reports it.
    public var etag: String?

    public init(path: String, temporaryFolder: String? = nil, firstByte: Int = 0, opened: FileHandle? = nil, etag: String? = nil) {
        self.path = path
        self.temporaryFolder = temporaryFolder
        self.firstByte = firstByte
        self.opened = opened
        self.etag = etag
    }
}

/// An object as a download finds it: `info` and, when the storage has it at hand, the file of
/// that same version.
public struct OpenObject: Sendable {
    public var info: ObjectInfo
    public var file: ReadableFile?

    public init(info: ObjectInfo, file: ReadableFile? = nil) {
        self.info = info
        self.file = file
    }
}

extension ObjectStorage {
    /// Any key: a store of keys (S3) keeps `a` and `a/b` both.
    public func conflict(of key: ObjectKey, bucket: String) -> String? { nil }

    /// Refuses `key` for an upload to `bucket`, the same for the API's PUT and the CLI's put: a
    /// part longer than a file name (each becomes one, a staging file on every storage), or a key
    /// this storage cannot hold beside what it holds (`conflict`).
    public func checkUpload(of key: ObjectKey, bucket: String) throws(CIError) {
        if let long = key.rawValue.split(separator: "/").first(where: { $0.utf8.count > ObjectKey.maxPartBytes }) {
            throw CIError(
                .invalidArgument, "the object key's part '\(long.prefix(32))…' is \(long.utf8.count) bytes; at most \(ObjectKey.maxPartBytes) between slashes",
                element: "Key"
            )
        }
        if let conflict = conflict(of: key, bucket: bucket) {
            throw CIError(.invalidArgument, "the object key \(key.rawValue): \(conflict)", element: "Key")
        }
    }

    /// For a storage whose info costs no read of the content (S3's HEAD).
    public func exists(bucket: String, key: ObjectKey) async throws(WorkFailure) -> Bool {
        try await objectInfo(bucket: bucket, key: key) != nil
    }

    /// The object's info alone: its bytes are downloaded afterwards.
    public func openObject(bucket: String, key: ObjectKey) async throws(WorkFailure) -> OpenObject? {
        try await objectInfo(bucket: bucket, key: key).map { OpenObject(info: $0) }
    }

    /// The whole object's file: for storages whose files are the objects' own.
    public func readableFile(bucket: String, key: ObjectKey, range: Range<Int>) async throws(WorkFailure) -> ReadableFile? {
        try await readableFile(bucket: bucket, key: key)
    }
}

/// Downloads a job's `Input.Url` (an http or https URL) into a local file.
public protocol InputDownloader: Sendable {
    /// Writes the body of a successful GET of `url` to the file at `path` (created or replaced).
    /// Throws a `WorkFailure` with a CI-style code when the URL cannot be fetched, or
    /// `CancellationError` when the task was cancelled.
    func download(_ url: String, to path: String) async throws
}
