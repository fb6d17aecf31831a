import Foundation
import MediaQueueCore
import MediaQueueTestSupport
import Testing
@testable import MediaQueueWorkers

/// The local store's listing, on prefixes that are strange as Characters.
@Suite struct LocalListingTests {
    /// `"in/\u{301}"`: the `/` and the combining mark after it are one Character, so a search for
    /// the Character "/" found none where the bytes have one; a force unwrap then stopped the process.
    @Test func aPrefixWhoseLastSlashCarriesACombiningMarkListsThatFolder() async throws {
        let bucket = try TemporaryBucket()
        try FileManager.default.createDirectory(atPath: bucket.bucketRoot + "/in", withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: bucket.bucketRoot + "/in/\u{301}x.mp4", contents: Data("x".utf8)))
        #expect(FileManager.default.createFile(atPath: bucket.bucketRoot + "/in/a.mp4", contents: Data("x".utf8)))
        let storage = LocalObjectStorage(root: bucket.root)
        var query = ObjectListQuery()
        query.prefix = "in/\u{301}"
        let listed = try await storage.listObjects(bucket: bucket.bucket, query).objects.map(\.key)
        #expect(listed == ["in/\u{301}x.mp4"])
        let folder = try await storage.listObjects(bucket: bucket.bucket, ObjectListQuery(prefix: "in/")).objects.map(\.key)
        #expect(folder == ["in/a.mp4", "in/\u{301}x.mp4"], "a key is in its folder by its bytes, whatever Character its / is part of")
        #expect(ObjectKey.folder(of: "in/\u{301}") == "in" && ObjectKey.folder(of: "top") == nil)
    }
}

/// The local store walks its folders in key order and only as far as a page needs: every page
/// is the one the listing of all keys, sorted, gives.
@Suite struct LocalListingPagesTests {
    /// Names chosen so that a folder's name is followed, in byte order, by names that sort
    /// between it and its keys (`a-b`, `a.b` against `a/…`), with empty folders, deep folders and
    /// names past ASCII.
    static let keys = [
        "a!", "a-b", "a.b", "a/0", "a/b/c", "a/b/d/e", "a/b-x", "a/bc/1", "a/bc/2", "a0", "b/1", "b/2/x", "b/2/y", "b/3",
        "c/x/y/z", "d", "é/1", "z-",
    ]

    @Test func everyPageIsThePageOfAllKeysSorted() async throws {
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        for key in Self.keys {
            try FileManager.default.createDirectory(atPath: bucket.path(ObjectKey.folder(of: key) ?? ""), withIntermediateDirectories: true)
            #expect(FileManager.default.createFile(atPath: bucket.path(key), contents: Data(key.utf8)))
        }
        try FileManager.default.createDirectory(atPath: bucket.path("empty/inner"), withIntermediateDirectories: true)
        let storage = LocalObjectStorage(root: bucket.root)
        let info: (String) throws(WorkFailure) -> ObjectInfo? = { key in ObjectInfo(key: key, size: 0, etag: "", lastModified: Timestamp(seconds: 0)) }
        for prefix in ["", "a", "a/", "a/b", "a/b/", "b/", "c/x", "e", "é"] {
            for delimiter in ["", "/", "-", "b"] {
                for maxKeys in [1, 2, 3, 1000] {
                    var query = ObjectListQuery(prefix: prefix, delimiter: delimiter, maxKeys: maxKeys)
                    var pages = 0
                    while true {
                        let listed = try await storage.listObjects(bucket: bucket.bucket, query)
                        let expected = try ObjectListing.page(of: Self.keys, query, info: info)
                        #expect(listed.objects.map(\.key) == expected.objects.map(\.key), "\(query)")
                        #expect(listed.commonPrefixes == expected.commonPrefixes, "\(query)")
                        #expect(listed.isTruncated == expected.isTruncated && listed.nextMarker == expected.nextMarker, "\(query)")
                        pages += 1
                        guard expected.isTruncated, let next = expected.nextMarker, pages < 50 else { break }
                        query.marker = next
                    }
                }
            }
        }
    }
}

/// A download reads one version of an object, whatever uploads replace it meanwhile.
@Suite struct LocalOpenObjectTests {
    @Test func anOpenedObjectKeepsItsVersionWhenAnUploadReplacesIt() async throws {
        let bucket = try TemporaryBucket()
        let storage = LocalObjectStorage(root: bucket.root)
        let key = try ObjectKey("in/a.bin")
        try publish("first version", as: key, in: bucket, storage)
        let object = try #require(try await storage.openObject(bucket: bucket.bucket, key: key))
        try publish("the second, longer version", as: key, in: bucket, storage)

        #expect(object.info.size == 13 && object.info.etag == "\"\(MD5.hexDigest(of: Data("first version".utf8)))\"")
        let handle = try #require(object.file?.opened)
        try handle.seek(toOffset: 0)
        #expect(try handle.readToEnd() == Data("first version".utf8), "the bytes of the version whose info was given")
        #expect(try await storage.objectInfo(bucket: bucket.bucket, key: key)?.size == 26, "a new look finds the new version")
    }

    private func publish(_ text: String, as key: ObjectKey, in bucket: TemporaryBucket, _ storage: LocalObjectStorage) throws {
        let staging = try storage.makeStagingFolder(bucket: bucket.bucket, name: "upload", for: key)
        #expect(FileManager.default.createFile(atPath: staging + "/file", contents: Data(text.utf8)))
        try storage.publish(staging + "/file", bucket: bucket.bucket, as: key)
        storage.removeStagingFolder(staging)
    }
}

/// Outputs published before a later one failed: those the job created go, those it replaced stay
/// with their new content (removing them would lose the old version and the new).
@Suite struct OutputRollbackTests {
    /// The bucket's storage, whose publish of `failing` fails.
    struct FailingPublish: ObjectStorage {
        let local: LocalObjectStorage
        let failing: String

        func readableFile(bucket: String, key: ObjectKey) -> ReadableFile? { local.readableFile(bucket: bucket, key: key) }
        func makeStagingFolder(bucket: String, name: String, for key: ObjectKey?) throws(WorkFailure) -> String {
            try local.makeStagingFolder(bucket: bucket, name: name, for: key)
        }
        func publish(_ path: String, bucket: String, as key: ObjectKey) throws(WorkFailure) -> String? {
            guard key.rawValue != failing else { throw WorkFailure.outputWriteFailed(key.rawValue, "the store refused it") }
            return try local.publish(path, bucket: bucket, as: key)
        }
        func remove(bucket: String, key: ObjectKey) throws(WorkFailure) { try local.remove(bucket: bucket, key: key) }
        func objectInfo(bucket: String, key: ObjectKey) async throws(WorkFailure) -> ObjectInfo? { try await local.objectInfo(bucket: bucket, key: key) }
        func listObjects(bucket: String, _ query: ObjectListQuery) async throws(WorkFailure) -> ObjectListing { try await local.listObjects(bucket: bucket, query) }
        func removeStagingFolder(_ path: String) { local.removeStagingFolder(path) }
        func displayPrefixes(bucket: String) -> [(path: String, shownAs: String)] { local.displayPrefixes(bucket: bucket) }
    }

    @Test func aFailedPublishRemovesTheNewObjectsAndKeepsTheReplacedOnes() async throws {
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        try FileManager.default.createDirectory(atPath: bucket.path("out"), withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: bucket.path("out/v.m3u8"), contents: Data("old playlist".utf8)))
        #expect(FileManager.default.createFile(atPath: bucket.path("out/v-0.ts"), contents: Data("old segment".utf8)))
        let storage = FailingPublish(local: LocalObjectStorage(root: bucket.root), failing: "out/v.m3u8")
        let staging = try storage.makeStagingFolder(bucket: bucket.bucket, name: "job-out", for: try ObjectKey("out/v.m3u8"))
        for name in ["v-0.ts", "v-1.ts", "v.m3u8"] {
            #expect(FileManager.default.createFile(atPath: staging + "/" + name, contents: Data("new \(name)".utf8)))
        }
        await #expect(throws: WorkFailure.self) {
            try await OutputStaging.publish(
                ["v-0.ts", "v-1.ts", "v.m3u8"].map { (staging + "/" + $0, "out/" + $0) }, storage: storage, bucket: bucket.bucket
            )
        }
        #expect(FileManager.default.contents(atPath: bucket.path("out/v-0.ts")) == Data("new v-0.ts".utf8), "replaced: kept, with the new content")
        #expect(!FileManager.default.fileExists(atPath: bucket.path("out/v-1.ts")), "created by the job: removed")
        #expect(FileManager.default.contents(atPath: bucket.path("out/v.m3u8")) == Data("old playlist".utf8), "never replaced")
    }
}
