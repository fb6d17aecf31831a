import Foundation
import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import Testing
@testable import MediaQueueWorkers

@Suite("SnapshotWorker", .timeLimit(.minutes(10)))
struct SnapshotWorkerTests {
    let worker = SnapshotWorker(logger: quietLogger)

    /// A bucket holding a 5 s, 320x240 `input/a.mp4`.
    func bucketWithVideo(seconds: Int = 5) async throws -> TemporaryBucket {
        let bucket = try TemporaryBucket()
        try await SampleMedia.makeVideo(at: bucket.path("input/a.mp4"), seconds: seconds)
        return bucket
    }

    func snapshotJob(_ snapshot: String, output: String = "out/snap-${Number}.jpg", bucket: TemporaryBucket) throws -> Job {
        let operation = try submit(
            tag: "Snapshot", operationXML: "<Snapshot>\(snapshot)</Snapshot><Output><Object>\(output)</Object></Output>", worker: worker
        )
        return makeJob(operation, bucket: bucket)
    }

    /// The objects a MediaResult lists, and the MD5 it gives for each.
    func listed(_ result: WorkResult) throws -> (names: [String], md5s: [String: String]) {
        let file = try #require(result.mediaResult?["OutputFile"])
        var md5s: [String: String] = [:]
        for info in file.all("Md5Info") {
            md5s[info.text("ObjectName") ?? ""] = info.text("Md5")
        }
        return (file.all("ObjectName").map(\.text), md5s)
    }

    @Test("Interval mode writes Count JPEGs at the asked size, listed with their MD5s")
    func intervalShots() async throws {
        let bucket = try await bucketWithVideo()
        defer { bucket.remove() }
        let job = try snapshotJob(
            "<Mode>Interval</Mode><Start>1</Start><TimeInterval>1</TimeInterval><Count>3</Count><Width>160</Width>", bucket: bucket
        )
        let progress = ProgressLog()

        let result = try await worker.run(job, context: makeContext(bucket, progress: progress))

        let expected = ["out/snap-0.jpg", "out/snap-1.jpg", "out/snap-2.jpg"]
        #expect(bucket.objects() == ["input/a.mp4"] + expected)
        let (names, md5s) = try listed(result)
        #expect(names == expected)
        for name in expected {
            let stream = try await SampleMedia.videoStream(of: bucket.path(name))
            #expect(stream.codec == "mjpeg")
            #expect(stream.width == 160)
            #expect(stream.height == 120)
            let md5sum = try await runCommand("/usr/bin/md5sum", [bucket.path(name)]).stdout.prefix(32)
            #expect(md5s[name] == String(md5sum))
        }
        #expect(Set(md5s.values).count == 3, "three different moments give three different images")
        let file = try #require(result.mediaResult?["OutputFile"])
        #expect(file.text("Bucket") == bucket.bucket)
        #expect(file.text("Region") == "ap-test")
        #expect(!progress.reported.isEmpty)
        #expect(progress.reported.allSatisfy { (0...100).contains($0) })
        // 99 comes from ffmpeg's own progress report (its last one always arrives); 100 once published.
        #expect(progress.reported.contains(99))
        #expect(progress.reported.last == 100)
    }

    @Test("the shots are the frames at Start, Start+TimeInterval, …")
    func shotTimes() async throws {
        let bucket = try await bucketWithVideo()
        defer { bucket.remove() }
        let job = try snapshotJob("<Start>1</Start><TimeInterval>1.5</TimeInterval><Count>2</Count>", bucket: bucket)
        _ = try await worker.run(job, context: makeContext(bucket))
        // The same frames taken one by one with an accurate seek.
        for (number, time) in [(0, "1"), (1, "2.5")] {
            let reference = bucket.path("reference-\(number).jpg")
            try await runCommand("/usr/bin/ffmpeg", [
                "-nostdin", "-loglevel", "error", "-ss", time, "-i", bucket.path("input/a.mp4"),
                "-frames:v", "1", "-q:v", "2", reference,
            ])
            let expected = try MD5.hexDigest(ofFile: reference)
            #expect(try MD5.hexDigest(ofFile: bucket.path("out/snap-\(number).jpg")) == expected)
        }
    }

    @Test("a Count beyond the end of the video gives fewer files, and succeeds")
    func countBeyondEnd() async throws {
        let bucket = try await bucketWithVideo()
        defer { bucket.remove() }
        let job = try snapshotJob("<TimeInterval>2</TimeInterval><Count>10</Count>", bucket: bucket)
        let result = try await worker.run(job, context: makeContext(bucket))
        let expected = ["out/snap-0.jpg", "out/snap-1.jpg", "out/snap-2.jpg"]
        #expect(try listed(result).names == expected)
        #expect(bucket.objects() == ["input/a.mp4"] + expected)
    }

    @Test("Count without TimeInterval takes consecutive frames")
    func consecutiveFrames() async throws {
        let bucket = try await bucketWithVideo()
        defer { bucket.remove() }
        let job = try snapshotJob("<Start>2</Start><Count>4</Count><Height>180</Height>", bucket: bucket)
        let result = try await worker.run(job, context: makeContext(bucket))
        #expect(try listed(result).names.count == 4)
        let stream = try await SampleMedia.videoStream(of: bucket.path("out/snap-3.jpg"))
        #expect(stream.width == 240)
        #expect(stream.height == 180)
    }

    @Test("Average mode spreads Count shots over the video")
    func averageMode() async throws {
        let bucket = try await bucketWithVideo()
        defer { bucket.remove() }
        let job = try snapshotJob("<Mode>Average</Mode><Count>4</Count>", bucket: bucket)
        let result = try await worker.run(job, context: makeContext(bucket))
        #expect(try listed(result).names == (0..<4).map { "out/snap-\($0).jpg" })
    }

    @Test("IsCheckCount falls back to Average when the video is too short")
    func checkCount() async throws {
        let bucket = try await bucketWithVideo()
        defer { bucket.remove() }
        let job = try snapshotJob("<TimeInterval>2</TimeInterval><Count>5</Count><IsCheckCount>true</IsCheckCount>", bucket: bucket)
        let result = try await worker.run(job, context: makeContext(bucket))
        #expect(try listed(result).names.count == 5)
    }

    @Test("PNG by extension; ${InputName}, ${jobid} and ${Number} are filled in, folders created")
    func wildcardsAndPNG() async throws {
        let bucket = try await bucketWithVideo()
        defer { bucket.remove() }
        let job = try snapshotJob("<Count>2</Count><TimeInterval>1</TimeInterval>", output: "shots/${jobid}/${InputName}-${Number}.png", bucket: bucket)
        let result = try await worker.run(job, context: makeContext(bucket))
        let expected = ["shots/\(job.id.rawValue)/a-0.png", "shots/\(job.id.rawValue)/a-1.png"]
        #expect(try listed(result).names == expected)
        #expect(bucket.objects() == ["input/a.mp4"] + expected)
        #expect(try await SampleMedia.videoStream(of: bucket.path(expected[0])).codec == "png")
    }

    @Test("WebP and BMP by extension, as the key names them")
    func webpAndBMP() async throws {
        let bucket = try await bucketWithVideo()
        defer { bucket.remove() }
        for (extension_, codec) in [("webp", "webp"), ("bmp", "bmp"), ("jpeg", "mjpeg")] {
            let job = try snapshotJob("<Start>1</Start>", output: "shots/cover.\(extension_)", bucket: bucket)
            let result = try await worker.run(job, context: makeContext(bucket))
            #expect(try listed(result).names == ["shots/cover.\(extension_)"])
            #expect(try await SampleMedia.videoStream(of: bucket.path("shots/cover.\(extension_)")).codec == codec)
        }
    }

    @Test("one shot needs no ${Number}; ${ext} is jpg")
    func singleShot() async throws {
        let bucket = try await bucketWithVideo()
        defer { bucket.remove() }
        let job = try snapshotJob("<Start>4</Start>", output: "cover.${ext}", bucket: bucket)
        let result = try await worker.run(job, context: makeContext(bucket))
        #expect(try listed(result).names == ["cover.jpg"])
    }

    @Test("validation names the element at fault", arguments: [
        ("<Snapshot><Mode>Burst</Mode></Snapshot>", "Operation.Snapshot.Mode"),
        ("<Snapshot><Start>-1</Start></Snapshot>", "Operation.Snapshot.Start"),
        ("<Snapshot><Start>soon</Start></Snapshot>", "Operation.Snapshot.Start"),
        ("<Snapshot><TimeInterval>0</TimeInterval></Snapshot>", "Operation.Snapshot.TimeInterval"),
        ("<Snapshot><TimeInterval>3600.5</TimeInterval></Snapshot>", "Operation.Snapshot.TimeInterval"),
        ("<Snapshot><Count>0</Count></Snapshot>", "Operation.Snapshot.Count"),
        ("<Snapshot><Count>10001</Count></Snapshot>", "Operation.Snapshot.Count"),
        ("<Snapshot><Count>1.5</Count></Snapshot>", "Operation.Snapshot.Count"),
        ("<Snapshot><Width>127</Width></Snapshot>", "Operation.Snapshot.Width"),
        ("<Snapshot><Height>4097</Height></Snapshot>", "Operation.Snapshot.Height"),
        ("<Snapshot><SnapshotOutMode>Sprites</SnapshotOutMode></Snapshot>", "Operation.Snapshot.SnapshotOutMode"),
        ("<Snapshot><SnapshotOutMode>OnlySprite</SnapshotOutMode></Snapshot>", "Operation.Output.SpriteObject"),
        ("<Snapshot><CIParam>imageMogr2/format/png</CIParam></Snapshot>", "Operation.Snapshot.CIParam"),
        ("<Snapshot><Count>3</Count></Snapshot><Output><Object>out/one.jpg</Object></Output>", "Operation.Output.Object"),
        ("<Snapshot><Count>1</Count></Snapshot>", "Operation.Output.Object"),
        ("<Snapshot></Snapshot><Output><Object>../escape-${Number}.jpg</Object></Output>", "Operation.Output.Object"),
        ("<Snapshot></Snapshot><Output><Object>out/s-${Number}.gif</Object></Output>", "Operation.Output.Object"),
    ])
    func validation(operationXML: String, element: String) {
        // Cases without their own Output get a valid one, except the one about a missing Output.
        let needsOutput = !operationXML.contains("<Output>") && !operationXML.contains("<Count>1</Count>")
        let xml = operationXML + (needsOutput ? "<Output><Object>out/s-${Number}.jpg</Object></Output>" : "")
        let error = validationError(tag: "Snapshot", operationXML: xml, worker: worker)
        #expect(error?.element == element)
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.hasPrefix(element) == true)
    }

    @Test("validation: Input.Object is required, a valid operation passes, Mode defaults to Interval")
    func validationBasics() {
        let output = "<Output><Object>out/s-${Number}.jpg</Object></Output>"
        #expect(validationError(tag: "Snapshot", input: nil, operationXML: output, worker: worker)?.element == "Input.Object")
        #expect(validationError(tag: "Snapshot", operationXML: output, worker: worker) == nil)
        let full = "<Snapshot><Mode>Average</Mode><Start>0.5</Start><Count>10000</Count><Width>4096</Width><Height>128</Height></Snapshot>"
        #expect(validationError(tag: "Snapshot", operationXML: full + output, worker: worker) == nil)
        #expect(validationError(tag: "Snapshot", operationXML: "<Snapshot><TimeInterval>3600</TimeInterval></Snapshot>" + output, worker: worker) == nil)
    }

    @Test("a missing input fails with InputNotExist")
    func missingInput() async throws {
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        let job = try snapshotJob("", bucket: bucket)
        let failure = await workFailure { try await worker.run(job, context: makeContext(bucket)) }
        #expect(failure?.code == "InputNotExist")
    }

    @Test("a corrupt input fails with InvalidInput and the reason, and writes nothing")
    func corruptInput() async throws {
        let bucket = try TemporaryBucket()
        defer { bucket.remove() }
        try SampleMedia.makeCorruptFile(at: bucket.path("input/a.mp4"))
        let job = try snapshotJob("<Count>2</Count>", bucket: bucket)
        let failure = try #require(await workFailure { try await worker.run(job, context: makeContext(bucket)) })
        #expect(failure.code == "InvalidInput")
        #expect(failure.message.contains("input/a.mp4"))
        #expect(!failure.message.contains(bucket.root))
        #expect(bucket.objects() == ["input/a.mp4"])
    }

    @Test("a Start beyond the end fails with InvalidArgument naming Start")
    func startBeyondEnd() async throws {
        let bucket = try await bucketWithVideo()
        defer { bucket.remove() }
        let job = try snapshotJob("<Start>9</Start>", bucket: bucket)
        let failure = await workFailure { try await worker.run(job, context: makeContext(bucket)) }
        #expect(failure?.code == "InvalidArgument")
        #expect(failure?.message.hasPrefix("Operation.Snapshot.Start") == true)
    }

    @Test("an output folder that cannot be created fails with OutputWriteFailed")
    func unwritableOutput() async throws {
        let bucket = try await bucketWithVideo()
        defer { bucket.remove() }
        // A file where the output folder should be: fails for root too, unlike permissions.
        try Data("in the way".utf8).write(to: URL(fileURLWithPath: bucket.path("out")))
        let job = try snapshotJob("<Count>2</Count>", bucket: bucket)
        let failure = await workFailure { try await worker.run(job, context: makeContext(bucket)) }
        #expect(failure?.code == "OutputWriteFailed")
        #expect(failure?.message.contains("out/snap-0.jpg") == true)
        #expect(bucket.objects() == ["input/a.mp4", "out"])
    }

    @Test("an unreachable ffmpeg fails with InternalError and writes nothing")
    func missingTool() async throws {
        let bucket = try await bucketWithVideo()
        defer { bucket.remove() }
        let worker = SnapshotWorker(configuration: FFmpegConfiguration(ffmpegPath: "/nonexistent/ffmpeg"), logger: quietLogger)
        let job = try snapshotJob("<Count>2</Count>", bucket: bucket)
        let failure = await workFailure { try await worker.run(job, context: makeContext(bucket)) }
        #expect(failure?.code == "InternalError")
        #expect(bucket.objects() == ["input/a.mp4"])
    }

    @Test("cancellation stops ffmpeg, leaves no child and no files")
    func cancellation() async throws {
        let bucket = try await bucketWithVideo(seconds: 60)
        defer { bucket.remove() }
        // A wrapper that records ffmpeg's pid; `exec` keeps it, so the pid is ffmpeg's own.
        let (wrapper, pidFile) = try await recordingFFmpeg(in: bucket)
        let worker = SnapshotWorker(configuration: FFmpegConfiguration(ffmpegPath: wrapper), logger: quietLogger)
        // Every frame of a minute, upscaled to 3840 px PNGs: minutes of work, so it is surely
        // cancelled mid-run.
        let job = try snapshotJob("<Count>10000</Count><Width>3840</Width>", output: "out/snap-${Number}.png", bucket: bucket)
        let context = makeContext(bucket)

        let task = Task { try await worker.run(job, context: context) }
        try await eventually("ffmpeg wrote its first shot") {
            bucket.objects().contains { $0.hasPrefix("out/") }
        }
        let pidText = try String(contentsOfFile: pidFile, encoding: .utf8)
        let pid = try #require(Int32(pidText.trimmingCharacters(in: .whitespacesAndNewlines)))
        task.cancel()

        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(!processExists(pid))
        #expect(bucket.objects() == ["input/a.mp4"])
    }
}
