import Foundation

/// A bucket's storage folder for one test: `<unique temp folder>/<bucket>/`, removed by `remove()`.
public struct TemporaryBucket: Sendable {
    /// The unique folder that holds the bucket.
    public let root: String
    /// The bucket name, e.g. `test-1250000000`.
    public let bucket: String

    /// The folder of the bucket's objects (what a worker gets as `bucketRoot`).
    public var bucketRoot: String { root + "/" + bucket }

    public init(bucket: String = "test-1250000000") throws {
        root = NSTemporaryDirectory() + "/" + TestEnvironment.uniqueName("mediaqueue-bucket")
        self.bucket = bucket
        try FileManager.default.createDirectory(atPath: root + "/" + bucket, withIntermediateDirectories: true)
    }

    /// The storage path of `object`.
    public func path(_ object: String) -> String { bucketRoot + "/" + object }

    /// Every file below the bucket folder, as object keys (hidden temporary files included), sorted.
    public func objects() -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: bucketRoot) else { return [] }
        var keys: [String] = []
        while let key = enumerator.nextObject() as? String {
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: path(key), isDirectory: &isFolder), !isFolder.boolValue {
                keys.append(key)
            }
        }
        return keys.sorted()
    }

    /// Deletes the whole temporary folder.
    public func remove() {
        try? FileManager.default.removeItem(atPath: root)
    }
}
