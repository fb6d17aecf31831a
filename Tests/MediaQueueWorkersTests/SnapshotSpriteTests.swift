import Foundation
import MediaQueueCore
import MediaQueueTestSupport
import MediaQueueXML
import Testing
@testable import MediaQueueWorkers

@Suite("SnapshotWorker: key frames, sprites, templates, time limit", .timeLimit(.minutes(10)))
struct SnapshotSpriteTests {
    let worker = SnapshotWorker(logger: quietLogger)

    /// A bucket with a 160x120 `input/a.mp4` of 4 s, a key frame every second.
    func bucketWithVideo() async throws -> TemporaryBucket {
        let bucket = try TemporaryBucket()
        try await TestMedia.video(at: bucket.path("input/a.mp4"), seconds: 4, keyFrameEvery: 25)
        return bucket
    }

    func snapshotJob(_ operationXML: String, bucket: TemporaryBucket) throws -> Job {
        makeJob(try submit(tag: "Snapshot", operationXML: operationXML, worker: worker), bucket: bucket)
    }

    @Test("KeyFrame mode takes the key frames, up to Count")
    func keyFrames() async throws {
        let bucket = try await bucketWithVideo()
        defer { bucket.remove() }
        let job = try snapshotJob("<Snapshot><Mode>KeyFrame</Mode><Count>10</Count></Snapshot><Output><Object>k/${Number}.jpg</Object></Output>", bucket: bucket)
        let result = try await worker.run(job, context: makeContext(bucket))
        #expect(try listedFiles(result).names == (0..<4).map { "k/\($0).jpg" })
    }

    @Test("SnapshotAndSprite: shots, and sprites tiling them in Columns x Lines with Margin and Padding")
    func snapshotAndSprite() async throws {
        let bucket = try await bucketWithVideo()
        defer { bucket.remove() }
        let job = try snapshotJob("""
            <Snapshot><TimeInterval>0.5</TimeInterval><Count>6</Count><SnapshotOutMode>SnapshotAndSprite</SnapshotOutMode>
            <SpriteSnapshotConfig><CellWidth>40</CellWidth><CellHeight>30</CellHeight><Padding>2</Padding><Margin>4</Margin>
            <Color>white</Color><Columns>2</Columns><Lines>2</Lines></SpriteSnapshotConfig></Snapshot>
            <Output><Object>s/shot-${Number}.jpg</Object><SpriteObject>s/sprite-${Number}.jpg</SpriteObject></Output>
            """, bucket: bucket)
        let result = try await worker.run(job, context: makeContext(bucket))
        #expect(try listedFiles(result).names == (0..<6).map { "s/shot-\($0).jpg" })
        #expect(try listedFiles(result, sprites: true).names == ["s/sprite-0.jpg", "s/sprite-1.jpg"])
        try await expectMD5sMatch(result, in: bucket)
        try await expectMD5sMatch(result, in: bucket, sprites: true)
        let sprite = try await SampleMedia.videoStream(of: bucket.path("s/sprite-0.jpg"))
        // 2 cells of 40 + 1 padding of 2 + 2 margins of 4.
        #expect(sprite.width == 2 * 40 + 2 + 2 * 4)
        #expect(sprite.height == 2 * 30 + 2 + 2 * 4)
        let file = try #require(result.mediaResult?["OutputFile"]?["SpriteOutputFile"])
        #expect(file.text("Bucket") == bucket.bucket)
        #expect(bucket.objects().count == 1 + 6 + 2)
    }

    @Test("OnlySprite writes sprites only")
    func onlySprite() async throws {
        let bucket = try await bucketWithVideo()
        defer { bucket.remove() }
        let job = try snapshotJob("""
            <Snapshot><Mode>Average</Mode><Count>4</Count><SnapshotOutMode>OnlySprite</SnapshotOutMode>
            <SpriteSnapshotConfig><Color>#000000</Color><Columns>4</Columns><Lines>1</Lines></SpriteSnapshotConfig></Snapshot>
            <Output><Object>s/shot-${Number}.jpg</Object><SpriteObject>s/sprite.png</SpriteObject></Output>
            """, bucket: bucket)
        let result = try await worker.run(job, context: makeContext(bucket))
        #expect(try listedFiles(result).names.isEmpty)
        #expect(try listedFiles(result, sprites: true).names == ["s/sprite.png"])
        #expect(bucket.objects() == ["input/a.mp4", "s/sprite.png"])
        let sprite = try await SampleMedia.videoStream(of: bucket.path("s/sprite.png"))
        #expect(sprite.codec == "png")
        #expect(sprite.width == 4 * 160)
        #expect(sprite.height == 120)
    }

    /// ffmpeg's tile filter allocates the whole grid at once (Columns and Lines go to 10,000
    /// each): a sprite over 8192x8192 pixels is refused, naming its size, before ffmpeg runs;
    /// one just under is made.
    @Test("a sprite larger than 8192x8192 pixels is refused before ffmpeg runs")
    func aSpriteTooLargeIsRefused() async throws {
        let bucket = try await bucketWithVideo()
        defer { bucket.remove() }
        // 160x120 cells: 52 columns make 8320 pixels across.
        let job = try snapshotJob("""
            <Snapshot><Count>1</Count><SnapshotOutMode>OnlySprite</SnapshotOutMode>
            <SpriteSnapshotConfig><Color>black</Color><Columns>52</Columns><Lines>1000</Lines></SpriteSnapshotConfig></Snapshot>
            <Output><Object>s/shot.jpg</Object><SpriteObject>s/sprite.jpg</SpriteObject></Output>
            """, bucket: bucket)
        let error = await #expect(throws: WorkFailure.self) { try await worker.run(job, context: makeContext(bucket)) }
        #expect(error?.message.contains("8320x120000 pixels") == true, "\(error?.message ?? "")")
        #expect(bucket.objects() == ["input/a.mp4"])

        let options = try SnapshotOptions(operation: XMLDocumentParser.parse("""
            <Operation><Snapshot><SnapshotOutMode>OnlySprite</SnapshotOutMode><SpriteSnapshotConfig><CellWidth>8</CellWidth>\
            <CellHeight>8</CellHeight><Color>black</Color><Columns>1024</Columns><Lines>1024</Lines></SpriteSnapshotConfig></Snapshot>\
            <Output><Object>s/shot.jpg</Object><SpriteObject>s/sprite-${Number}.jpg</SpriteObject></Output></Operation>
            """))
        let justUnder = try #require(options.sprite)
        #expect(throws: Never.self) { try SnapshotWorker.checkSpriteSize(justUnder, options: options, video: (160, 120)) }
    }

    @Test("sprite validation names the field at fault", arguments: [
        ("<Color>red</Color><Columns>2</Columns>", "s-${Number}.jpg", "Operation.Snapshot.SpriteSnapshotConfig.Lines"),
        ("<Color>red</Color><Lines>2</Lines>", "s-${Number}.jpg", "Operation.Snapshot.SpriteSnapshotConfig.Columns"),
        ("<Columns>2</Columns><Lines>2</Lines>", "s-${Number}.jpg", "Operation.Snapshot.SpriteSnapshotConfig.Color"),
        ("<Color>red,drawbox</Color><Columns>2</Columns><Lines>2</Lines>", "s-${Number}.jpg", "Operation.Snapshot.SpriteSnapshotConfig.Color"),
        ("<Color>red</Color><Columns>0</Columns><Lines>2</Lines>", "s-${Number}.jpg", "Operation.Snapshot.SpriteSnapshotConfig.Columns"),
        ("<Color>red</Color><Columns>2</Columns><Lines>10001</Lines>", "s-${Number}.jpg", "Operation.Snapshot.SpriteSnapshotConfig.Lines"),
        ("<Color>red</Color><Columns>2</Columns><Lines>2</Lines><CellWidth>7</CellWidth>", "s-${Number}.jpg", "Operation.Snapshot.SpriteSnapshotConfig.CellWidth"),
        ("<Color>red</Color><Columns>2</Columns><Lines>2</Lines><CellHeight>4097</CellHeight>", "s-${Number}.jpg", "Operation.Snapshot.SpriteSnapshotConfig.CellHeight"),
        ("<Color>red</Color><Columns>2</Columns><Lines>2</Lines><Padding>1025</Padding>", "s-${Number}.jpg", "Operation.Snapshot.SpriteSnapshotConfig.Padding"),
        ("<Color>red</Color><Columns>2</Columns><Lines>2</Lines><Margin>-1</Margin>", "s-${Number}.jpg", "Operation.Snapshot.SpriteSnapshotConfig.Margin"),
        ("<Color>red</Color><Columns>2</Columns><Lines>2</Lines>", "sprite.jpg", "Operation.Output.SpriteObject"),
    ])
    func validation(config: String, spriteObject: String, element: String) {
        let xml = "<Snapshot><Count>5</Count><SnapshotOutMode>SnapshotAndSprite</SnapshotOutMode><SpriteSnapshotConfig>\(config)</SpriteSnapshotConfig></Snapshot>"
            + "<Output><Object>o-${Number}.jpg</Object><SpriteObject>\(spriteObject)</SpriteObject></Output>"
        let error = validationError(tag: "Snapshot", operationXML: xml, worker: worker)
        #expect(error?.element == element)
        #expect(error?.message.hasPrefix(element) == true)
    }

    @Test("TemplateId wins over inline parameters")
    func template() async throws {
        let bucket = try await bucketWithVideo()
        defer { bucket.remove() }
        let cover = try #require(SystemTemplates.all.first { $0.name == "JPG-Cover" })
        let job = try snapshotJob(
            "<TemplateId>\(cover.id)</TemplateId><Snapshot><Count>3</Count><Width>320</Width></Snapshot><Output><Object>c.jpg</Object></Output>", bucket: bucket
        )
        let result = try await worker.run(job, context: makeContext(bucket))
        #expect(try listedFiles(result).names == ["c.jpg"])
        #expect(try await SampleMedia.videoStream(of: bucket.path("c.jpg")).width == 160)
    }

    @Test("a job past its time limit fails with JobTimeout")
    func timeout() async throws {
        let bucket = try await bucketWithVideo()
        defer { bucket.remove() }
        try await expectTimeoutFails(
            makeWorker: { SnapshotWorker(configuration: $0, logger: quietLogger) },
            job: { bucket in try snapshotJob("<Snapshot><Count>2</Count></Snapshot><Output><Object>o-${Number}.jpg</Object></Output>", bucket: bucket) },
            bucket: bucket, inputs: ["input/a.mp4"]
        )
    }
}
