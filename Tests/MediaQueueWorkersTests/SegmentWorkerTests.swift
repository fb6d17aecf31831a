import Foundation
import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import Testing
@testable import MediaQueueWorkers

@Suite("SegmentWorker", .timeLimit(.minutes(10)))
struct SegmentWorkerTests {
    let worker = SegmentWorker(logger: quietLogger)

    /// A bucket with a 12 s `input/a.mp4`, a key frame every second (cuts fall on them).
    func bucketWithVideo(seconds: Double = 12) async throws -> TemporaryBucket {
        let bucket = try TemporaryBucket()
        try await TestMedia.video(at: bucket.path("input/a.mp4"), seconds: seconds, keyFrameEvery: 25)
        return bucket
    }

    func segmentJob(_ segment: String, output: String, bucket: TemporaryBucket) throws -> Job {
        let operation = try submit(
            tag: "Segment", operationXML: "<Segment>\(segment)</Segment><Output><Object>\(output)</Object></Output>", worker: worker
        )
        return makeJob(operation, bucket: bucket)
    }

    @Test("mp4 and ts with Duration: one file per segment named by ${Number}, stream-copied", arguments: ["mp4", "ts"])
    func numbered(format: String) async throws {
        let bucket = try await bucketWithVideo()
        defer { bucket.remove() }
        let job = try segmentJob("<Format>\(format)</Format><Duration>5</Duration>", output: "seg/${InputName}-${Number}.${ext}", bucket: bucket)
        let progress = ProgressLog()
        let result = try await worker.run(job, context: makeContext(bucket, progress: progress))
        let expected = (0..<3).map { "seg/a-\($0).\(format)" }
        #expect(try listedFiles(result).names == expected)
        #expect(bucket.objects() == ["input/a.mp4"] + expected)
        try await expectMD5sMatch(result, in: bucket)
        for (name, duration) in zip(expected, [5.0, 5, 2]) {
            let probed = try await Probed(bucket.path(name))
            #expect(probed.video?["codec_name"] == "h264")
            #expect(probed.video?["width"] == "160")
            #expect(probed.audio?["codec_name"] == "aac")
            #expect(abs((probed.duration ?? 0) - duration) < 0.2, "\(name)")
        }
        #expect(result.mediaInfo?.text("Stream", "Video", "CodecName") == "h264")
        #expect(progress.reported.last == 100)
    }

    @Test("hls: a playlist and Duration-long ts segments; StartTime and EndTime cut the input")
    func hls() async throws {
        let bucket = try await bucketWithVideo()
        defer { bucket.remove() }
        let job = try segmentJob("<Format>hls</Format><Duration>5</Duration><StartTime>1</StartTime><EndTime>11</EndTime>", output: "hls/list.m3u8", bucket: bucket)
        let result = try await worker.run(job, context: makeContext(bucket))
        let expected = ["hls/list-0.ts", "hls/list-1.ts", "hls/list.m3u8"]
        #expect(try listedFiles(result).names == expected)
        #expect(bucket.objects() == expected + ["input/a.mp4"])
        let probed = try await Probed(bucket.path("hls/list.m3u8"))
        #expect(abs((probed.duration ?? 0) - 10) < 0.3)
    }

    @Test("without Duration: one remuxed file")
    func single() async throws {
        let bucket = try await bucketWithVideo(seconds: 2)
        defer { bucket.remove() }
        let job = try segmentJob("<Format>mkv</Format>", output: "out/a.${ext}", bucket: bucket)
        let result = try await worker.run(job, context: makeContext(bucket))
        #expect(try listedFiles(result).names == ["out/a.mkv"])
        let probed = try await Probed(bucket.path("out/a.mkv"))
        #expect(probed.format["format_name"]?.hasPrefix("matroska") == true)
        #expect(abs((probed.duration ?? 0) - 2) < 0.2)
    }

    @Test("validation names the field at fault", arguments: [
        ("<Segment><Format>avi</Format></Segment>", "out/s-${Number}.avi", "Operation.Segment.Format"),
        ("<Segment></Segment>", "out/s.mp4", "Operation.Segment.Format"),
        ("<Segment><Format>mp4</Format><Duration>4</Duration></Segment>", "out/s-${Number}.mp4", "Operation.Segment.Duration"),
        ("<Segment><Format>mp4</Format><Duration>5.5</Duration></Segment>", "out/s-${Number}.mp4", "Operation.Segment.Duration"),
        ("<Segment><Format>mp4</Format><Duration>5</Duration></Segment>", "out/s.mp4", "Operation.Output.Object"),
        ("<Segment><Format>ts</Format><StartTime>-1</StartTime></Segment>", "out/s.ts", "Operation.Segment.StartTime"),
        ("<Segment><Format>ts</Format><StartTime>5</StartTime><EndTime>5</EndTime></Segment>", "out/s.ts", "Operation.Segment.EndTime"),
        ("<Segment><Format>hls</Format><HlsEncrypt><IsHlsEncrypt>true</IsHlsEncrypt></HlsEncrypt></Segment>", "out/s.m3u8", "Operation.Segment.HlsEncrypt.IsHlsEncrypt"),
        ("<TemplateId>t0cba0cccc978d16d1318ebe6ecd6bf14c</TemplateId><Segment><Format>ts</Format></Segment>", "out/s.ts", "Operation.TemplateId"),
    ])
    func validation(operationXML: String, output: String, element: String) {
        let error = validationError(tag: "Segment", operationXML: operationXML + "<Output><Object>\(output)</Object></Output>", worker: worker)
        #expect(error?.element == element)
        #expect(error?.message.hasPrefix(element) == true)
    }

    @Test("hls needs no ${Number}; m3u8 is its alias")
    func validationAccepts() {
        for format in ["hls", "m3u8"] {
            let xml = "<Segment><Format>\(format)</Format><Duration>5</Duration></Segment><Output><Object>o.m3u8</Object></Output>"
            #expect(validationError(tag: "Segment", operationXML: xml, worker: worker) == nil)
        }
    }

    @Test("a missing input fails with InputNotExist; a corrupt one with InvalidInput")
    func badInputs() async throws {
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        let job = try segmentJob("<Format>ts</Format>", output: "out/a.ts", bucket: bucket)
        #expect(await workFailure { try await worker.run(job, context: makeContext(bucket)) }?.code == "InputNotExist")
        try SampleMedia.makeCorruptFile(at: bucket.path("input/a.mp4"))
        let corrupt = await workFailure { try await worker.run(job, context: makeContext(bucket)) }
        #expect(corrupt?.code == "InvalidInput", "\(String(describing: corrupt))")
        #expect(bucket.objects() == ["input/a.mp4"])
    }

    @Test("a job past its time limit fails with JobTimeout")
    func timeout() async throws {
        let bucket = try await bucketWithVideo(seconds: 1)
        defer { bucket.remove() }
        try await expectTimeoutFails(
            makeWorker: { SegmentWorker(configuration: $0, logger: quietLogger) },
            job: { bucket in try segmentJob("<Format>ts</Format>", output: "out/a.ts", bucket: bucket) },
            bucket: bucket, inputs: ["input/a.mp4"]
        )
    }
}
