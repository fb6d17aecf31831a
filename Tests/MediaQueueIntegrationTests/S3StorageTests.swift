import Foundation
import MediaQueueAMQP
import MediaQueueApp
import MediaQueueCore
import MediaQueueHTTPClient
import MediaQueueTestSupport
import MediaQueueWorkers
import MediaQueueXML
import Testing

/// The S3 storage against a real S3 implementation that checks signatures (moto's server, which
/// the test command starts with a user and key): ranged downloads, single and multipart uploads,
/// media jobs reading and writing the store, and a wrong key.
@Suite(.enabled(if: S3TestStore.isAvailable, "needs MEDIAQUEUE_TEST_S3_ENDPOINT and keys (scripts/test.sh sets them)"))
struct S3StorageTests {
    @Test func largeObjectsGoUpInPartsAndComeDownInRangesByteForByte() async throws {
        let bucket = try await S3TestStore.createBucket()
        let storage = S3ObjectStorage(configuration: S3TestStore.configuration(
            multipartThreshold: 5 << 20, partSize: 5 << 20, rangeSize: 1 << 20
        ))
        let key = try ObjectKey("big/file with spaces.bin")
        let folder = try storage.makeStagingFolder(bucket: bucket, name: "upload", for: key)
        defer { storage.removeStagingFolder(folder) }
        // 12 MiB and a bit: three parts, the last one short.
        let content = (0..<(12 << 20) + 12_345).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        try Data(content).write(to: URL(fileURLWithPath: folder + "/big.bin"))
        try await storage.publish(folder + "/big.bin", bucket: bucket, as: key)

        // S3 marks a multipart object's ETag with its part count.
        let head = try await S3TestStore.head(bucket: bucket, key: "big/file%20with%20spaces.bin")
        #expect(head.status == 200)
        #expect(head.header("ETag")?.hasSuffix("-3\"") == true, "ETag \(head.header("ETag") ?? "none")")

        let file = try #require(try await storage.readableFile(bucket: bucket, key: key))
        let temporary = try #require(file.temporaryFolder)
        #expect(try Data(contentsOf: URL(fileURLWithPath: file.path)) == Data(content), "13 ranges of 1 MiB make the same bytes")
        storage.removeStagingFolder(temporary)

        // A ranged read (an object GET with Range) fetches that range, not the object.
        let wanted = (3 << 20) + 7..<(5 << 20) + 100
        let part = try #require(try await storage.readableFile(bucket: bucket, key: key, range: wanted))
        #expect(part.firstByte == wanted.lowerBound)
        #expect(try Data(contentsOf: URL(fileURLWithPath: part.path)) == Data(content[wanted]), "only the range's bytes are on disk")
        storage.removeStagingFolder(try #require(part.temporaryFolder))

        try await storage.remove(bucket: bucket, key: key)
        #expect(try await storage.readableFile(bucket: bucket, key: key) == nil)
        try await storage.remove(bucket: bucket, key: key)  // a missing object is fine
    }

    /// A full listing page is about 300 KB: it used to be cut at 64 KiB, so a bucket of more
    /// than about 200 objects could not be listed at all.
    @Test func aBucketOfManyObjectsIsListedPageByPage() async throws {
        let bucket = try await S3TestStore.createBucket()
        let storage = S3ObjectStorage(configuration: S3TestStore.configuration())
        let keys = (0..<1_100).map { "videos/2026/12/lecture-recording-\(String(format: "%04d", $0)).mp4" }
        let folder = try storage.makeStagingFolder(bucket: bucket, name: "many", for: nil)
        defer { storage.removeStagingFolder(folder) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, key) in keys.enumerated() {
                if index >= 8 { try await group.next() }
                group.addTask {
                    let file = folder + "/\(index)"
                    try Data("x".utf8).write(to: URL(fileURLWithPath: file))
                    try await storage.publish(file, bucket: bucket, as: try ObjectKey(key))
                }
            }
            try await group.waitForAll()
        }
        let first = try await storage.listObjects(bucket: bucket, ObjectListQuery(prefix: "videos/", maxKeys: 1_000))
        #expect(first.objects.count == 1_000 && first.isTruncated)
        let rest = try await storage.listObjects(bucket: bucket, ObjectListQuery(prefix: "videos/", marker: try #require(first.nextMarker), maxKeys: 1_000))
        #expect(rest.objects.count == 100 && !rest.isTruncated)
        #expect((first.objects + rest.objects).map(\.key) == keys)
    }

    /// A key's last segment may be longer than a file name can be (255 bytes): such an input
    /// could not be downloaded ("File name too long").
    @Test func anObjectWhoseNameIsLongerThanAFileNameIsDownloaded() async throws {
        let bucket = try await S3TestStore.createBucket()
        let storage = S3ObjectStorage(configuration: S3TestStore.configuration())
        let key = try ObjectKey("in/" + String(repeating: "长", count: 100) + ".mp4")
        let staging = try storage.makeStagingFolder(bucket: bucket, name: "long", for: nil)
        defer { storage.removeStagingFolder(staging) }
        try Data("long name".utf8).write(to: URL(fileURLWithPath: staging + "/upload"))
        try await storage.publish(staging + "/upload", bucket: bucket, as: key)
        let file = try #require(try await storage.readableFile(bucket: bucket, key: key))
        defer { file.temporaryFolder.map(storage.removeStagingFolder) }
        #expect(try String(contentsOfFile: file.path, encoding: .utf8) == "long name")
        #expect(file.path.hasSuffix("/input.mp4"))
    }

    /// A running service on a new bucket of the test store, holding a video of the given length
    /// in seconds at each key; with a subscriber of its events.
    func serviceWithVideos(_ videos: [String: Int]) async throws -> (ServiceHarness, S3ObjectStorage, AMQPConsumer, Task<Void, any Error>) {
        let bucket = try await S3TestStore.createBucket()
        let harness = try ServiceHarness { configuration in
            configuration.bucket = bucket
            S3TestStore.configure(&configuration)
        }
        let storage = S3ObjectStorage(configuration: try #require(harness.configuration.s3))
        let local = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("s3-input")).path
        for (key, seconds) in videos {
            let file = local + "/" + ObjectKey.lastSegment(of: key)
            try await SampleMedia.makeVideo(at: file, seconds: seconds)
            try await storage.publish(file, bucket: bucket, as: try ObjectKey(key))
        }
        let events = try await harness.subscribeToEvents()
        let (_, service) = try harness.startService()
        do {
            try await harness.waitForIntake()
        } catch {
            service.cancel()
            throw error
        }
        return (harness, storage, events, service)
    }

    @Test func aTranscodeReadsItsInputFromTheStoreAndWritesItsOutputThere() async throws {
        let (harness, storage, events, service) = try await serviceWithVideos(["input/a.mp4": 2])
        defer { service.cancel() }
        let bucket = harness.configuration.bucket

        try await harness.publish("""
            <Request><Tag>Transcode</Tag><Input><Object>input/a.mp4</Object></Input><Operation>
            <TemplateId>t0cba0cccc978d16d1318ebe6ecd6bf14c</TemplateId>
            <Output><Object>out/${InputName}-sd.${ext}</Object></Output></Operation></Request>
            """)
        let detail = try #require(try await harness.receive(1, from: events).first?.xml?["JobsDetail"])
        #expect(detail.text("State") == "Success", "\(detail.text("Code") ?? "") \(detail.text("Message") ?? "")")
        let output = try #require(try await storage.readableFile(bucket: bucket, key: ObjectKey("out/a-sd.mp4")))
        defer { output.temporaryFolder.map(storage.removeStagingFolder) }
        let probe = try await runCommand("/usr/bin/ffprobe", ["-v", "error", "-show_entries", "stream=height", "-of", "csv=p=0", output.path])
        #expect(probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "480")
    }

    /// Each object a Concat reads is downloaded from the store for ffmpeg: the fragments' copies
    /// stayed in the scratch folder for ever (up to 100 per job).
    @Test func aConcatLeavesNoDownloadedCopyBehind() async throws {
        let (harness, _, events, service) = try await serviceWithVideos(["input/a.mp4": 1, "clips/outro.mp4": 1])
        defer { service.cancel() }

        try await harness.publish("""
            <Request><Tag>Concat</Tag><Input><Object>input/a.mp4</Object></Input><Operation><ConcatTemplate>
            <ConcatFragment><Url>clips/outro.mp4</Url><Mode>End</Mode></ConcatFragment>
            <Container><Format>mp4</Format></Container><Video><Preset>veryfast</Preset></Video></ConcatTemplate>
            <Output><Object>out/joined.mp4</Object></Output></Operation></Request>
            """)
        let detail = try #require(try await harness.receive(1, from: events).first?.xml?["JobsDetail"])
        #expect(detail.text("State") == "Success", "\(detail.text("Code") ?? "") \(detail.text("Message") ?? "")")
        let scratch = harness.configuration.dataDir + "/s3-scratch"
        let left = FileManager.default.subpaths(atPath: scratch) ?? []
        #expect(left.filter { !$0.hasSuffix("/") }.allSatisfy { path in
            var isFolder: ObjCBool = false
            return FileManager.default.fileExists(atPath: scratch + "/" + path, isDirectory: &isFolder) && isFolder.boolValue
        }, "files left in \(scratch): \(left)")
    }

    @Test func aWrongKeyFailsTheJobWithStorageAccessDenied() async throws {
        let bucket = try await S3TestStore.createBucket()
        let harness = try ServiceHarness { configuration in
            configuration.bucket = bucket
            S3TestStore.configure(&configuration)
            configuration.s3SecretAccessKey = "not-the-secret"
        }
        let events = try await harness.subscribeToEvents()
        let (_, service) = try harness.startService()
        defer { service.cancel() }
        try await harness.waitForIntake()

        try await harness.publish(mediaInfoRequest(object: "input/a.mp4"))
        let detail = try #require(try await harness.receive(1, from: events).first?.xml?["JobsDetail"])
        #expect(detail.text("State") == "Failed")
        #expect(detail.text("Code") == "StorageAccessDenied")
        #expect(detail.text("Message")?.contains("SignatureDoesNotMatch") == true, "\(detail.text("Message") ?? "")")
    }
}

/// The test command's S3 server, user and key.
enum S3TestStore {
    static var endpoint: String? { TestEnvironment.value("MEDIAQUEUE_TEST_S3_ENDPOINT") }
    static var accessKeyID: String { TestEnvironment.value("MEDIAQUEUE_TEST_S3_ACCESS_KEY_ID") ?? "" }
    static var secretAccessKey: String { TestEnvironment.value("MEDIAQUEUE_TEST_S3_SECRET_ACCESS_KEY") ?? "" }
    static var isAvailable: Bool { endpoint != nil }

    static func configuration(multipartThreshold: Int = 64 << 20, partSize: Int = 16 << 20, rangeSize: Int = 64 << 20) -> S3Configuration {
        S3Configuration(
            endpoint: endpoint ?? "", region: "us-east-1", accessKeyID: accessKeyID, secretAccessKey: secretAccessKey,
            multipartThreshold: multipartThreshold, partSize: partSize, rangeSize: rangeSize,
            scratchDirectory: FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("s3-scratch")).path
        )
    }

    static func configure(_ configuration: inout MediaQueueConfiguration) {
        configuration.s3Endpoint = endpoint
        configuration.s3AccessKeyID = accessKeyID
        configuration.s3SecretAccessKey = secretAccessKey
    }

    static let client = HTTPClient(configuration: HTTPClientConfiguration(addressPolicy: AddressPolicy(allowedNetworks: ["127.0.0.0/8"].compactMap(IPNetwork.init))))

    static func signed(_ method: HTTPRequest.Method, _ path: String) -> HTTPRequest {
        HTTPRequest(
            method: method, url: (endpoint ?? "") + "/" + path, headers: [HTTPHeader("x-amz-content-sha256", "UNSIGNED-PAYLOAD")], body: [],
            signature: AWSSignature(accessKeyID: accessKeyID, secretAccessKey: secretAccessKey, region: "us-east-1")
        )
    }

    /// A new bucket (S3 names: lowercase, digits, dashes).
    static func createBucket() async throws -> String {
        let name = "mq-" + UUID().uuidString.lowercased().prefix(13).replacingOccurrences(of: "-", with: "") + "-1250000000"
        // moto's server answers 500 now and then under the suite's parallel load; S3's clients retry that.
        var response = try await client.send(signed(.put, name))
        for _ in 0..<3 where S3ObjectStorage.transientStatuses.contains(response.status) {
            response = try await client.send(signed(.put, name))
        }
        // A retried create whose first try had created the bucket after all.
        let ownedAlready = response.status == 409 && String(decoding: response.body, as: UTF8.self).contains("BucketAlreadyOwnedByYou")
        guard response.status == 200 || ownedAlready else {
            throw TimedOut(description: "creating bucket \(name): HTTP \(response.status) \(String(decoding: response.body, as: UTF8.self))")
        }
        return name
    }

    static func head(bucket: String, key: String) async throws -> HTTPResponse {
        try await client.send(signed(.head, bucket + "/" + key))
    }
}
