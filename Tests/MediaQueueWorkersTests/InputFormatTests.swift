import Foundation
import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import Testing
@testable import MediaQueueWorkers

/// An input is read as one media file: a playlist (HLS) or another container that names other
/// files is refused, since ffmpeg would open what it names, other buckets' objects included.
@Suite("Input formats", .timeLimit(.minutes(10)))
struct InputFormatTests {
    /// `input/evil.m3u8` in the bucket, naming a video of the bucket beside it.
    func bucketWithPlaylistIntoAnotherBucket() async throws -> TemporaryBucket {
        let bucket = try TemporaryBucket()
        let other = bucket.root + "/other-1250000000/private.ts"
        try await SampleMedia.makeVideo(at: other, seconds: 2)
        try FileManager.default.createDirectory(atPath: bucket.path("input"), withIntermediateDirectories: true)
        let playlist = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n../../other-1250000000/private.ts\n#EXT-X-ENDLIST\n"
        try Data(playlist.utf8).write(to: URL(fileURLWithPath: bucket.path("input/evil.m3u8")))
        return bucket
    }

    @Test("MediaInfo of a playlist into another bucket fails with InvalidInput and tells nothing of it")
    func mediaInfo() async throws {
        let bucket = try await bucketWithPlaylistIntoAnotherBucket()
        defer { bucket.remove() }
        let worker = MediaInfoWorker(logger: quietLogger)
        let job = makeJob(try submit(tag: "MediaInfo", input: "input/evil.m3u8", operationXML: "", worker: worker), bucket: bucket)
        let failure = try #require(await workFailure { try await worker.run(job, context: makeContext(bucket)) })
        #expect(failure.code == "InvalidInput")
        #expect(failure.message.hasPrefix("input/evil.m3u8: its format (hls) is not read as an input"), "\(failure.message)")
        #expect(!failure.message.contains("other-1250000000"))
    }

    @Test("a Transcode of a playlist into another bucket fails with InvalidInput and writes nothing")
    func transcode() async throws {
        let bucket = try await bucketWithPlaylistIntoAnotherBucket()
        defer { bucket.remove() }
        let worker = TranscodeWorker(logger: quietLogger)
        let operation = try submit(
            tag: "Transcode", input: "input/evil.m3u8",
            operationXML: "<Transcode><Container><Format>mp4</Format></Container></Transcode><Output><Object>out/stolen.mp4</Object></Output>",
            worker: worker
        )
        let failure = try #require(await workFailure { try await worker.run(makeJob(operation, bucket: bucket), context: makeContext(bucket)) })
        #expect(failure.code == "InvalidInput")
        #expect(!bucket.objects().contains("out/stolen.mp4"))
    }
}
