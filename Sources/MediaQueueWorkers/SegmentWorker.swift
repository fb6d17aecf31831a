import Foundation
public import Logging
public import MediaQueueCore
import MediaQueueXML

/// Runs `Segment` jobs (CI's 转封装): `Input.Object` remuxed without re-encoding into `Format`
/// hls/m3u8 (a playlist at `Output.Object` and `<name>-<n>.ts` segments beside it), or mp4, ts,
/// mkv: one file, or with `Duration` one file per segment named by `${Number}` (from 0).
///
/// Failures: `InputNotExist`; `InvalidInput` (not readable media); `InvalidArgument`
/// (`StartTime` beyond the end); `ProcessingFailed` with ffmpeg's reason (e.g. codecs the
/// container cannot hold); `OutputWriteFailed`; `JobTimeout`; `InternalError`.
public struct SegmentWorker: MediaWorker, FFmpegWorker {
    public let tag = "Segment"

    let configuration: FFmpegConfiguration
    private let logger: Logger

    /// - Parameters:
    ///   - configuration: where ffmpeg and ffprobe are, and the job time limit.
    ///   - logger: receives debug lines per job; the worker never creates a logger itself.
    public init(configuration: FFmpegConfiguration = FFmpegConfiguration(), logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    static func options(_ operation: XMLTree) throws(CIError) -> SegmentOptions {
        try SegmentOptions(operation: operation)
    }

    /// Remuxes and returns `WorkResult(mediaResult:mediaInfo:)`; the MediaInfo is the first
    /// output's (the playlist for HLS).
    func perform(_ job: Job, input: JobInput, options: SegmentOptions, context: WorkContext) async throws -> WorkResult {
        let probe = try await MediaProbe.run(path: input.path, displayName: input.displayName, configuration: configuration)
        let span = try MediaTimeSpan(
            start: options.startTime, duration: options.endTime.map { $0 - options.startTime }, inputDuration: probe.duration,
            field: "Operation.Segment.StartTime"
        )
        let names = OutputObjectTemplate(template: options.outputObject, jobID: job.id.rawValue, inputName: input.name, ext: options.format.fileExtension)
        let first = names.object(number: 0)
        let staging = try OutputStaging(context: context, jobID: job.id.rawValue, object: first)
        defer { staging.remove() }

        var arguments: [String] = []
        if span.start > 0 { arguments += ["-ss", FFmpegConfiguration.seconds(span.start)] }
        arguments += FFmpegConfiguration.input(input.path)
        if let duration = span.duration { arguments += ["-t", FFmpegConfiguration.seconds(duration)] }
        arguments += ["-map", "0:v:0?", "-map", "0:a:0?", "-c", "copy"]
        let stem = OutputStaging.stem(OutputStaging.fileName(ofKey: first))
        let numbered = !options.format.isPlaylist && options.duration != nil
        switch options.format {
        case .hls, .m3u8:
            arguments += [
                "-hls_time", String(options.duration ?? SegmentOptions.playlistDefaultDuration), "-hls_list_size", "0",
                "-hls_playlist_type", "vod", "-hls_segment_filename",
                try FFmpegConfiguration.hlsSegmentPattern(folder: staging.folder, stem: stem, object: first),
                "-f", "hls", staging.path(for: first),
            ]
        case .mp4, .ts, .mkv:
            if let duration = options.duration {
                arguments += [
                    "-f", "segment", "-segment_time", String(duration), "-reset_timestamps", "1", "-segment_format", options.format.muxer,
                    "-segment_start_number", "0", FFmpegConfiguration.patternEscaped(staging.folder) + "/segment-%d." + options.format.fileExtension,
                ]
            } else {
                if options.format == .mp4 { arguments += ["-movflags", "+faststart"] }
                arguments += ["-f", options.format.muxer, staging.path(for: first)]
            }
        }

        logger.debug("segmenting", metadata: ["job.id": "\(job.id)", "input": "\(input.displayName)", "format": "\(options.format.rawValue)"])
        try await configuration.runFFmpeg(
            arguments, meter: .duration(span.expectedDuration), context: context,
            hiding: [input.hiding, staging.hiding]
        )

        var files: [(file: String, object: String)] = []
        let staged = staging.stagedFiles()
        if numbered {
            let prefix = "segment-", suffix = "." + options.format.fileExtension
            for name in staged where name.hasPrefix(prefix) && name.hasSuffix(suffix) {
                guard let number = Int(name.dropFirst(prefix.count).dropLast(suffix.count)) else { continue }
                files.append((name, names.object(number: number)))
            }
        } else {
            if options.format.isPlaylist {
                for name in staged where name.hasPrefix(stem + "-") && name.hasSuffix(".ts") {
                    files.append((name, staging.object(forFile: name)))
                }
            }
            // The playlist (or the single file) last.
            files.append((OutputStaging.fileName(ofKey: first), first))
        }
        guard !files.isEmpty else {
            throw WorkFailure.processingFailed("ffmpeg wrote no segment")
        }
        let infoFile = options.format.isPlaylist ? staging.path(for: first) : staging.folder + "/" + files[0].file
        let mediaInfo = try? await MediaProbe.run(path: infoFile, displayName: files[0].object, configuration: configuration, output: true).mediaInfo()
        let published = try await staging.publish(files)
        context.reportProgress(100)
        return WorkResult(mediaResult: MediaResult.xml(published, bucket: job.bucket, region: context.formatting.region), mediaInfo: mediaInfo)
    }
}
