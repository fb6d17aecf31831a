import Foundation
public import Logging
public import MediaQueueCore
import MediaQueueXML

/// Runs `Snapshot` jobs: still images of the input video, written to the bucket under
/// `Operation.Output.Object` and listed in CI's `<MediaResult>` with their MD5s.
///
/// Supported: `Mode` `Interval` (default), `Average` and `KeyFrame`, `Start`, `TimeInterval`,
/// `Count`, `Width`/`Height` (one alone keeps the aspect ratio), `IsCheckCount`;
/// `SnapshotOutMode` `OnlySnapshot`, `OnlySprite` and `SnapshotAndSprite` with
/// `SpriteSnapshotConfig` (sprites written to `Output.SpriteObject`, listed in
/// `SpriteOutputFile`); `Operation.TemplateId` of a Snapshot template. JPEG output, or PNG when
/// the key ends in `.png`. One ffmpeg run renders every shot and sprite.
///
/// Failures: `InputNotExist`; `InvalidInput` (not readable media, or no video stream);
/// `InvalidArgument` (`Start` beyond the end); `ProcessingFailed` with ffmpeg's reason;
/// `OutputWriteFailed`; `JobTimeout`; `InternalError` when ffmpeg cannot start.
public struct SnapshotWorker: MediaWorker, FFmpegWorker {
    public let tag = "Snapshot"

    let configuration: FFmpegConfiguration
    private let logger: Logger

    /// - Parameters:
    ///   - configuration: where ffmpeg and ffprobe are.
    ///   - logger: receives debug lines per job; the worker never creates a logger itself.
    public init(configuration: FFmpegConfiguration = FFmpegConfiguration(), logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Checks `Operation.Snapshot` (or the template it names) against CI's ranges.
    static func options(_ operation: XMLTree) throws(CIError) -> SnapshotOptions {
        try SnapshotOptions(operation: operation)
    }

    /// Renders the shots and sprites and returns `WorkResult(mediaResult:)`; failures are
    /// `WorkFailure`s.
    func perform(_ job: Job, input: JobInput, options: SnapshotOptions, context: WorkContext) async throws -> WorkResult {
        let probe = try await MediaProbe.run(path: input.path, displayName: input.displayName, configuration: configuration)
        guard let video = probe.video else {
            throw WorkFailure.invalidInput("'\(input.displayName)' has no video stream")
        }
        let plan = try SnapshotPlan(options: options, duration: probe.duration, frameRate: video.rational("avg_frame_rate"))
        if let sprite = options.sprite {
            try Self.checkSpriteSize(sprite, options: options, video: (video.number("width") ?? 0, video.number("height") ?? 0))
        }
        let names = OutputObjectTemplate(template: options.outputObject, jobID: job.id.rawValue, inputName: input.name, ext: "jpg")
        let shots = options.outMode.writesShots
            ? try NumberedOutputFiles(context: context, names: names, maxShots: plan.maxShots, kind: "shot") : nil
        defer { shots?.removeTemporaryFiles() }
        var sprites: NumberedOutputFiles?
        if let sprite = options.sprite {
            sprites = try NumberedOutputFiles(
                context: context,
                names: OutputObjectTemplate(template: sprite.outputObject, jobID: job.id.rawValue, inputName: input.name, ext: "jpg"),
                maxShots: (plan.maxShots + sprite.cellsPerSprite - 1) / sprite.cellsPerSprite, kind: "sprite"
            )
        }
        defer { sprites?.removeTemporaryFiles() }
        logger.debug("taking snapshots", metadata: [
            "job.id": "\(job.id)", "input": "\(input.displayName)", "shots.max": "\(plan.maxShots)",
        ])

        let publishedShots: [PublishedObject]
        let publishedSprites: [PublishedObject]
        try await render(plan: plan, options: options, input: input, shots: shots, sprites: sprites, context: context)
        publishedShots = try await shots?.publish() ?? []
        do {
            publishedSprites = try await sprites?.publish() ?? []
        } catch {
            await context.unpublish(publishedShots)
            throw error
        }
        guard !publishedShots.isEmpty || !publishedSprites.isEmpty else {
            throw WorkFailure.invalidArgument("Operation.Snapshot.Start", "the input has no video frame at or after it")
        }
        context.reportProgress(100)
        logger.debug("snapshots written", metadata: [
            "job.id": "\(job.id)", "shots": "\(publishedShots.count)", "sprites": "\(publishedSprites.count)",
        ])
        return WorkResult(mediaResult: MediaResult.xml(
            publishedShots, sprites: publishedSprites, bucket: job.bucket, region: context.formatting.region
        ))
    }

    /// Refuses a sprite larger than `Sprite.maxPixels`: the shots are the video's frames, scaled
    /// to `Width`/`Height` when given, and the cells those, or `CellWidth`/`CellHeight`.
    static func checkSpriteSize(_ sprite: SnapshotOptions.Sprite, options: SnapshotOptions, video: (width: Double, height: Double)) throws(WorkFailure) {
        let aspect = video.width > 0 && video.height > 0 ? video.width / video.height : 16.0 / 9.0
        let shotWidth = options.width.map(Double.init) ?? options.height.map { Double($0) * aspect } ?? video.width
        let shotHeight = options.height.map(Double.init) ?? options.width.map { Double($0) / aspect } ?? video.height
        let size = sprite.size(cell: (Int(shotWidth.rounded()), Int(shotHeight.rounded())))
        guard size.width * size.height <= SnapshotOptions.Sprite.maxPixels else {
            throw WorkFailure.invalidArgument(
                "Operation.Snapshot.SpriteSnapshotConfig",
                "a \(sprite.columns)x\(sprite.lines) sprite of these cells is \(size.width)x\(size.height) pixels; at most \(SnapshotOptions.Sprite.maxPixels) pixels (8192x8192): fewer columns or lines, or smaller cells"
            )
        }
    }

    /// One ffmpeg run for every shot and sprite; progress comes from `-progress pipe:1`
    /// (`frame=` counts written images of the first output).
    private func render(
        plan: SnapshotPlan, options: SnapshotOptions, input: JobInput, shots: NumberedOutputFiles?,
        sprites: NumberedOutputFiles?, context: WorkContext
    ) async throws {
        var filters: [String] = []
        if let interval = plan.interval {
            // The first frame at or after each shot time (1 ms slack for timestamp rounding);
            // unlike the fps filter this never duplicates a frame when the interval is short.
            filters.append("select='gte(t,selected_n*\(String(format: "%.6f", interval))-0.001)'")
        }
        if options.width != nil || options.height != nil {
            // -2: the missing side follows the aspect ratio, rounded to an even size.
            filters.append("scale=\(options.width ?? -2):\(options.height ?? -2)")
        }
        // Both outputs see the same shots, so the graph itself stops after the last one.
        filters.append("trim=end_frame=\(plan.maxShots)")
        var graph = "[0:v]" + filters.joined(separator: ",")
        if let sprite = options.sprite {
            var tiling: [String] = []
            if sprite.cellWidth != nil || sprite.cellHeight != nil {
                tiling.append("scale=\(sprite.cellWidth ?? -2):\(sprite.cellHeight ?? -2)")
            }
            tiling.append("tile=\(sprite.columns)x\(sprite.lines):margin=\(sprite.margin):padding=\(sprite.padding):color=\(sprite.color)")
            graph += shots != nil ? ",split=2[shots][cells];[cells]" : ","
            graph += tiling.joined(separator: ",") + "[sprites]"
        } else {
            graph += "[shots]"
        }

        var arguments: [String] = []
        if options.mode == .keyFrame { arguments += ["-skip_frame", "nokey"] }
        arguments += ["-ss", FFmpegConfiguration.seconds(plan.start)] + FFmpegConfiguration.input(input.path) + ["-filter_complex", graph]
        for (label, files) in [("shots", shots), ("sprites", sprites)] {
            guard let files else { continue }
            arguments += ["-map", "[\(label)]", "-fps_mode", "passthrough", "-frames:v", String(files.maxShots)]
            if files.fileExtension == "jpg" { arguments += ["-q:v", "2"] }
            arguments += ["-start_number", "0", files.ffmpegPattern]
        }
        let expected = shots != nil ? plan.expectedShots : (sprites?.maxShots ?? 1)
        try await configuration.runFFmpeg(arguments, meter: .frames(expected), context: context, hiding: [input.hiding])
    }
}
