import Foundation
import MediaQueueCore
import MediaQueueTestSupport
import Testing
@testable import MediaQueueWorkers

/// The folder storage keeps no empty folders of its own making: after `a/b.mp4` was deleted, or a
/// job writing under `a/` failed, an empty `a/` refused an object `a` (and a job's output `a`
/// failed with EISDIR), though no listing showed anything under it. S3 has no folders at all.
@Suite struct LocalFoldersTests {
    func write(_ text: String, _ storage: LocalObjectStorage, _ bucket: TemporaryBucket, as key: String) throws {
        let key = try ObjectKey(key)
        let staging = try storage.makeStagingFolder(bucket: bucket.bucket, name: "put", for: key)
        let file = staging + "/" + key.fileName
        #expect(FileManager.default.createFile(atPath: file, contents: Data(text.utf8)))
        try storage.publish(file, bucket: bucket.bucket, as: key)
        storage.removeStagingFolder(staging)
    }

    @Test func aDeletedObjectsEmptyFoldersGoAndAnObjectOfTheirNameCanBeWritten() throws {
        let bucket = try TemporaryBucket()
        let storage = LocalObjectStorage(root: bucket.root)
        try write("deep", storage, bucket, as: "a/b/c.mp4")
        try write("kept", storage, bucket, as: "a/d.mp4")
        try storage.remove(bucket: bucket.bucket, key: ObjectKey("a/b/c.mp4"))
        #expect(!FileManager.default.fileExists(atPath: bucket.bucketRoot + "/a/b"))
        #expect(FileManager.default.fileExists(atPath: bucket.bucketRoot + "/a/d.mp4"), "a folder with an object in it stays")
        try storage.remove(bucket: bucket.bucket, key: ObjectKey("a/d.mp4"))
        #expect(!FileManager.default.fileExists(atPath: bucket.bucketRoot + "/a"))
        #expect(FileManager.default.fileExists(atPath: bucket.bucketRoot), "the bucket's own folder stays")

        #expect(storage.conflict(of: try ObjectKey("a"), bucket: bucket.bucket) == nil)
        try write("flat", storage, bucket, as: "a")
        #expect(try String(contentsOfFile: bucket.bucketRoot + "/a", encoding: .utf8) == "flat")
    }

    @Test func aFailedWritesFoldersGoWithItsStagingFolder() throws {
        let bucket = try TemporaryBucket()
        let storage = LocalObjectStorage(root: bucket.root)
        try write("other", storage, bucket, as: "x/keep.mp4")
        let staging = try storage.makeStagingFolder(bucket: bucket.bucket, name: "job-1", for: ObjectKey("x/y/z/out.mp4"))
        #expect(FileManager.default.fileExists(atPath: staging))
        storage.removeStagingFolder(staging)
        #expect(!FileManager.default.fileExists(atPath: bucket.bucketRoot + "/x/y"))
        #expect(FileManager.default.fileExists(atPath: bucket.bucketRoot + "/x/keep.mp4"))
    }

    /// Left by an earlier version: an empty folder gives way to the object of its name.
    @Test func anEmptyFolderLeftBeforeGivesWayToAnObjectOfItsName() throws {
        let bucket = try TemporaryBucket()
        let storage = LocalObjectStorage(root: bucket.root)
        try FileManager.default.createDirectory(atPath: bucket.bucketRoot + "/e", withIntermediateDirectories: true)
        #expect(storage.conflict(of: try ObjectKey("e"), bucket: bucket.bucket) == nil)
        try write("object", storage, bucket, as: "e")
        #expect(try String(contentsOfFile: bucket.bucketRoot + "/e", encoding: .utf8) == "object")
        try write("nested", storage, bucket, as: "f/g.mp4")
        #expect(storage.conflict(of: try ObjectKey("f"), bucket: bucket.bucket) != nil, "a folder with objects in it still refuses")
    }
}

/// Staging folders a process left when it died mid-job go at the next start, once nothing in
/// them changed for longer than a job may run; a job's that still writes stays.
@Suite struct AbandonedStagingTests {
    @Test func stagingFoldersNothingChangedInForLongGoAndOthersStay() throws {
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        let storage = LocalObjectStorage(root: bucket.root)
        let old = try storage.makeStagingFolder(bucket: bucket.bucket, name: "job-old", for: try ObjectKey("out/deep/a.mp4"))
        let oldInput = try storage.makeStagingFolder(bucket: bucket.bucket, name: "job-old-input", for: nil)
        let stillWritten = try storage.makeStagingFolder(bucket: bucket.bucket, name: "job-running", for: try ObjectKey("out/b.mp4"))
        let fresh = try storage.makeStagingFolder(bucket: bucket.bucket, name: "job-new", for: try ObjectKey("out/c.mp4"))
        for folder in [old, oldInput, stillWritten, fresh] {
            #expect(FileManager.default.createFile(atPath: folder + "/part.bin", contents: Data("x".utf8)))
        }
        #expect(FileManager.default.createFile(atPath: bucket.path("out/kept.mp4"), contents: Data("object".utf8)))
        let eightHoursAgo = Date().addingTimeInterval(-8 * 3600)
        for path in [old, old + "/part.bin", oldInput, oldInput + "/part.bin", stillWritten, bucket.path("out/kept.mp4")] {
            try FileManager.default.setAttributes([.modificationDate: eightHoursAgo], ofItemAtPath: path)
        }
        // `stillWritten`'s file changed just now (its folder did not).

        #expect(storage.removeAbandonedStaging(olderThan: .seconds(7 * 3600)) == 2)
        #expect(!FileManager.default.fileExists(atPath: old) && !FileManager.default.fileExists(atPath: oldInput))
        #expect(FileManager.default.fileExists(atPath: stillWritten) && FileManager.default.fileExists(atPath: fresh))
        #expect(FileManager.default.fileExists(atPath: bucket.path("out/kept.mp4")))
    }
}
