import Foundation
import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import Testing
@testable import MediaQueueWorkers

@Suite("MediaInfoWorker", .timeLimit(.minutes(10)))
struct MediaInfoWorkerTests {
    let worker = MediaInfoWorker(logger: quietLogger)

    @Test("describes a real video as CI's MediaInfo")
    func describesVideo() async throws {
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        try await SampleMedia.makeVideo(at: bucket.path("input/a.mp4"), seconds: 5)
        let job = makeJob(try submit(tag: "MediaInfo", operationXML: "", worker: worker), bucket: bucket)
        let progress = ProgressLog()

        let result = try await worker.run(job, context: makeContext(bucket, progress: progress))

        let info = try #require(result.mediaInfo)
        #expect(result.mediaResult == nil)
        #expect(info.name == "MediaInfo")
        let duration = try #require(info.text("Format", "Duration").flatMap(Double.init))
        #expect(abs(duration - 5) < 0.2)
        #expect(info.text("Format", "NumStream") == "2")
        #expect(info.text("Format", "FormatName")?.contains("mp4") == true)
        #expect(info.text("Format", "Size") == String(try FileManager.default.attributesOfItem(atPath: bucket.path("input/a.mp4"))[.size] as? Int ?? -1))
        let bitrate = try #require(info.text("Format", "Bitrate").flatMap(Double.init))
        #expect(bitrate > 0)

        let stream = try #require(info["Stream"])
        let videos = stream.all("Video")
        let audios = stream.all("Audio")
        #expect(videos.count == 1)
        #expect(audios.count == 1)
        let video = try #require(videos.first)
        #expect(video.text("CodecName") == "h264")
        #expect(video.text("Width") == "320")
        #expect(video.text("Height") == "240")
        #expect(video.text("Fps") == "25")
        #expect(video.text("PixFormat") == "yuv420p")
        #expect(video.text("Rotation") == "0")
        let audio = try #require(audios.first)
        #expect(audio.text("CodecName") == "aac")
        #expect(audio.text("SampleRate") != nil)
        #expect(audio.text("Channel") == "1")
        // Every value is a leaf with text; nothing ffprobe lacks shows up empty.
        for element in videos + audios + [try #require(info["Format"])] {
            #expect(element.children.allSatisfy { $0.children.isEmpty && !$0.text.isEmpty })
        }
        #expect(progress.reported.last == 100)
    }

    @Test("a missing input fails with InputNotExist")
    func missingInput() async throws {
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        let job = makeJob(try submit(tag: "MediaInfo", input: "input/none.mp4", operationXML: "", worker: worker), bucket: bucket)
        let failure = await workFailure { try await worker.run(job, context: makeContext(bucket)) }
        #expect(failure?.code == "InputNotExist")
        #expect(failure?.message.contains("input/none.mp4") == true)
    }

    @Test("a corrupt input fails with InvalidInput and ffprobe's reason, without server paths")
    func corruptInput() async throws {
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        try SampleMedia.makeCorruptFile(at: bucket.path("input/a.mp4"))
        let job = makeJob(try submit(tag: "MediaInfo", operationXML: "", worker: worker), bucket: bucket)
        let failure = try #require(await workFailure { try await worker.run(job, context: makeContext(bucket)) })
        #expect(failure.code == "InvalidInput")
        #expect(failure.message.contains("input/a.mp4"))
        #expect(failure.message.count > "input/a.mp4".count + 5)
        #expect(!failure.message.contains(bucket.root))
    }

    @Test("an unreachable ffprobe fails with InternalError")
    func missingTool() async throws {
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        try SampleMedia.makeCorruptFile(at: bucket.path("input/a.mp4"))
        let worker = MediaInfoWorker(configuration: FFmpegConfiguration(ffprobePath: "/nonexistent/ffprobe"), logger: quietLogger)
        let job = makeJob(try submit(tag: "MediaInfo", operationXML: "", worker: worker), bucket: bucket)
        let failure = await workFailure { try await worker.run(job, context: makeContext(bucket)) }
        #expect(failure?.code == "InternalError")
        #expect(failure?.message.contains("/nonexistent/ffprobe") == true)
    }

    @Test("validation requires Input.Object")
    func validation() {
        #expect(validationError(tag: "MediaInfo", input: nil, operationXML: "", worker: worker)?.element == "Input.Object")
        #expect(validationError(tag: "MediaInfo", operationXML: "", worker: worker) == nil)
    }

    /// A `rotate` tag is the file's own text: `nan` or `1e400` once stopped the process.
    @Test("a rotation that is no number of degrees reads as none; others as degrees within a turn", arguments: [
        ("nan", "0"), ("inf", "0"), ("-inf", "0"), ("1e400", "0"), ("450", "90"), ("-90", "270"), ("1e300", nil),
    ] as [(String, String?)])
    func strangeRotation(_ tag: String, _ expected: String?) throws {
        let json = """
        {"streams": [{"index": 0, "codec_type": "video", "codec_name": "h264", "width": 2, "height": 2, "tags": {"rotate": "\(tag)"}}],
         "format": {"nb_streams": 1}}
        """
        let rotation = try #require(try MediaProbe(json: Array(json.utf8)).mediaInfo().text("Stream", "Video", "Rotation"))
        if let expected {
            #expect(rotation == expected)
        } else {
            #expect(Int(rotation).map { (0..<360).contains($0) } == true, "\(rotation)")
        }
    }

    @Test("maps rotation, languages and subtitles from ffprobe's report")
    func reportMapping() throws {
        let json = """
        {"streams": [
          {"index": 0, "codec_type": "video", "codec_name": "h264", "width": 1920, "height": 1080,
           "r_frame_rate": "30000/1001", "avg_frame_rate": "0/0", "bit_rate": "1500000",
           "tags": {"language": "eng"}, "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]},
          {"index": 1, "codec_type": "audio", "codec_name": "aac", "channels": 2, "tags": {"language": "fra", "rotate": "7"}},
          {"index": 2, "codec_type": "subtitle", "codec_name": "mov_text", "tags": {"language": "deu"}},
          {"index": 3, "codec_type": "data"}
        ], "format": {"nb_streams": 4, "duration": "N/A", "bit_rate": "1234567"}}
        """
        let info = try MediaProbe(json: Array(json.utf8)).mediaInfo()
        let video = try #require(info["Stream"]?["Video"])
        #expect(video.text("Rotation") == "90")
        #expect(video.text("Fps") == "29.97")
        #expect(video.text("AvgFps") == nil)
        #expect(video.text("Bitrate") == "1500.000000")
        #expect(video.text("Language") == "eng")
        #expect(video.text("Index") == "0")
        #expect(info.text("Stream", "Audio", "Channel") == "2")
        #expect(info.text("Stream", "Audio", "Language") == "fra")
        #expect(info.text("Stream", "Subtitle", "Language") == "deu")
        #expect(info.text("Stream", "Subtitle", "Index") == "2")
        #expect(info["Stream"]?.children.count == 3)
        #expect(info.text("Format", "NumStream") == "4")
        #expect(info.text("Format", "Duration") == nil)
        #expect(info.text("Format", "Bitrate") == "1234.567000")
    }
}
