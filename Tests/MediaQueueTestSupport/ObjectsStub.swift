public import MediaQueueCore

/// A storage that only answers `objectInfo`, for what checks whether an object is there and
/// when it was written (replaying interrupted uploads); nil `key` holds no object.
public struct ObjectsStub: ObjectStorage {
    let key: String?
    let written: Timestamp
    /// Keys under it cannot be read (`objectInfo` fails), as with a storage that is away.
    let unreadablePrefix: String?

    public init(key: String? = nil, written: Timestamp = Timestamp(milliseconds: 0), unreadablePrefix: String? = nil) {
        self.key = key
        self.written = written
        self.unreadablePrefix = unreadablePrefix
    }

    public func objectInfo(bucket: String, key: ObjectKey) async throws(WorkFailure) -> ObjectInfo? {
        if let unreadablePrefix, key.rawValue.hasPrefix(unreadablePrefix) {
            throw WorkFailure(code: "InternalError", message: "the storage could not be read")
        }
        return key.rawValue == self.key ? ObjectInfo(key: key.rawValue, size: 1, etag: "\"e\"", lastModified: written) : nil
    }

    public func readableFile(bucket: String, key: ObjectKey) async throws(WorkFailure) -> ReadableFile? { nil }
    public func makeStagingFolder(bucket: String, name: String, for key: ObjectKey?) throws(WorkFailure) -> String { "" }
    public func publish(_ path: String, bucket: String, as key: ObjectKey) async throws(WorkFailure) -> String? { nil }
    public func remove(bucket: String, key: ObjectKey) async {}
    public func listObjects(bucket: String, _ query: ObjectListQuery) async throws(WorkFailure) -> ObjectListing { ObjectListing() }
    public func removeStagingFolder(_ path: String) {}
    public func displayPrefixes(bucket: String) -> [(path: String, shownAs: String)] { [] }
}
