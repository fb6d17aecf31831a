import Foundation
import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import Testing
@testable import MediaQueueWorkers

@Suite("ConcatWorker", .timeLimit(.minutes(10)))
struct ConcatWorkerTests {
    let worker = ConcatWorker(logger: quietLogger)

    func concatJob(_ concat: String, output: String = "out/joined.${ext}", bucket: TemporaryBucket) throws -> Job {
        let operation = try submit(
            tag: "Concat", operationXML: "<ConcatTemplate>\(concat)</ConcatTemplate><Output><Object>\(output)</Object></Output>", worker: worker
        )
        return makeJob(operation, bucket: bucket)
    }

    let mp4 = "<Container><Format>mp4</Format></Container><Video><Preset>veryfast</Preset></Video>"

    /// A stream that declares a video track without frames probes as 0x0: its aspect ratio was
    /// 0/0, and converting that to a size stopped the process.
    @Test("an input without a size, or with a strange one, still gives an even size in range")
    func outputSizeOfStrangeInputs() throws {
        func section(_ width: String, _ height: String) throws -> MediaProbe.Section? {
            let json = #"{"streams": [{"index": 0, "codec_type": "video", "width": \#(width), "height": \#(height)}], "format": {}}"#
            return try MediaProbe(json: Array(json.utf8)).video
        }
        func size(width: Int? = nil, height: Int? = nil, source: MediaProbe.Section?) -> [Int] {
            let video = TranscodeOptions.Video(codec: .h264, width: width, height: height)
            let size = ConcatWorker.outputSize(video, source: source)
            return [size.width, size.height]
        }
        #expect(size(width: 640, source: try section("0", "0")) == [640, 360], "the default 16:9")
        #expect(size(height: 360, source: try section("1920", "0")) == [1920, 360], "the default height")
        #expect(size(width: 640, source: try section("1", "1e300")) == [640, 2 * ConcatWorker.maxHalfSide])
        #expect(size(width: 640, source: try section("1920", "1080")) == [640, 360])
    }

    @Test("Start fragments, the input, End fragments: one output of the input's size, silence where audio is missing")
    func joins() async throws {
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        try await TestMedia.video(at: bucket.path("input/a.mp4"), seconds: 2, size: "320x240")
        try await TestMedia.video(at: bucket.path("clips/intro.mp4"), seconds: 1, size: "160x90")
        try await TestMedia.video(at: bucket.path("clips/outro.mp4"), seconds: 3, size: "320x240", audio: false)
        let job = try concatJob("""
            <ConcatFragment><Url>https://\(bucket.bucket).cos.ap-test.myqcloud.com/clips/intro.mp4</Url><Mode>Start</Mode></ConcatFragment>
            <ConcatFragment><Url>clips/outro.mp4</Url><Mode>End</Mode><StartTime>1</StartTime><EndTime>2.5</EndTime></ConcatFragment>
            \(mp4)
            """, bucket: bucket)
        let progress = ProgressLog()
        let result = try await worker.run(job, context: makeContext(bucket, progress: progress))
        #expect(try listedFiles(result).names == ["out/joined.mp4"])
        try await expectMD5sMatch(result, in: bucket)
        let probed = try await Probed(bucket.path("out/joined.mp4"))
        #expect(probed.video?["codec_name"] == "h264")
        #expect(probed.video?["width"] == "320")
        #expect(probed.video?["height"] == "240")
        #expect(probed.audio?["codec_name"] == "aac")
        // 1 s intro + 2 s input + 1.5 s of the outro.
        #expect(abs((probed.duration ?? 0) - 4.5) < 0.2)
        #expect(result.mediaInfo?.text("Stream", "Video", "Width") == "320")
        #expect(progress.reported.last == 100)
        #expect(bucket.objects() == ["clips/intro.mp4", "clips/outro.mp4", "input/a.mp4", "out/joined.mp4"])
    }

    @Test("an audio container joins the audio only")
    func audioOnly() async throws {
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        try await TestMedia.video(at: bucket.path("input/a.mp4"), seconds: 1)
        try await TestMedia.video(at: bucket.path("clips/b.mp4"), seconds: 1)
        let job = try concatJob(
            "<ConcatFragment><Url>clips/b.mp4</Url><Mode>End</Mode></ConcatFragment><Container><Format>mp3</Format></Container>", bucket: bucket
        )
        _ = try await worker.run(job, context: makeContext(bucket))
        let probed = try await Probed(bucket.path("out/joined.mp3"))
        #expect(probed.video == nil)
        #expect(probed.audio?["codec_name"] == "mp3")
        #expect(abs((probed.duration ?? 0) - 2) < 0.2)
    }

    @Test("a missing fragment fails with InputNotExist naming it; another bucket's URL with InvalidArgument")
    func badFragments() async throws {
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        try await TestMedia.video(at: bucket.path("input/a.mp4"), seconds: 1)
        let missing = try concatJob("<ConcatFragment><Url>clips/none.mp4</Url></ConcatFragment>\(mp4)", bucket: bucket)
        let failure = await workFailure { try await worker.run(missing, context: makeContext(bucket)) }
        #expect(failure?.code == "InputNotExist")
        #expect(failure?.message.contains("clips/none.mp4") == true)

        let foreign = try concatJob("<ConcatFragment><Url>https://other-125.cos.ap-test.myqcloud.com/a.mp4</Url></ConcatFragment>\(mp4)", bucket: bucket)
        let refused = await workFailure { try await worker.run(foreign, context: makeContext(bucket)) }
        #expect(refused?.code == "InvalidArgument")
        #expect(refused?.message.hasPrefix("Operation.ConcatTemplate.ConcatFragment[1].Url") == true)
        #expect(bucket.objects() == ["input/a.mp4"])
    }

    @Test("validation names the field at fault", arguments: [
        ("<ConcatTemplate><Container><Format>mp4</Format></Container></ConcatTemplate>", "Operation.ConcatTemplate.ConcatFragment"),
        ("<ConcatTemplate><ConcatFragment><Mode>Start</Mode></ConcatFragment><Container><Format>mp4</Format></Container></ConcatTemplate>", "Operation.ConcatTemplate.ConcatFragment[1].Url"),
        ("<ConcatTemplate><ConcatFragment><Url>a.mp4</Url></ConcatFragment><ConcatFragment><Url>../b.mp4</Url></ConcatFragment><Container><Format>mp4</Format></Container></ConcatTemplate>", "Operation.ConcatTemplate.ConcatFragment[2].Url"),
        ("<ConcatTemplate><ConcatFragment><Url>ftp://x/b.mp4</Url></ConcatFragment><Container><Format>mp4</Format></Container></ConcatTemplate>", "Operation.ConcatTemplate.ConcatFragment[1].Url"),
        ("<ConcatTemplate><ConcatFragment><Url>a.mp4</Url><Mode>Middle</Mode></ConcatFragment><Container><Format>mp4</Format></Container></ConcatTemplate>", "Operation.ConcatTemplate.ConcatFragment[1].Mode"),
        ("<ConcatTemplate><ConcatFragment><Url>a.mp4</Url><StartTime>2</StartTime><EndTime>1</EndTime></ConcatFragment><Container><Format>mp4</Format></Container></ConcatTemplate>", "Operation.ConcatTemplate.ConcatFragment[1].EndTime"),
        ("<ConcatTemplate><ConcatFragment><Url>a.mp4</Url></ConcatFragment></ConcatTemplate>", "Operation.ConcatTemplate.Container.Format"),
        ("<ConcatTemplate><ConcatFragment><Url>a.mp4</Url></ConcatFragment><Container><Format>flv</Format></Container><Video><Codec>VP8</Codec></Video></ConcatTemplate>", "Operation.ConcatTemplate.Video.Codec"),
        ("<ConcatTemplate><ConcatFragment><Url>a.mp4</Url></ConcatFragment><Container><Format>mp4</Format></Container><Audio><Samplerate>1</Samplerate></Audio></ConcatTemplate>", "Operation.ConcatTemplate.Audio.Samplerate"),
        ("<ConcatTemplate><ConcatFragment><Url>a.mp4</Url></ConcatFragment><Container><Format>mp4</Format></Container><DirectConcat>true</DirectConcat></ConcatTemplate>", "Operation.ConcatTemplate.DirectConcat"),
    ])
    func validation(operationXML: String, element: String) {
        let error = validationError(tag: "Concat", operationXML: operationXML + "<Output><Object>o.mp4</Object></Output>", worker: worker)
        #expect(error?.element == element)
        #expect(error?.message.hasPrefix(element) == true)
    }

    @Test("cancellation stops ffmpeg, leaves no child and no files")
    func cancellation() async throws {
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        try await TestMedia.video(at: bucket.path("input/a.mp4"), seconds: 30, size: "320x240")
        let ffmpeg = try await recordingFFmpeg(in: bucket)
        let worker = ConcatWorker(configuration: FFmpegConfiguration(ffmpegPath: ffmpeg.path), logger: quietLogger)
        let operation = try submit(
            tag: "Concat",
            operationXML: "<ConcatTemplate><ConcatFragment><Url>input/a.mp4</Url></ConcatFragment><Container><Format>mp4</Format></Container><Video><Width>3840</Width><Preset>slower</Preset></Video></ConcatTemplate><Output><Object>out/j.mp4</Object></Output>",
            worker: worker
        )
        try await expectCancellationCleansUp(
            worker: worker, job: makeJob(operation, bucket: bucket), bucket: bucket, pidFile: ffmpeg.pidFile, inputs: ["input/a.mp4"]
        )
    }

    @Test("a job past its time limit fails with JobTimeout")
    func timeout() async throws {
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        try await TestMedia.video(at: bucket.path("input/a.mp4"), seconds: 1)
        try await expectTimeoutFails(
            makeWorker: { ConcatWorker(configuration: $0, logger: quietLogger) },
            job: { bucket in try concatJob("<ConcatFragment><Url>input/a.mp4</Url></ConcatFragment>\(mp4)", bucket: bucket) },
            bucket: bucket, inputs: ["input/a.mp4"]
        )
    }
}
