import Foundation
import MediaQueueCore
import MediaQueueHTTPClient
import MediaQueueTestSupport
@testable import MediaQueueWorkers
import Synchronization
import Testing

/// The S3 storage against a store that answers 500, 502, 503 or 504 or drops the connection now
/// and then, as S3 and moto do under load: each request is sent again, and a job fails only when
/// the store keeps failing.
@Suite(.timeLimit(.minutes(1))) struct S3RetryTests {
    static let slowDown = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"

    /// Publishes "hello" as `out/b.txt` of `media-1250000000`, staged as an upload is.
    func publishHello(_ storage: S3ObjectStorage) async throws {
        let key = try ObjectKey("out/b.txt")
        let folder = try storage.makeStagingFolder(bucket: "media-1250000000", name: "upload", for: key)
        defer { storage.removeStagingFolder(folder) }
        try Data("hello".utf8).write(to: URL(fileURLWithPath: folder + "/b.txt"))
        try await storage.publish(folder + "/b.txt", bucket: "media-1250000000", as: key)
    }

    func storage(_ receiver: TestHTTPReceiver, retries: Int = 3) -> S3ObjectStorage {
        S3ObjectStorage(configuration: S3Configuration(
            endpoint: "http://127.0.0.1:\(receiver.port)", region: "us-east-1", accessKeyID: "AKID", secretAccessKey: "secret",
            scratchDirectory: FileManager.default.temporaryDirectory.appendingPathComponent("s3-retry-\(UUID().uuidString)").path,
            retryDelays: Array(repeating: .zero, count: retries)
        ))
    }

    @Test func aDownloadGoesOnAfterAStatusAskingForARetryAndADroppedConnection() async throws {
        let receiver = try TestHTTPReceiver { _, index in
            switch index {
            case 0: .status(503, body: Self.slowDown)
            case 1: .status(206, headers: ["Content-Range": "bytes 0-0/5"], body: "h")
            case 2: .reset
            default: .status(206, headers: ["Content-Range": "bytes 0-4/5"], body: "hello")
            }
        }
        defer { receiver.stop() }
        let storage = storage(receiver)
        let file = try #require(try await storage.readableFile(bucket: "media-1250000000", key: ObjectKey("in/a.mp4")))
        defer { file.temporaryFolder.map(storage.removeStagingFolder) }
        #expect(try String(contentsOfFile: file.path, encoding: .utf8) == "hello")
        #expect(receiver.requests.map(\.headers["range"]) == ["bytes=0-0", "bytes=0-0", "bytes=0-4", "bytes=0-4"])
    }

    /// A request the store stops answering mid-way (a stalled connection) is sent again once
    /// nothing moved for `stallTimeout`; only the hour a whole request may take ended it before,
    /// and it was not retried.
    @Test func aRequestThatStallsIsSentAgain() async throws {
        let receiver = try TestHTTPReceiver { _, index in
            switch index {
            case 0: .hang
            case 1: .status(206, headers: ["Content-Range": "bytes 0-0/5"], body: "h")
            default: .status(206, headers: ["Content-Range": "bytes 0-4/5"], body: "hello")
            }
        }
        defer { receiver.stop() }
        var configuration = storage(receiver).configuration
        configuration.stallTimeout = .seconds(1)
        let storage = S3ObjectStorage(configuration: configuration)
        let file = try #require(try await storage.readableFile(bucket: "media-1250000000", key: ObjectKey("in/a.mp4")))
        defer { file.temporaryFolder.map(storage.removeStagingFolder) }
        #expect(try String(contentsOfFile: file.path, encoding: .utf8) == "hello")
        #expect(receiver.requests.map(\.headers["range"]) == ["bytes=0-0", "bytes=0-0", "bytes=0-4"])
    }

    @Test func anUploadIsSentWholeAgainAfterAServerError() async throws {
        let receiver = try TestHTTPReceiver { request, index in
            switch (request.method, index) {
            case ("PUT", 0): .status(500, body: "<Error><Code>InternalError</Code></Error>")
            case ("PUT", _): .status(200)
            default: .status(200, body: "hello")  // HEAD: the stored object's length
            }
        }
        defer { receiver.stop() }
        try await publishHello(storage(receiver))
        #expect(receiver.requests.map(\.method) == ["PUT", "PUT", "HEAD"])
        #expect(receiver.requests.filter { $0.method == "PUT" }.map(\.text) == ["hello", "hello"])
    }

    /// An answer that sending again cannot change (a bucket that does not exist) is final for the
    /// job, `StorageRefused`: as `StorageUnavailable` the dispatcher would hand the job back and
    /// hold every claim of the node, for a job that can never succeed.
    @Test func anAnswerNoRetryCanChangeIsStorageRefusedAndNotSentAgain() async throws {
        let receiver = try TestHTTPReceiver { _, _ in
            .status(404, body: "<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist.</Message></Error>")
        }
        defer { receiver.stop() }
        let error = await #expect(throws: WorkFailure.self) { try await publishHello(storage(receiver)) }
        #expect(error?.code == "StorageRefused")
        #expect(error?.message.contains("NoSuchBucket (HTTP 404)") == true, "\(error?.message ?? "")")
        #expect(receiver.requests.map(\.method) == ["PUT"])
    }

    /// S3's codes for a failure that passes count whatever status they come with: a multipart
    /// complete answered 200 with `InternalError`, a 400 `RequestTimeout`.
    @Test func s3sCodesForAPassingFailureAreStorageUnavailableWhateverTheStatus() {
        for (status, code) in [(200, "InternalError"), (400, "RequestTimeout"), (503, "SlowDown")] {
            let answer = HTTPResponse(status: status, body: Array("<Error><Code>\(code)</Code></Error>".utf8))
            #expect(S3ObjectStorage.failure(answer, "cannot write 'a'").code == WorkFailure.storageUnavailable, "\(status) \(code)")
        }
        let missing = HTTPResponse(status: 404, body: Array("<Error><Code>NoSuchBucket</Code></Error>".utf8))
        #expect(S3ObjectStorage.failure(missing, "cannot write 'a'").code == "StorageRefused")
    }

    @Test func aStoreThatKeepsFailingFailsTheRequestNamingItsLastAnswer() async throws {
        let receiver = try TestHTTPReceiver { _, _ in .status(503, body: Self.slowDown) }
        defer { receiver.stop() }
        let error = await #expect(throws: WorkFailure.self) {
            _ = try await storage(receiver, retries: 2).readableFile(bucket: "media-1250000000", key: ObjectKey("in/a.mp4"))
        }
        #expect(error?.code == "StorageUnavailable")
        #expect(error?.message.contains("SlowDown (HTTP 503)") == true, "\(error?.message ?? "")")
        #expect(receiver.requests.count == 3, "the first try and two retries")
    }

    /// Uploads an 11-byte output in 4-byte parts to a store that initiates the upload, holds the
    /// first part and answers the abort with `abort`; cancels the upload while that part is in
    /// flight. Returns the upload's result and the requests the store received.
    func cancelledMultipartUpload(
        abort: TestHTTPReceiver.Reply, deleteTimeout: Duration = .seconds(30)
    ) async throws -> (result: Result<Void, any Error>, requests: [TestHTTPReceiver.Request]) {
        let receiver = try TestHTTPReceiver { request, _ in
            switch request.method {
            case "POST": .status(200, body: "<InitiateMultipartUploadResult><UploadId>upload-1</UploadId></InitiateMultipartUploadResult>")
            case "PUT": .hang
            default: abort
            }
        }
        defer { receiver.stop() }
        var configuration = storage(receiver).configuration
        (configuration.multipartThreshold, configuration.partSize, configuration.deleteTimeout) = (4, 4, deleteTimeout)
        let storage = S3ObjectStorage(configuration: configuration)
        let key = try ObjectKey("out/parts.txt")
        let folder = try storage.makeStagingFolder(bucket: "media-1250000000", name: "upload", for: key)
        defer { storage.removeStagingFolder(folder) }
        try Data("hello world".utf8).write(to: URL(fileURLWithPath: folder + "/parts.txt"))
        let upload = Task { try await storage.publish(folder + "/parts.txt", bucket: "media-1250000000", as: key); return }
        try await eventually("the first part in flight") { receiver.inFlight == 1 && receiver.requests.last?.method == "PUT" }
        upload.cancel()
        return (await upload.result, receiver.requests)
    }

    /// A job cancelled while its output goes up in parts: the upload is aborted, so the store
    /// does not keep the parts sent so far (they would be stored, and billed, for good).
    @Test func aMultipartUploadOfACancelledJobIsAborted() async throws {
        let (_, requests) = try await cancelledMultipartUpload(abort: .status(204))
        #expect(requests.map(\.method) == ["POST", "PUT", "DELETE"])
        #expect(requests.last?.path.contains("uploadId=upload-1") == true)
    }

    /// A store that takes the abort and never answers it does not hold the cancelled job for the
    /// client's whole timeout (an hour): the abort gives up after `deleteTimeout`, and the job ends.
    @Test func anAbortTheStoreNeverAnswersDoesNotHoldTheJob() async throws {
        let (result, requests) = try await cancelledMultipartUpload(abort: .hang, deleteTimeout: .milliseconds(200))
        #expect(throws: (any Error).self) { try result.get() }
        #expect(requests.map(\.method) == ["POST", "PUT", "DELETE"], "the abort was sent once, not retried after its timeout")
    }

    /// A job cancelled (or timed out) while its outputs go up: the ones already in the bucket
    /// are removed, though the job's task is cancelled; they used to stay, a playlist's segments
    /// without their playlist.
    @Test func aCancelledPublishRemovesTheOutputsItHadPublished() async throws {
        let receiver = try TestHTTPReceiver { request, index in
            switch (request.method, index) {
            case ("HEAD", 2): .status(200, body: "hello")  // the first output, as stored
            case ("HEAD", _): .status(404)  // neither output was there before
            case ("PUT", 1): .status(200)
            case ("PUT", _): .hang
            default: .status(204)
            }
        }
        defer { receiver.stop() }
        let storage = storage(receiver)
        let folder = try storage.makeStagingFolder(bucket: "media-1250000000", name: "job", for: nil)
        defer { storage.removeStagingFolder(folder) }
        for name in ["a.ts", "b.ts"] { try Data("hello".utf8).write(to: URL(fileURLWithPath: folder + "/" + name)) }
        let publish = Task {
            try await OutputStaging.publish(
                [(folder + "/a.ts", "out/a.ts"), (folder + "/b.ts", "out/b.ts")], storage: storage, bucket: "media-1250000000"
            )
        }
        try await eventually("the second output in flight") { receiver.inFlight == 1 && receiver.requests.count == 5 }
        publish.cancel()
        await #expect(throws: (any Error).self) { try await publish.value }
        #expect(receiver.requests.map(\.method) == ["HEAD", "PUT", "HEAD", "HEAD", "PUT", "DELETE"])
        #expect(receiver.requests.last?.path.hasSuffix("/out/a.ts") == true, "\(receiver.requests.last?.path ?? "")")
    }

    /// Uploads "hello world" in 4-byte parts to a store that answers the complete with
    /// `completes` in turn; the stored object then has the whole length. Returns the methods of
    /// the requests the store received.
    func multipartUpload(completes: [TestHTTPReceiver.Reply], storedETag: String = objectETag) async throws -> [String] {
        let answers = Mutex(completes[...])
        let receiver = try TestHTTPReceiver { request, _ in
            switch request.method {
            case "POST" where request.path.contains("uploads="):
                .status(200, body: "<InitiateMultipartUploadResult><UploadId>upload-1</UploadId></InitiateMultipartUploadResult>")
            case "POST": answers.withLock { $0.popFirst() } ?? .status(200, body: "<CompleteMultipartUploadResult/>")
            case "PUT": .status(200, headers: ["ETag": Self.partETag])
            default: .status(200, headers: ["ETag": storedETag], body: "hello world")  // HEAD: the stored object
            }
        }
        defer { receiver.stop() }
        var configuration = storage(receiver).configuration
        (configuration.multipartThreshold, configuration.partSize) = (4, 4)
        let storage = S3ObjectStorage(configuration: configuration)
        let key = try ObjectKey("out/parts.txt")
        let folder = try storage.makeStagingFolder(bucket: "media-1250000000", name: "upload", for: key)
        defer { storage.removeStagingFolder(folder) }
        try Data("hello world".utf8).write(to: URL(fileURLWithPath: folder + "/parts.txt"))
        try await storage.publish(folder + "/parts.txt", bucket: "media-1250000000", as: key)
        return receiver.requests.map(\.method)
    }

    /// What S3 answers for each part (an MD5) and then for the object made of three of them.
    static let partETag = "\"5d41402abc4b2a76b9719d911017c592\""
    static let objectETag = S3ObjectStorage.multipartETag(Array(repeating: partETag, count: 3))!

    /// S3's ETag of an object completed from parts, as AWS documents it and moto computes it.
    @Test func aMultipartObjectsETagIsTheMD5OfItsPartsMD5s() {
        #expect(S3ObjectStorage.multipartETag(["\"5d41402abc4b2a76b9719d911017c592\"", "\"7d793037a0760186574b0282f2f435e7\""])
            == "\"065947336a2f2a95ba8899f3675c3be6-2\"")
        #expect(S3ObjectStorage.multipartETag(["\"not-an-md5\""]) == nil)
    }

    /// Download and staging folders a dead process left in the scratch directory go once nothing
    /// in them changed for longer than a job may run; those in use stay.
    @Test func abandonedScratchFoldersGoAndFreshOnesStay() throws {
        let receiver = try TestHTTPReceiver { _, _ in .status(500) }
        defer { receiver.stop() }
        let storage = storage(receiver)
        let old = try storage.makeStagingFolder(bucket: "media-1250000000", name: "download-old", for: nil)
        let fresh = try storage.makeStagingFolder(bucket: "media-1250000000", name: "download-fresh", for: nil)
        let written = try storage.makeStagingFolder(bucket: "media-1250000000", name: "upload-written", for: nil)
        defer { [old, fresh, written].forEach(storage.removeStagingFolder) }
        for folder in [old, fresh, written] { #expect(FileManager.default.createFile(atPath: folder + "/copy", contents: Data("x".utf8))) }
        let longAgo = Date().addingTimeInterval(-8 * 3600)
        for path in [old, old + "/copy", written] { try FileManager.default.setAttributes([.modificationDate: longAgo], ofItemAtPath: path) }

        #expect(storage.removeAbandonedScratch(olderThan: .seconds(7 * 3600)) == 1)
        #expect(!FileManager.default.fileExists(atPath: old))
        #expect(FileManager.default.fileExists(atPath: fresh + "/copy"))
        #expect(FileManager.default.fileExists(atPath: written + "/copy"), "a file written lately keeps its folder")
    }

    /// S3 takes at most 10,000 parts: a file that would need more goes up in larger ones.
    @Test func partsGrowForAFileThatWouldNeedMoreThanTenThousand() {
        #expect(S3ObjectStorage.partSize(16 << 20, forUploadOf: 100 << 30) == 16 << 20)
        let size = 200 << 30
        let part = S3ObjectStorage.partSize(16 << 20, forUploadOf: size)
        #expect(part == 21 << 20 && (size + part - 1) / part <= 10_000)
    }

    /// S3 asks for a failed complete to be sent again; a large output was lost at its last request.
    @Test func aCompleteTheStoreFailsIsSentAgain() async throws {
        let methods = try await multipartUpload(completes: [
            .status(503, body: Self.slowDown),
            .status(200, body: "<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>"),
        ])
        #expect(methods == ["POST", "PUT", "PUT", "PUT", "POST", "POST", "POST", "HEAD"])
    }

    /// A complete that took effect but whose answer was lost: its retry finds no upload any more,
    /// and the stored object, whole, says the upload is done.
    @Test func aCompleteWhoseAnswerWasLostIsFoundDoneByTheStoredObject() async throws {
        let methods = try await multipartUpload(completes: [
            .reset, .status(404, body: "<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>"),
        ])
        #expect(methods == ["POST", "PUT", "PUT", "PUT", "POST", "POST", "HEAD", "HEAD"])
    }

    /// An upload that is gone, and an object of that key that is not made of its parts (an older
    /// one): the upload failed.
    @Test func aCompleteThatFindsNoUploadAndAnotherObjectFails() async throws {
        let error = await #expect(throws: WorkFailure.self) {
            _ = try await multipartUpload(
                completes: [.status(404, body: "<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>")],
                storedETag: "\"5d41402abc4b2a76b9719d911017c592\""
            )
        }
        #expect(error?.message.contains("NoSuchUpload") == true, "\(error?.message ?? "")")
    }

    @Test func answersThatARetryWouldNotChangeAreNotRetried() async throws {
        let receiver = try TestHTTPReceiver { _, _ in .status(403, body: "<Error><Code>AccessDenied</Code></Error>") }
        defer { receiver.stop() }
        let error = await #expect(throws: WorkFailure.self) {
            _ = try await storage(receiver).readableFile(bucket: "media-1250000000", key: ObjectKey("in/a.mp4"))
        }
        #expect(error?.code == "StorageAccessDenied")
        #expect(receiver.requests.count == 1)
    }
}
