import Foundation
import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import Testing
@testable import MediaQueueWorkers

@Suite("TranscodeWorker", .timeLimit(.minutes(10)))
struct TranscodeWorkerTests {
    let worker = TranscodeWorker(logger: quietLogger)

    /// A bucket holding a 160x120 H.264/AAC `input/a.mp4` of `seconds` seconds.
    func bucketWithVideo(seconds: Double = 2, audio: Bool = true) async throws -> TemporaryBucket {
        let bucket = try TemporaryBucket()
        try await TestMedia.video(at: bucket.path("input/a.mp4"), seconds: seconds, audio: audio)
        return bucket
    }

    func transcodeJob(_ transcode: String, output: String = "out/b.${ext}", extra: String = "", bucket: TemporaryBucket) throws -> Job {
        let operation = try submit(
            tag: "Transcode", operationXML: "\(extra)<Transcode>\(transcode)</Transcode><Output><Object>\(output)</Object></Output>",
            worker: worker
        )
        return makeJob(operation, bucket: bucket)
    }

    @Test("MP4: size with the aspect ratio kept, TimeInterval, codecs, MD5 and the output's MediaInfo")
    func mp4() async throws {
        let bucket = try await bucketWithVideo(seconds: 4)
        defer { bucket.remove() }
        let job = try transcodeJob("""
            <Container><Format>mp4</Format></Container>
            <Video><Codec>H.264</Codec><Width>320</Width><Fps>20</Fps><Crf>30</Crf><Preset>veryfast</Preset><Profile>main</Profile></Video>
            <Audio><Codec>aac</Codec><Samplerate>22050</Samplerate><Bitrate>64</Bitrate><Channels>1</Channels></Audio>
            <TimeInterval><Start>1</Start><Duration>2</Duration></TimeInterval>
            """, bucket: bucket)
        let progress = ProgressLog()

        let result = try await worker.run(job, context: makeContext(bucket, progress: progress))

        #expect(bucket.objects() == ["input/a.mp4", "out/b.mp4"])
        #expect(try listedFiles(result).names == ["out/b.mp4"])
        try await expectMD5sMatch(result, in: bucket)
        let file = try #require(result.mediaResult?["OutputFile"])
        #expect(file.text("Bucket") == bucket.bucket)
        #expect(file.text("Region") == "ap-test")

        let probed = try await Probed(bucket.path("out/b.mp4"))
        #expect(probed.format["format_name"]?.contains("mp4") == true)
        let video = try #require(probed.video)
        #expect(video["codec_name"] == "h264")
        #expect(video["profile"] == "Main")
        #expect(video["width"] == "320")
        #expect(video["height"] == "240")
        #expect(video["avg_frame_rate"] == "20/1")
        let audio = try #require(probed.audio)
        #expect(audio["codec_name"] == "aac")
        #expect(audio["sample_rate"] == "22050")
        #expect(audio["channels"] == "1")
        #expect(abs((probed.duration ?? 0) - 2) < 0.15)

        let info = try #require(result.mediaInfo)
        #expect(info.text("Stream", "Video", "Width") == "320")
        #expect(info.text("Stream", "Audio", "CodecName") == "aac")
        #expect(info.text("Format", "Duration").flatMap(Double.init).map { abs($0 - 2) < 0.15 } == true)

        #expect(progress.reported.last == 100)
        #expect(progress.reported.contains { $0 > 0 && $0 < 100 }, "ffmpeg's -progress report is turned into percentages")
    }

    @Test("containers and codecs as §7.2 pairs them", arguments: [
        ("flv", "", "", "flv", "h264", "aac"),
        ("ts", "", "<Codec>mp3</Codec>", "mpegts", "h264", "mp3"),
        ("mkv", "", "", "matroska", "h264", "aac"),
        ("mp4", "<Codec>H.265</Codec>", "<Codec>mp3</Codec>", "mp4", "hevc", "mp3"),
        ("webm", "", "", "webm", "vp8", "vorbis"),
        ("WebM", "<Codec>VP8</Codec><Preset>realtime</Preset>", "<Codec>opus</Codec>", "webm", "vp8", "opus"),
        ("mp3", "", "", "mp3", nil, "mp3"),
        ("aac", "", "", "aac", nil, "aac"),
        ("flac", "", "", "flac", nil, "flac"),
    ] as [(String, String, String, String, String?, String)])
    func containers(format: String, video: String, audio: String, formatName: String, videoCodec: String?, audioCodec: String) async throws {
        let bucket = try await bucketWithVideo(seconds: 1)
        defer { bucket.remove() }
        let job = try transcodeJob(
            "<Container><Format>\(format)</Format></Container><Video>\(video)</Video><Audio>\(audio)</Audio>", bucket: bucket
        )
        let result = try await worker.run(job, context: makeContext(bucket))
        let object = "out/b.\(format.lowercased())"
        #expect(try listedFiles(result).names == [object])
        let probed = try await Probed(bucket.path(object))
        #expect(probed.format["format_name"]?.split(separator: ",").contains(Substring(formatName)) == true)
        #expect(probed.video?["codec_name"] == videoCodec)
        #expect(probed.audio?["codec_name"] == audioCodec)
        #expect(abs((probed.duration ?? 0) - 1) < 0.2)
    }

    @Test("HLS: a playlist and HlsTsTime-long ts segments beside it, all listed with MD5s")
    func hls() async throws {
        let bucket = try await bucketWithVideo(seconds: 3)
        defer { bucket.remove() }
        let job = try transcodeJob(
            "<Container><Format>hls</Format></Container><Video><HlsTsTime>1</HlsTsTime><Preset>veryfast</Preset></Video>",
            output: "hls/${InputName}.${ext}", bucket: bucket
        )
        let result = try await worker.run(job, context: makeContext(bucket))
        let segments = bucket.objects().filter { $0.hasSuffix(".ts") }
        #expect(segments.count == 3)
        #expect(segments.allSatisfy { $0.hasPrefix("hls/a-") })
        #expect(bucket.objects() == (["hls/a.m3u8", "input/a.mp4"] + segments).sorted())
        #expect(try listedFiles(result).names == segments.sorted { $0.compare($1, options: .numeric) == .orderedAscending } + ["hls/a.m3u8"])
        try await expectMD5sMatch(result, in: bucket)
        let playlist = try String(contentsOfFile: bucket.path("hls/a.m3u8"), encoding: .utf8)
        for segment in segments { #expect(playlist.contains(String(segment.dropFirst(4)))) }
        let probed = try await Probed(bucket.path("hls/a.m3u8"))
        #expect(probed.video?["codec_name"] == "h264")
        #expect(abs((probed.duration ?? 0) - 3) < 0.2)
        #expect(result.mediaInfo?.text("Stream", "Video", "CodecName") == "h264")
    }

    @Test("HLS: an output whose name holds % is refused, not published with a playlist that names segments never written")
    func hlsWithPercent() async throws {
        let bucket = try await bucketWithVideo(seconds: 1)
        defer { bucket.remove() }
        let job = try transcodeJob(
            "<Container><Format>hls</Format></Container><Video><Preset>veryfast</Preset></Video>", output: "hls/50%off.${ext}", bucket: bucket
        )
        await #expect {
            _ = try await worker.run(job, context: makeContext(bucket))
        } throws: { error in
            (error as? WorkFailure)?.code == "InvalidArgument"
        }
        #expect(bucket.objects() == ["input/a.mp4"])
    }

    @Test("a source of odd width and height transcodes to H.264 4:2:0, a pixel narrower and shorter")
    func oddSize() async throws {
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        try FileManager.default.createDirectory(atPath: bucket.path("input"), withIntermediateDirectories: true)
        // 4:4:4, which allows odd sizes; a screen recording's 1279x719 is the same case.
        try await runCommand("/usr/bin/ffmpeg", [
            "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=1:size=129x97:rate=25",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p", bucket.path("input/a.mp4"),
        ])
        let job = try transcodeJob("<Container><Format>mp4</Format></Container><Video><Preset>veryfast</Preset></Video>", bucket: bucket)
        _ = try await worker.run(job, context: makeContext(bucket))
        let video = try #require(try await Probed(bucket.path("out/b.mp4")).video)
        #expect(video["width"] == "128" && video["height"] == "96" && video["pix_fmt"] == "yuv420p")
    }

    static let output = "<Output><Object>out/b.mp4</Object></Output>"

    @Test("settings that are not built are refused, not ignored; Gop 0 is automatic")
    func refusedAndAutomaticSettings() throws {
        for (extra, transcode) in [
            ("<Subtitles><Subtitle><Url>a.srt</Url></Subtitle></Subtitles>", "<Container><Format>mp4</Format></Container>"),
            ("", "<Container><Format>mp4</Format></Container><Video><Rotate>90</Rotate></Video>"),
            ("", "<Container><Format>mp4</Format><ClipConfig><Duration>5</Duration></ClipConfig></Container>"),
        ] {
            #expect(throws: CIError.self, "\(extra)\(transcode)") {
                _ = try submit(tag: "Transcode", operationXML: "\(extra)<Transcode>\(transcode)</Transcode>\(Self.output)", worker: worker)
            }
        }
        let automatic = try submit(
            tag: "Transcode", operationXML: "<Transcode><Container><Format>mp4</Format></Container><Video><Gop>0</Gop><Rotate>0</Rotate></Video></Transcode>" + Self.output,
            worker: worker
        )
        #expect(try TranscodeWorker.options(automatic.operation).video?.gop == nil)
    }

    @Test("Width and Height with AdjDarMethod pad: letterboxed to exactly that size")
    func padding() async throws {
        let bucket = try await bucketWithVideo(seconds: 1)
        defer { bucket.remove() }
        let job = try transcodeJob(
            "<Container><Format>mp4</Format></Container><Video><Width>256</Width><Height>256</Height><Preset>veryfast</Preset></Video>"
                + "<TransConfig><AdjDarMethod>pad</AdjDarMethod><DeleteMetadata>true</DeleteMetadata></TransConfig>",
            bucket: bucket
        )
        _ = try await worker.run(job, context: makeContext(bucket))
        let video = try #require(try await Probed(bucket.path("out/b.mp4")).video)
        #expect(video["width"] == "256")
        #expect(video["height"] == "256")
        #expect(video["sample_aspect_ratio"] == "1:1")
    }

    @Test("Video.Remove writes audio only; a video without audio still transcodes")
    func removeStreams() async throws {
        let bucket = try await bucketWithVideo(seconds: 1)
        defer { bucket.remove() }
        let job = try transcodeJob("<Container><Format>mp4</Format></Container><Video><Remove>true</Remove></Video>", bucket: bucket)
        _ = try await worker.run(job, context: makeContext(bucket))
        let probed = try await Probed(bucket.path("out/b.mp4"))
        #expect(probed.video == nil)
        #expect(probed.audio?["codec_name"] == "aac")

        try await TestMedia.video(at: bucket.path("input/silent.mp4"), seconds: 1, audio: false)
        let operation = try submit(
            tag: "Transcode", input: "input/silent.mp4",
            operationXML: "<Transcode><Container><Format>mkv</Format></Container></Transcode><Output><Object>out/silent.mkv</Object></Output>",
            worker: worker
        )
        _ = try await worker.run(makeJob(operation, bucket: bucket), context: makeContext(bucket))
        let silent = try await Probed(bucket.path("out/silent.mkv"))
        #expect(silent.video?["codec_name"] == "h264")
        #expect(silent.audio == nil)
    }

    @Test("TemplateId wins over inline parameters, and JobsDetail echoes TemplateName")
    func templateWins() async throws {
        let bucket = try await bucketWithVideo(seconds: 1)
        defer { bucket.remove() }
        let mp3 = try #require(SystemTemplates.all.first { $0.name == "MP3-128K" })
        let job = try transcodeJob(
            "<Container><Format>mp4</Format></Container><Video><Width>320</Width></Video>",
            output: "out/b.${ext}", extra: "<TemplateId>\(mp3.id)</TemplateId>", bucket: bucket
        )
        let result = try await worker.run(job, context: makeContext(bucket))
        #expect(try listedFiles(result).names == ["out/b.mp3"])
        let probed = try await Probed(bucket.path("out/b.mp3"))
        #expect(probed.video == nil)
        #expect(probed.audio?["codec_name"] == "mp3")
        #expect(probed.audio?["bit_rate"] == "128000")

        let detail = job.jobsDetail(CIFormatting(templateNames: SystemTemplates.names))
        let operation = try #require(detail["Operation"])
        #expect(operation.text("TemplateName") == "MP3-128K")
        let names = operation.children.map(\.name)
        #expect(names.firstIndex(of: "TemplateName") == names.firstIndex(of: "TemplateId").map { $0 + 1 })
        #expect(job.jobsDetail(CIFormatting())["Operation"]?["TemplateName"] == nil)
    }

    /// x264 and x265 ignore a maximum rate without a buffer size (ffmpeg logs it below the
    /// level the workers keep): a Maxrate alone gets a buffer of two seconds of it.
    @Test("Maxrate comes with a buffer size, its own or two seconds of the rate")
    func maxrateHasABuffer() throws {
        func arguments(_ video: String) throws -> [String] {
            let transcode = try XMLDocumentParser.parse(Array("<Transcode><Container><Format>mp4</Format></Container><Video>\(video)</Video></Transcode>".utf8))
            return try TranscodeOptions(transcode, path: "Operation.Transcode").videoCodecArguments()
        }
        func value(_ flag: String, in arguments: [String]) -> String? {
            arguments.firstIndex(of: flag).map { arguments[$0 + 1] }
        }
        let alone = try arguments("<Maxrate>1200</Maxrate>")
        #expect(value("-maxrate", in: alone) == "1200k" && value("-bufsize", in: alone) == "2400k")
        let both = try arguments("<Maxrate>1200</Maxrate><Bufsize>5000</Bufsize>")
        #expect(value("-maxrate", in: both) == "1200k" && value("-bufsize", in: both) == "5000k")
        #expect(value("-bufsize", in: try arguments("<Crf>23</Crf>")) == nil)
    }

    @Test("validation names the field at fault", arguments: [
        ("<Transcode><Container><Format>avi</Format></Container></Transcode>", "Operation.Transcode.Container.Format"),
        ("<Transcode><Video><Codec>H.264</Codec></Video></Transcode>", "Operation.Transcode.Container.Format"),
        ("<Transcode><Container><Format>flv</Format></Container><Video><Codec>H.265</Codec></Video></Transcode>", "Operation.Transcode.Video.Codec"),
        ("<Transcode><Container><Format>webm</Format></Container><Video><Codec>H.264</Codec></Video></Transcode>", "Operation.Transcode.Video.Codec"),
        ("<Transcode><Container><Format>mp3</Format></Container><Video><Codec>H.264</Codec></Video></Transcode>", "Operation.Transcode.Video.Codec"),
        ("<Transcode><Container><Format>mp4</Format></Container><Video><Codec>AV1</Codec></Video></Transcode>", "Operation.Transcode.Video.Codec"),
        ("<Transcode><Container><Format>mp4</Format></Container><Video><Width>127</Width></Video></Transcode>", "Operation.Transcode.Video.Width"),
        ("<Transcode><Container><Format>mp4</Format></Container><Video><Height>4098</Height></Video></Transcode>", "Operation.Transcode.Video.Height"),
        ("<Transcode><Container><Format>mp4</Format></Container><Video><Width>321</Width></Video></Transcode>", "Operation.Transcode.Video.Width"),
        ("<Transcode><Container><Format>mp4</Format></Container><Video><Fps>0</Fps></Video></Transcode>", "Operation.Transcode.Video.Fps"),
        ("<Transcode><Container><Format>mp4</Format></Container><Video><Fps>61</Fps></Video></Transcode>", "Operation.Transcode.Video.Fps"),
        ("<Transcode><Container><Format>mp4</Format></Container><Video><Bitrate>9</Bitrate></Video></Transcode>", "Operation.Transcode.Video.Bitrate"),
        ("<Transcode><Container><Format>mp4</Format></Container><Video><Bitrate>50001</Bitrate></Video></Transcode>", "Operation.Transcode.Video.Bitrate"),
        ("<Transcode><Container><Format>mp4</Format></Container><Video><Crf>0</Crf></Video></Transcode>", "Operation.Transcode.Video.Crf"),
        ("<Transcode><Container><Format>mp4</Format></Container><Video><Crf>52</Crf></Video></Transcode>", "Operation.Transcode.Video.Crf"),
        ("<Transcode><Container><Format>mp4</Format></Container><Video><Gop>100001</Gop></Video></Transcode>", "Operation.Transcode.Video.Gop"),
        ("<Transcode><Container><Format>mp4</Format></Container><Video><Bufsize>2000</Bufsize></Video></Transcode>", "Operation.Transcode.Video.Bufsize"),
        ("<Transcode><Container><Format>mp4</Format></Container><Video><ScanMode>interlaced</ScanMode></Video></Transcode>", "Operation.Transcode.Video.ScanMode"),
        ("<Transcode><Container><Format>mp4</Format></Container><Audio><SampleFormat>s16p</SampleFormat></Audio></Transcode>", "Operation.Transcode.Audio.SampleFormat"),
        ("<Transcode><Container><Format>mp4</Format></Container><Audio><KeepTwoTracks>true</KeepTwoTracks></Audio></Transcode>", "Operation.Transcode.Audio.KeepTwoTracks"),
        ("<Transcode><Container><Format>mp4</Format></Container><Video><Preset>good</Preset></Video></Transcode>", "Operation.Transcode.Video.Preset"),
        ("<Transcode><Container><Format>webm</Format></Container><Video><Preset>fast</Preset></Video></Transcode>", "Operation.Transcode.Video.Preset"),
        ("<Transcode><Container><Format>mp4</Format></Container><Video><Profile>extended</Profile></Video></Transcode>", "Operation.Transcode.Video.Profile"),
        ("<Transcode><Container><Format>mp4</Format></Container><Video><Codec>H.265</Codec><Profile>main</Profile></Video></Transcode>", "Operation.Transcode.Video.Profile"),
        ("<Transcode><Container><Format>mp4</Format></Container><Video><Profile>high</Profile><Pixfmt>yuv444p</Pixfmt></Video></Transcode>", "Operation.Transcode.Video.Profile"),
        ("<Transcode><Container><Format>mp4</Format></Container><Video><Codec>H.265</Codec><Pixfmt>yuv422p</Pixfmt></Video></Transcode>", "Operation.Transcode.Video.Pixfmt"),
        ("<Transcode><Container><Format>mp4</Format></Container><Video><Remove>yes</Remove></Video></Transcode>", "Operation.Transcode.Video.Remove"),
        ("<Transcode><Container><Format>mp4</Format></Container><Video><Remove>true</Remove></Video><Audio><Remove>true</Remove></Audio></Transcode>", "Operation.Transcode.Video.Remove"),
        ("<Transcode><Container><Format>mp3</Format></Container><Audio><Remove>true</Remove></Audio></Transcode>", "Operation.Transcode.Audio.Remove"),
        ("<Transcode><Container><Format>mp4</Format></Container><Audio><Codec>opus</Codec></Audio></Transcode>", "Operation.Transcode.Audio.Codec"),
        ("<Transcode><Container><Format>flac</Format></Container><Audio><Codec>aac</Codec></Audio></Transcode>", "Operation.Transcode.Audio.Codec"),
        ("<Transcode><Container><Format>mp4</Format></Container><Audio><Samplerate>44000</Samplerate></Audio></Transcode>", "Operation.Transcode.Audio.Samplerate"),
        ("<Transcode><Container><Format>webm</Format></Container><Audio><Codec>opus</Codec><Samplerate>44100</Samplerate></Audio></Transcode>", "Operation.Transcode.Audio.Samplerate"),
        ("<Transcode><Container><Format>mp4</Format></Container><Audio><Bitrate>7</Bitrate></Audio></Transcode>", "Operation.Transcode.Audio.Bitrate"),
        ("<Transcode><Container><Format>mp4</Format></Container><Audio><Bitrate>1001</Bitrate></Audio></Transcode>", "Operation.Transcode.Audio.Bitrate"),
        ("<Transcode><Container><Format>mp3</Format></Container><Audio><Channels>6</Channels></Audio></Transcode>", "Operation.Transcode.Audio.Channels"),
        ("<Transcode><Container><Format>mp4</Format></Container><Audio><Channels>3</Channels></Audio></Transcode>", "Operation.Transcode.Audio.Channels"),
        // At least a second: shorter HLS segments were a file per frame.
        ("<Transcode><Container><Format>hls</Format></Container><Video><HlsTsTime>0.999</HlsTsTime></Video></Transcode>", "Operation.Transcode.Video.HlsTsTime"),
        ("<Transcode><Container><Format>mp4</Format></Container><TimeInterval><Start>-1</Start></TimeInterval></Transcode>", "Operation.Transcode.TimeInterval.Start"),
        ("<Transcode><Container><Format>mp4</Format></Container><TimeInterval><Duration>0</Duration></TimeInterval></Transcode>", "Operation.Transcode.TimeInterval.Duration"),
        ("<Transcode><Container><Format>mp4</Format></Container><TransConfig><AdjDarMethod>stretch</AdjDarMethod></TransConfig></Transcode>", "Operation.Transcode.TransConfig.AdjDarMethod"),
        ("<Transcode><Container><Format>mp4</Format></Container><TransConfig><DeleteMetadata>1</DeleteMetadata></TransConfig></Transcode>", "Operation.Transcode.TransConfig.DeleteMetadata"),
        ("<Transcode><Container><Format>mp4</Format></Container><TransConfig><IsHdr2Sdr>true</IsHdr2Sdr></TransConfig></Transcode>", "Operation.Transcode.TransConfig.IsHdr2Sdr"),
        ("<Transcode><Container><Format>mp4</Format></Container><AudioMix><AudioSource>x</AudioSource></AudioMix></Transcode>", "Operation.Transcode.AudioMix"),
        ("", "Operation.Transcode"),
        ("<TemplateId>t0000000000000000000000000000000000</TemplateId>", "Operation.TemplateId"),
        ("<TemplateId>t02e53d892404d2edbdc3961bc552ed5f4</TemplateId>", "Operation.TemplateId"),
        ("<Transcode><Container><Format>mp4</Format></Container></Transcode><WatermarkTemplateId>t1</WatermarkTemplateId>", "Operation.WatermarkTemplateId"),
    ])
    func validation(operationXML: String, element: String) {
        let error = validationError(tag: "Transcode", operationXML: operationXML + "<Output><Object>out/b.mp4</Object></Output>", worker: worker)
        #expect(error?.element == element)
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.hasPrefix(element) == true)
    }

    @Test("validation accepts the edges of every range and CI's spellings")
    func validationAccepts() {
        let valid = [
            "<Container><Format>mp4</Format></Container><Video><Codec>h264</Codec><Width>128</Width><Height>4096</Height><Fps>60</Fps><Bitrate>10</Bitrate><Crf>51</Crf><Gop>0</Gop><Preset>slower</Preset><Profile>baseline</Profile><Pixfmt>yuvj420p</Pixfmt></Video><Audio><Codec>AAC</Codec><Samplerate>96000</Samplerate><Bitrate>8</Bitrate><Channels>8</Channels></Audio>",
            "<Container><Format>WebM</Format></Container><Video><Preset>good</Preset></Video><Audio><Codec>vorbis</Codec><Channels>2</Channels></Audio>",
            "<Container><Format>hls</Format></Container><Video><Codec>H.265</Codec><HlsTsTime>2</HlsTsTime></Video><TimeInterval><Start>0</Start><Duration>0.5</Duration></TimeInterval><TransConfig><AdjDarMethod>crop</AdjDarMethod></TransConfig>",
            "<Container><Format>mp3</Format></Container><Video><Width>320</Width></Video>",
        ]
        for transcode in valid {
            let error = validationError(tag: "Transcode", operationXML: "<Transcode>\(transcode)</Transcode><Output><Object>o.mp4</Object></Output>", worker: worker)
            #expect(error == nil, "\(transcode): \(error?.message ?? "")")
        }
    }

    @Test("a missing input fails with InputNotExist")
    func missingInput() async throws {
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        let job = try transcodeJob("<Container><Format>mp4</Format></Container>", bucket: bucket)
        let failure = await workFailure { try await worker.run(job, context: makeContext(bucket)) }
        #expect(failure?.code == "InputNotExist")
        #expect(failure?.message.contains("input/a.mp4") == true)
    }

    @Test("a corrupt input fails with InvalidInput and ffprobe's reason, and writes nothing")
    func corruptInput() async throws {
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        try SampleMedia.makeCorruptFile(at: bucket.path("input/a.mp4"))
        let job = try transcodeJob("<Container><Format>mp4</Format></Container>", bucket: bucket)
        let failure = try #require(await workFailure { try await worker.run(job, context: makeContext(bucket)) })
        #expect(failure.code == "InvalidInput")
        #expect(failure.message.contains("input/a.mp4"))
        #expect(!failure.message.contains(bucket.root))
        #expect(failure.message.count <= 500)
        #expect(bucket.objects() == ["input/a.mp4"])
    }

    @Test("a Start beyond the end fails with InvalidArgument naming it")
    func startBeyondEnd() async throws {
        let bucket = try await bucketWithVideo(seconds: 1)
        defer { bucket.remove() }
        let job = try transcodeJob("<Container><Format>mp4</Format></Container><TimeInterval><Start>5</Start></TimeInterval>", bucket: bucket)
        let failure = await workFailure { try await worker.run(job, context: makeContext(bucket)) }
        #expect(failure?.code == "InvalidArgument")
        #expect(failure?.message.hasPrefix("Operation.Transcode.TimeInterval.Start") == true)
    }

    @Test("an output folder that cannot be created fails with OutputWriteFailed")
    func unwritableOutput() async throws {
        let bucket = try await bucketWithVideo(seconds: 1)
        defer { bucket.remove() }
        try Data("in the way".utf8).write(to: URL(fileURLWithPath: bucket.path("out")))
        let job = try transcodeJob("<Container><Format>mp4</Format></Container>", bucket: bucket)
        let failure = await workFailure { try await worker.run(job, context: makeContext(bucket)) }
        #expect(failure?.code == "OutputWriteFailed")
        #expect(failure?.message.contains("out/b.mp4") == true)
        #expect(bucket.objects() == ["input/a.mp4", "out"])
    }

    @Test("cancellation stops ffmpeg, leaves no child and no files")
    func cancellation() async throws {
        let bucket = try await bucketWithVideo(seconds: 30)
        defer { bucket.remove() }
        let ffmpeg = try await recordingFFmpeg(in: bucket)
        let worker = TranscodeWorker(configuration: FFmpegConfiguration(ffmpegPath: ffmpeg.path), logger: quietLogger)
        // Upscaled to 4K with a slow preset: far longer than the test waits.
        let operation = try submit(
            tag: "Transcode",
            operationXML: "<Transcode><Container><Format>mp4</Format></Container><Video><Width>3840</Width><Preset>slower</Preset></Video></Transcode><Output><Object>out/b.mp4</Object></Output>",
            worker: worker
        )
        try await expectCancellationCleansUp(
            worker: worker, job: makeJob(operation, bucket: bucket), bucket: bucket, pidFile: ffmpeg.pidFile, inputs: ["input/a.mp4"]
        )
    }

    @Test("a job past its time limit fails with JobTimeout, ffmpeg stopped, nothing left")
    func timeout() async throws {
        let bucket = try await bucketWithVideo(seconds: 1)
        defer { bucket.remove() }
        try await expectTimeoutFails(
            makeWorker: { TranscodeWorker(configuration: $0, logger: quietLogger) },
            job: { bucket in try transcodeJob("<Container><Format>mp4</Format></Container>", bucket: bucket) },
            bucket: bucket, inputs: ["input/a.mp4"]
        )
    }
}
