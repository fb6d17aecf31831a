import Foundation
public import Logging
public import MediaQueueCore
import MediaQueueXML

/// Runs `Animation` jobs: a GIF or animated WebP of (part of) `Input.Object`, as
/// `Operation.Animation` (or the template `Operation.TemplateId` names) asks, written to
/// `Operation.Output.Object` (`${ext}` is gif or webp). See `AnimationOptions` for which frames
/// are taken.
///
/// Failures: `InputNotExist`; `InvalidInput` (not readable media, no video stream);
/// `InvalidArgument` (`TimeInterval.Start` beyond the end); `ProcessingFailed` with ffmpeg's
/// reason; `OutputWriteFailed`; `JobTimeout`; `InternalError` when ffmpeg cannot start.
public struct AnimationWorker: MediaWorker, FFmpegWorker {
    public let tag = "Animation"

    let configuration: FFmpegConfiguration
    private let logger: Logger

    /// - Parameters:
    ///   - configuration: where ffmpeg and ffprobe are, and the job time limit.
    ///   - logger: receives debug lines per job; the worker never creates a logger itself.
    public init(configuration: FFmpegConfiguration = FFmpegConfiguration(), logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    static func options(_ operation: XMLTree) throws(CIError) -> AnimationOptions {
        try AnimationOptions(operation: operation)
    }

    /// Renders the animation and returns `WorkResult(mediaResult:mediaInfo:)`.
    func perform(_ job: Job, input: JobInput, options: AnimationOptions, context: WorkContext) async throws -> WorkResult {
        let probe = try await MediaProbe.run(path: input.path, displayName: input.displayName, configuration: configuration)
        guard probe.video != nil else {
            throw WorkFailure.invalidInput("'\(input.displayName)' has no video stream")
        }
        let span = try MediaTimeSpan(
            start: options.start, duration: options.duration, inputDuration: probe.duration, field: "Operation.Animation.TimeInterval.Start"
        )
        let object = OutputObjectTemplate(
            template: job.operation.text("Output", "Object")?.trimmed ?? "", jobID: job.id.rawValue, inputName: input.name,
            ext: options.format.rawValue
        ).object()
        let staging = try OutputStaging(context: context, jobID: job.id.rawValue, object: object)
        defer { staging.remove() }

        // The same frames in both passes of a GIF: the palette's and the animation's.
        var frames: [String] = []
        if options.onlyKeyFrames { frames += ["-skip_frame", "nokey"] }
        if span.start > 0 { frames += ["-ss", FFmpegConfiguration.seconds(span.start)] }
        if let duration = options.duration { frames += ["-t", FFmpegConfiguration.seconds(duration)] }
        frames += FFmpegConfiguration.input(input.path)
        var arguments = frames
        let report = context.reportProgress
        var second = context
        if options.format == .gif {
            let palette = staging.folder + "/" + ObjectKey.reservedPrefix + "palette.png"
            var first = context
            first.reportProgress = { percent in report(percent / 2) }
            try await configuration.runFFmpeg(
                frames + [
                    "-filter_complex", options.paletteGraph(), "-map", "[out]", "-frames:v", "1", "-update", "1", palette,
                    "-map", "[progress]", "-f", "null", "-",
                ],
                meter: .duration(span.expectedDuration), context: first, hiding: [input.hiding, staging.hiding]
            )
            arguments += ["-i", palette]
            second.reportProgress = { percent in report(50 + percent / 2) }
        }
        arguments += ["-filter_complex", options.filterGraph(), "-map", "[out]", "-an", "-sn", "-dn"]
        if options.onlyKeyFrames && options.fps == nil {
            // Key frames keep their own times: the animation plays at the video's pace.
            arguments += ["-fps_mode", "vfr"]
        }
        switch options.format {
        case .gif:
            arguments += ["-loop", "0", "-f", "gif"]
        case .webp:
            arguments += ["-c:v", "libwebp_anim", "-lossless", "0", "-quality", String(Int(options.quality ?? 75)), "-loop", "0", "-f", "webp"]
        }
        arguments.append(staging.path(for: object))

        logger.debug("animating", metadata: ["job.id": "\(job.id)", "input": "\(input.displayName)", "format": "\(options.format.rawValue)"])
        try await configuration.runFFmpeg(
            arguments, meter: .duration(span.expectedDuration), context: second,
            hiding: [input.hiding, staging.hiding]
        )
        // ffprobe reads GIF fully; animated WebP only partly, so its MediaInfo may be missing.
        let mediaInfo = try? await MediaProbe.run(path: staging.path(for: object), displayName: object, configuration: configuration, output: true).mediaInfo()
        let published = try await staging.publish([object])
        context.reportProgress(100)
        return WorkResult(mediaResult: MediaResult.xml(published, bucket: job.bucket, region: context.formatting.region), mediaInfo: mediaInfo)
    }
}
