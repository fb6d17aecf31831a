import Foundation
import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import Testing
@testable import MediaQueueWorkers

@Suite("AnimationWorker", .timeLimit(.minutes(10)))
struct AnimationWorkerTests {
    let worker = AnimationWorker(logger: quietLogger)

    /// A bucket with a 160x120 `input/a.mp4` at 25 fps, a key frame every second.
    func bucketWithVideo(seconds: Double = 4) async throws -> TemporaryBucket {
        let bucket = try TemporaryBucket()
        try await TestMedia.video(at: bucket.path("input/a.mp4"), seconds: seconds, keyFrameEvery: 25)
        return bucket
    }

    func animationJob(_ animation: String, output: String = "out/a.${ext}", extra: String = "", bucket: TemporaryBucket) throws -> Job {
        let operation = try submit(
            tag: "Animation", operationXML: "\(extra)<Animation>\(animation)</Animation><Output><Object>\(output)</Object></Output>",
            worker: worker
        )
        return makeJob(operation, bucket: bucket)
    }

    /// Frames in a GIF, counted by decoding it.
    func gifFrames(_ path: String) async throws -> Int {
        let video = try #require(try await Probed(path, countFrames: true).video)
        return try #require(video["nb_read_frames"].flatMap(Int.init))
    }

    @Test("GIF: size, Fps and TimeInterval give the frames expected; MD5 and MediaInfo reported")
    func gif() async throws {
        let bucket = try await bucketWithVideo()
        defer { bucket.remove() }
        let job = try animationJob(
            "<Container><Format>gif</Format></Container><Video><Codec>gif</Codec><Width>128</Width><Fps>5</Fps></Video>"
                + "<TimeInterval><Start>1</Start><Duration>2</Duration></TimeInterval>",
            bucket: bucket
        )
        let progress = ProgressLog()
        let result = try await worker.run(job, context: makeContext(bucket, progress: progress))
        #expect(bucket.objects() == ["input/a.mp4", "out/a.gif"])
        #expect(try listedFiles(result).names == ["out/a.gif"])
        try await expectMD5sMatch(result, in: bucket)
        let video = try #require(try await Probed(bucket.path("out/a.gif")).video)
        #expect(video["codec_name"] == "gif")
        #expect(video["width"] == "128")
        #expect(video["height"] == "96")
        #expect(try await gifFrames(bucket.path("out/a.gif")) == 10)
        #expect(result.mediaInfo?.text("Stream", "Video", "CodecName") == "gif")
        #expect(progress.reported.last == 100)
    }

    @Test("frame options: key frames only, one every N seconds, N per second", arguments: [
        ("<AnimateOnlyKeepKeyFrame>true</AnimateOnlyKeepKeyFrame>", 4),
        ("<AnimateTimeIntervalOfFrame>2</AnimateTimeIntervalOfFrame>", 2),
        ("<AnimateFramesPerSecond>2</AnimateFramesPerSecond>", 8),
        ("<AnimateFramesPerSecond>2</AnimateFramesPerSecond><Fps>10</Fps>", 8),
        ("<AnimateOnlyKeepKeyFrame>true</AnimateOnlyKeepKeyFrame><AnimateFramesPerSecond>5</AnimateFramesPerSecond>", 4),
        ("<AnimateOnlyKeepKeyFrame>true</AnimateOnlyKeepKeyFrame><Fps>5</Fps>", 4),
    ])
    func frameOptions(video: String, frames: Int) async throws {
        let bucket = try await bucketWithVideo()
        defer { bucket.remove() }
        let job = try animationJob("<Container><Format>gif</Format></Container><Video>\(video)</Video>", bucket: bucket)
        _ = try await worker.run(job, context: makeContext(bucket))
        #expect(try await gifFrames(bucket.path("out/a.gif")) == frames)
        if video.contains("<Fps>") {
            // The taken frames play back at Fps: a time-lapse of the 4 s video.
            let duration = try #require(try await Probed(bucket.path("out/a.gif")).duration)
            #expect(abs(duration - Double(frames) / (video.contains("<Fps>10") ? 10 : 5)) < 0.05)
        }
    }

    @Test("WebP: an animated WebP with one frame per Fps step")
    func webp() async throws {
        let bucket = try await bucketWithVideo(seconds: 2)
        defer { bucket.remove() }
        let job = try animationJob(
            "<Container><Format>webp</Format></Container><Video><Codec>webp</Codec><Height>128</Height><Fps>5</Fps><Quality>50</Quality></Video>",
            bucket: bucket
        )
        let result = try await worker.run(job, context: makeContext(bucket))
        #expect(try listedFiles(result).names == ["out/a.webp"])
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: bucket.path("out/a.webp"))))
        #expect(Array(bytes[0..<4]) == Array("RIFF".utf8))
        #expect(Array(bytes[8..<12]) == Array("WEBP".utf8))
        // Each frame of an animated WebP is an ANMF chunk.
        let anmf = Array("ANMF".utf8)
        let frames = (0..<(bytes.count - 4)).filter { Array(bytes[$0..<$0 + 4]) == anmf }.count
        #expect(frames == 10)
    }

    @Test("TemplateId wins over inline parameters")
    func template() async throws {
        let bucket = try await bucketWithVideo(seconds: 1)
        defer { bucket.remove() }
        let gifTemplate = try #require(SystemTemplates.all.first { $0.tag == "Animation" })
        let job = try animationJob(
            "<Container><Format>webp</Format></Container><Video><Width>160</Width></Video>",
            extra: "<TemplateId>\(gifTemplate.id)</TemplateId>", bucket: bucket
        )
        _ = try await worker.run(job, context: makeContext(bucket))
        let video = try #require(try await Probed(bucket.path("out/a.gif")).video)
        #expect(video["width"] == "320")
        #expect(try await gifFrames(bucket.path("out/a.gif")) == 10)
    }

    @Test("validation names the field at fault", arguments: [
        ("<Animation><Container><Format>apng</Format></Container></Animation>", "Operation.Animation.Container.Format"),
        ("<Animation><Video><Width>200</Width></Video></Animation>", "Operation.Animation.Container.Format"),
        ("<Animation><Container><Format>gif</Format></Container><Video><Codec>webp</Codec></Video></Animation>", "Operation.Animation.Video.Codec"),
        ("<Animation><Container><Format>gif</Format></Container><Video><Width>100</Width></Video></Animation>", "Operation.Animation.Video.Width"),
        ("<Animation><Container><Format>gif</Format></Container><Video><Height>5000</Height></Video></Animation>", "Operation.Animation.Video.Height"),
        ("<Animation><Container><Format>gif</Format></Container><Video><Fps>0</Fps></Video></Animation>", "Operation.Animation.Video.Fps"),
        ("<Animation><Container><Format>gif</Format></Container><Video><AnimateOnlyKeepKeyFrame>maybe</AnimateOnlyKeepKeyFrame></Video></Animation>", "Operation.Animation.Video.AnimateOnlyKeepKeyFrame"),
        ("<Animation><Container><Format>gif</Format></Container><Video><AnimateTimeIntervalOfFrame>0</AnimateTimeIntervalOfFrame></Video></Animation>", "Operation.Animation.Video.AnimateTimeIntervalOfFrame"),
        ("<Animation><Container><Format>gif</Format></Container><Video><AnimateFramesPerSecond>-2</AnimateFramesPerSecond></Video></Animation>", "Operation.Animation.Video.AnimateFramesPerSecond"),
        ("<Animation><Container><Format>webp</Format></Container><Video><Quality>101</Quality></Video></Animation>", "Operation.Animation.Video.Quality"),
        ("<Animation><Container><Format>gif</Format></Container><TimeInterval><Duration>-1</Duration></TimeInterval></Animation>", "Operation.Animation.TimeInterval.Duration"),
        ("<TemplateId>t0cba0cccc978d16d1318ebe6ecd6bf14c</TemplateId>", "Operation.TemplateId"),
    ])
    func validation(operationXML: String, element: String) {
        let error = validationError(tag: "Animation", operationXML: operationXML + "<Output><Object>out/a.gif</Object></Output>", worker: worker)
        #expect(error?.element == element)
        #expect(error?.message.hasPrefix(element) == true)
    }

    @Test("a missing input fails with InputNotExist; a corrupt one with InvalidInput")
    func badInputs() async throws {
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        let job = try animationJob("<Container><Format>gif</Format></Container>", bucket: bucket)
        #expect(await workFailure { try await worker.run(job, context: makeContext(bucket)) }?.code == "InputNotExist")
        try SampleMedia.makeCorruptFile(at: bucket.path("input/a.mp4"))
        #expect(await workFailure { try await worker.run(job, context: makeContext(bucket)) }?.code == "InvalidInput")
        #expect(bucket.objects() == ["input/a.mp4"])
    }

    @Test("cancellation stops ffmpeg, leaves no child and no files")
    func cancellation() async throws {
        let bucket = try await bucketWithVideo(seconds: 30)
        defer { bucket.remove() }
        let ffmpeg = try await recordingFFmpeg(in: bucket)
        let worker = AnimationWorker(configuration: FFmpegConfiguration(ffmpegPath: ffmpeg.path), logger: quietLogger)
        let operation = try submit(
            tag: "Animation",
            operationXML: "<Animation><Container><Format>webp</Format></Container><Video><Width>4096</Width><Quality>100</Quality></Video></Animation><Output><Object>out/a.webp</Object></Output>",
            worker: worker
        )
        try await expectCancellationCleansUp(
            worker: worker, job: makeJob(operation, bucket: bucket), bucket: bucket, pidFile: ffmpeg.pidFile, inputs: ["input/a.mp4"]
        )
    }

    @Test("a job past its time limit fails with JobTimeout")
    func timeout() async throws {
        let bucket = try await bucketWithVideo(seconds: 1)
        defer { bucket.remove() }
        try await expectTimeoutFails(
            makeWorker: { AnimationWorker(configuration: $0, logger: quietLogger) },
            job: { bucket in try animationJob("<Container><Format>gif</Format></Container>", bucket: bucket) },
            bucket: bucket, inputs: ["input/a.mp4"]
        )
    }
}
