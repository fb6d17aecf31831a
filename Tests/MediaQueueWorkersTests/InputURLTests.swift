import Foundation
import MediaQueueCore
import MediaQueueHTTPClient
import MediaQueueTestSupport
import MediaQueueXML
import Testing
@testable import MediaQueueWorkers

/// Jobs whose input is `Input.Url`, fetched from a real HTTP server on loopback by the libcurl
/// downloader, then worked on by real ffmpeg.
@Suite("Input.Url", .timeLimit(.minutes(10)))
struct InputURLTests {
    /// Loopback is a private address: these tests allow it, as `MEDIAQUEUE_CALLBACK_ALLOWED_NETWORKS` would.
    static let loopbackClient = HTTPClient(configuration: HTTPClientConfiguration(
        connectTimeout: .seconds(60), timeout: .seconds(600), addressPolicy: AddressPolicy(allowedNetworks: [IPNetwork("127.0.0.0/8")!])
    ))
    let transcoder = TranscodeWorker(logger: quietLogger)

    /// The bytes of a 2 s 160x120 H.264/AAC MP4.
    static func videoBytes(seconds: Double = 2) async throws -> [UInt8] {
        let folder = NSTemporaryDirectory() + "/" + TestEnvironment.uniqueName("served")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try await TestMedia.video(at: folder + "/a.mp4", seconds: seconds)
        return Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/a.mp4")))
    }

    func job(url: String, output: String = "out/${InputName}.${ext}", bucket: TemporaryBucket) throws -> Job {
        let body = """
            <Request><Tag>Transcode</Tag><Input><Url>\(url)</Url></Input><Operation>
            <Transcode><Container><Format>mp4</Format></Container><Video><Codec>H.264</Codec><Width>320</Width></Video></Transcode>
            <Output><Object>\(output)</Object></Output></Operation></Request>
            """
        let operation = try CreateMediaJobsRequest.parse(Array(body.utf8), validate: transcoder.validate).operations[0]
        return makeJob(operation, bucket: bucket)
    }

    func context(_ bucket: TemporaryBucket, maxBytes: Int = 64 << 20, client: HTTPClient = Self.loopbackClient) -> WorkContext {
        makeContext(bucket, downloader: HTTPInputDownloader(client: client, maxBytes: maxBytes, timeout: .seconds(600)))
    }

    @Test("a transcode reads its input from the URL; ${InputName} is the URL's file name; the download is removed")
    func transcodeFromURL() async throws {
        let video = try await Self.videoBytes()
        let receiver = try TestHTTPReceiver { _, _ in .bytes(200, body: video) }
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        let job = try job(url: receiver.url("/media/clip%20one.mp4?sign=secret"), bucket: bucket)

        let result = try await transcoder.run(job, context: context(bucket))

        #expect(bucket.objects() == ["out/clip one.mp4"])
        #expect(try listedFiles(result).names == ["out/clip one.mp4"])
        let probed = try await Probed(bucket.path("out/clip one.mp4"))
        #expect(probed.video?["codec_name"] == "h264")
        #expect(probed.video?["width"] == "320")
        #expect(probed.video?["height"] == "240")
        #expect(probed.audio?["codec_name"] == "aac")
        #expect(abs((probed.duration ?? 0) - 2) < 0.15)
        #expect(receiver.requests.map(\.method) == ["GET"])
        #expect(receiver.requests.first?.path == "/media/clip%20one.mp4?sign=secret")
    }

    @Test("MediaInfo and Snapshot take Input.Url too")
    func otherWorkers() async throws {
        let video = try await Self.videoBytes()
        let receiver = try TestHTTPReceiver { _, _ in .bytes(200, body: video) }
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        let url = receiver.url("/v/a.mp4")

        let info = MediaInfoWorker(logger: quietLogger)
        let infoJob = makeJob(
            try CreateMediaJobsRequest.parse(Array("<Request><Tag>MediaInfo</Tag><Input><Url>\(url)</Url></Input><Operation></Operation></Request>".utf8), validate: info.validate).operations[0],
            bucket: bucket
        )
        let mediaInfo = try #require(try await info.run(infoJob, context: context(bucket)).mediaInfo)
        #expect(mediaInfo.text("Stream", "Video", "Width") == "160")

        let snapshot = SnapshotWorker(logger: quietLogger)
        let shotJob = makeJob(try CreateMediaJobsRequest.parse(Array("""
            <Request><Tag>Snapshot</Tag><Input><Url>\(url)</Url></Input><Operation>
            <Snapshot><Count>2</Count><TimeInterval>1</TimeInterval></Snapshot><Output><Object>shots/${InputName}-${Number}.jpg</Object></Output>
            </Operation></Request>
            """.utf8), validate: snapshot.validate).operations[0], bucket: bucket)
        _ = try await snapshot.run(shotJob, context: context(bucket))
        #expect(bucket.objects() == ["shots/a-0.jpg", "shots/a-1.jpg"])
        #expect(try await Probed(bucket.path("shots/a-1.jpg")).video?["codec_name"] == "mjpeg")
    }

    @Test("a 404 fails with InputNotExist; the message names the URL without its query")
    func notFound() async throws {
        let receiver = try TestHTTPReceiver { _, _ in .status(404, body: "NoSuchKey") }
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        let failure = try #require(await workFailure {
            try await transcoder.run(try job(url: receiver.url("/a.mp4?sign=secret"), bucket: bucket), context: context(bucket))
        })
        #expect(failure.code == "InputNotExist")
        #expect(failure.message.contains(receiver.url("/a.mp4")))
        #expect(!failure.message.contains("secret"))
        #expect(bucket.objects().isEmpty)
    }

    @Test("a redirect is not followed: InputFetchFailed says so")
    func redirect() async throws {
        let receiver = try TestHTTPReceiver { _, _ in .status(302, headers: ["Location": "http://169.254.169.254/"]) }
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        let failure = try #require(await workFailure {
            try await transcoder.run(try job(url: receiver.url("/a.mp4"), bucket: bucket), context: context(bucket))
        })
        #expect(failure.code == "InputFetchFailed")
        #expect(failure.message.contains("302"))
        #expect(failure.message.contains("redirects are not followed"))
        #expect(receiver.requests.count == 1)
    }

    @Test("an input over the size limit fails with InputTooLarge and leaves nothing")
    func tooLarge() async throws {
        let video = try await Self.videoBytes()
        let receiver = try TestHTTPReceiver { _, _ in .chunked(video) }
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        let failure = try #require(await workFailure {
            try await transcoder.run(try job(url: receiver.url("/a.mp4"), bucket: bucket), context: context(bucket, maxBytes: video.count / 2))
        })
        #expect(failure.code == "InputTooLarge")
        #expect(failure.message.contains("\(video.count / 2) bytes"))
        #expect(bucket.objects().isEmpty)
        #expect((try? FileManager.default.contentsOfDirectory(atPath: bucket.bucketRoot)) == [])
    }

    @Test("the SSRF guard refuses a private address: InputFetchFailed, no request made")
    func privateAddressRefused() async throws {
        let receiver = try TestHTTPReceiver { _, _ in .status(200) }
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        let failure = try #require(await workFailure {
            try await transcoder.run(try job(url: receiver.url("/a.mp4"), bucket: bucket), context: context(bucket, client: HTTPClient()))
        })
        #expect(failure.code == "InputFetchFailed")
        #expect(failure.message.contains("loopback"))
        #expect(receiver.requests.isEmpty)
    }

    @Test("a served file that is not media fails with InvalidInput naming the URL, and the download is removed")
    func corruptDownload() async throws {
        let receiver = try TestHTTPReceiver { _, _ in .bytes(200, body: Array(repeating: 0x42, count: 4096)) }
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        let failure = try #require(await workFailure {
            try await transcoder.run(try job(url: receiver.url("/bad.mp4"), bucket: bucket), context: context(bucket))
        })
        #expect(failure.code == "InvalidInput")
        #expect(failure.message.contains(receiver.url("/bad.mp4")))
        #expect(!failure.message.contains(bucket.root))
        #expect((try? FileManager.default.contentsOfDirectory(atPath: bucket.bucketRoot)) == [])
    }

    @Test("cancelling during the download ends the job and removes the partial download")
    func cancelledDownload() async throws {
        let receiver = try TestHTTPReceiver { _, _ in .hang }
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        let job = try job(url: receiver.url("/a.mp4"), bucket: bucket)
        let context = context(bucket)
        let task = Task { try await transcoder.run(job, context: context) }
        try await eventually("the download to start") { !receiver.requests.isEmpty }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect((try? FileManager.default.contentsOfDirectory(atPath: bucket.bucketRoot)) == [])
    }

    @Test("without a downloader, a URL job fails with InputFetchFailed")
    func noDownloader() async throws {
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        let failure = await workFailure {
            try await transcoder.run(try job(url: "https://media.example.com/a.mp4", bucket: bucket), context: makeContext(bucket))
        }
        #expect(failure?.code == "InputFetchFailed")
    }
}
