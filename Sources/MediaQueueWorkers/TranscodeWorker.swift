import Foundation
public import Logging
public import MediaQueueCore
import MediaQueueXML

/// Runs `Transcode` jobs: `Input.Object` re-encoded as `Operation.Transcode` (or the template
/// `Operation.TemplateId` names, which wins) asks, written to `Operation.Output.Object`.
///
/// Containers mp4, flv, hls, ts, mkv, mp3, aac, flac and webm with the codecs spec §7.2 allows;
/// HLS writes the playlist at `Output.Object` and its ts segments beside it
/// (`<playlist name>-<n>.ts`, `Video.HlsTsTime` seconds each). The result lists every file with
/// its MD5 and carries the output's `MediaInfo`.
///
/// Failures: `InputNotExist`; `InvalidInput` (not readable media, nothing to transcode);
/// `InvalidArgument` (`TimeInterval.Start` beyond the end); `ProcessingFailed` with ffmpeg's
/// reason; `OutputWriteFailed`; `JobTimeout`; `InternalError` when ffmpeg cannot start.
public struct TranscodeWorker: MediaWorker, FFmpegWorker {
    public let tag = "Transcode"

    let configuration: FFmpegConfiguration
    private let logger: Logger

    /// - Parameters:
    ///   - configuration: where ffmpeg and ffprobe are, and the job time limit.
    ///   - logger: receives debug lines per job; the worker never creates a logger itself.
    public init(configuration: FFmpegConfiguration = FFmpegConfiguration(), logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Resolves `TemplateId` and checks the transcode settings against CI's ranges and
    /// container/codec table.
    static func options(_ operation: XMLTree) throws(CIError) -> TranscodeOptions {
        let fields = OperationFields(operation, path: "Operation")
        for name in ["Watermark", "WatermarkTemplateId", "RemoveWatermark", "DigitalWatermark", "Subtitles"] {
            try fields.refuse(name)
        }
        let resolved = try SystemTemplates.resolve(operation, tag: "Transcode", container: "Transcode")
        guard let element = resolved.element else {
            throw OperationFields.invalid("Operation.Transcode", "is required (or Operation.TemplateId)")
        }
        return try TranscodeOptions(element, path: "Operation.Transcode")
    }

    /// Transcodes and returns `WorkResult(mediaResult:mediaInfo:)`; failures are `WorkFailure`s.
    func perform(_ job: Job, input: JobInput, options: TranscodeOptions, context: WorkContext) async throws -> WorkResult {
        let probe = try await MediaProbe.run(path: input.path, displayName: input.displayName, configuration: configuration)
        let plan = try MediaTimeSpan(start: options.start, duration: options.duration, inputDuration: probe.duration, field: "Operation.Transcode.TimeInterval.Start")
        let mapsVideo = options.video != nil && probe.video != nil
        let mapsAudio = options.audio != nil && probe.audio != nil
        guard mapsVideo || mapsAudio else {
            throw WorkFailure.invalidInput("'\(input.displayName)' has no \(options.format.holdsVideo ? "video or audio" : "audio") stream to transcode")
        }

        let object = OutputObjectTemplate(
            template: job.operation.text("Output", "Object")?.trimmed ?? "", jobID: job.id.rawValue, inputName: input.name,
            ext: options.format.fileExtension
        ).object()
        let staging = try OutputStaging(context: context, jobID: job.id.rawValue, object: object)
        defer { staging.remove() }
        let stem = OutputStaging.stem(OutputStaging.fileName(ofKey: object))
        let segmentPattern = options.format == .hls ? try FFmpegConfiguration.hlsSegmentPattern(folder: staging.folder, stem: stem, object: object) : nil

        var arguments: [String] = []
        if plan.start > 0 { arguments += ["-ss", FFmpegConfiguration.seconds(plan.start)] }
        arguments += FFmpegConfiguration.input(input.path)
        if let duration = options.duration { arguments += ["-t", FFmpegConfiguration.seconds(duration)] }
        if mapsVideo {
            arguments += ["-map", "0:v:0"]
            let filters = options.scaleFilters()
            if !filters.isEmpty { arguments += ["-vf", filters.joined(separator: ",")] }
            arguments += options.videoCodecArguments()
        }
        if mapsAudio { arguments += ["-map", "0:a:0"] + options.audioCodecArguments() }
        arguments += options.containerArguments(output: staging.path(for: object), segmentPattern: segmentPattern)

        logger.debug("transcoding", metadata: ["job.id": "\(job.id)", "input": "\(input.displayName)", "format": "\(options.format.rawValue)"])
        try await configuration.runFFmpeg(
            arguments, meter: .duration(plan.expectedDuration), context: context,
            hiding: [input.hiding, staging.hiding]
        )

        // The output's MediaInfo, probed before it is published.
        let mediaInfo = try? await MediaProbe.run(path: staging.path(for: object), displayName: object, configuration: configuration, output: true).mediaInfo()
        var files: [(file: String, object: String)] = []
        if options.format == .hls {
            // Segments first, the playlist last: it never names a segment that is not there yet.
            for name in staging.stagedFiles() where name.hasPrefix(stem + "-") && name.hasSuffix(".ts") {
                files.append((name, staging.object(forFile: name)))
            }
        }
        files.append((OutputStaging.fileName(ofKey: object), object))
        let published = try await staging.publish(files)
        context.reportProgress(100)
        logger.debug("transcoded", metadata: ["job.id": "\(job.id)", "files": "\(published.count)"])
        return WorkResult(
            mediaResult: MediaResult.xml(published, bucket: job.bucket, region: context.formatting.region),
            mediaInfo: mediaInfo
        )
    }
}
