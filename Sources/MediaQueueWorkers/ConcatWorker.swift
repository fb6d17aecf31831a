import Foundation
public import Logging
public import MediaQueueCore
import MediaQueueXML

/// Runs `Concat` jobs: the fragments of `Operation.ConcatTemplate` and `Input.Object` joined in
/// the order `ConcatOptions` describes, re-encoded into its `Container`/`Video`/`Audio`. Pieces
/// of other sizes are fitted into the output size (the input's, unless `Width`/`Height` say
/// otherwise) with black bars; the frame rate is `Fps` or the input's; a piece without audio
/// contributes silence.
///
/// Failures: `InputNotExist` (the input or any fragment); `InvalidInput` (not readable media, a
/// piece without video for a video output); `InvalidArgument` (a fragment URL of another
/// bucket); `ProcessingFailed`; `OutputWriteFailed`; `JobTimeout`; `InternalError`.
public struct ConcatWorker: MediaWorker, FFmpegWorker {
    public let tag = "Concat"

    let configuration: FFmpegConfiguration
    private let logger: Logger

    /// - Parameters:
    ///   - configuration: where ffmpeg and ffprobe are, and the job time limit.
    ///   - logger: receives debug lines per job; the worker never creates a logger itself.
    public init(configuration: FFmpegConfiguration = FFmpegConfiguration(), logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    static func options(_ operation: XMLTree) throws(CIError) -> ConcatOptions {
        try ConcatOptions(operation: operation)
    }

    /// One piece of the output: a stored object, probed, with its cut.
    private struct Piece {
        var input: JobInput
        var probe: MediaProbe
        var start: Double?
        var end: Double?

        /// Seconds this piece contributes; nil when unknown.
        var duration: Double? {
            let full = probe.duration
            let from = start ?? 0
            let to = [end, full].compactMap { $0 }.min()
            return to.map { max(0, $0 - from) }
        }
    }

    /// Joins the pieces and returns `WorkResult(mediaResult:mediaInfo:)`.
    func perform(_ job: Job, input main: JobInput, options: ConcatOptions, context: WorkContext) async throws -> WorkResult {
        var pieces: [Piece] = []
        // The fragments' copies (an S3 store downloads each) go when the job ends, however it
        // ends; the main input is the caller's.
        var fragmentInputs: [JobInput] = []
        defer { for input in fragmentInputs { input.close() } }
        func fragmentPiece(_ fragment: ConcatOptions.Fragment) async throws -> Piece {
            let piece = try await piece(fragment, job: job, context: context)
            fragmentInputs.append(piece.input)
            return piece
        }
        for fragment in options.fragments where fragment.mode == .start {
            pieces.append(try await fragmentPiece(fragment))
        }
        let mainPiece = Piece(input: main, probe: try await probe(main))
        pieces.append(mainPiece)
        for fragment in options.fragments where fragment.mode == .end {
            pieces.append(try await fragmentPiece(fragment))
        }

        let output = options.output
        let video = output.video
        var size: (width: Int, height: Int)?
        if video != nil {
            for piece in pieces where piece.probe.video == nil {
                throw WorkFailure.invalidInput("'\(piece.input.displayName)' has no video stream to join into a video output")
            }
            size = Self.outputSize(video, source: mainPiece.probe.video)
        }
        let fps = video?.fps ?? mainPiece.probe.video?.rational("avg_frame_rate") ?? 25
        let audio = output.audio
        let layout = (audio?.channels ?? 2) == 1 ? "mono" : "stereo"

        var arguments: [String] = []
        var graph: [String] = []
        var joined = ""
        for (index, piece) in pieces.enumerated() {
            if let start = piece.start { arguments += ["-ss", FFmpegConfiguration.seconds(start)] }
            if let end = piece.end { arguments += ["-t", FFmpegConfiguration.seconds(end - (piece.start ?? 0))] }
            arguments += FFmpegConfiguration.input(piece.input.path)
            if let size {
                graph.append(
                    "[\(index):v:0]scale=\(size.width):\(size.height):force_original_aspect_ratio=decrease,"
                        + "pad=\(size.width):\(size.height):(ow-iw)/2:(oh-ih)/2,setsar=1,fps=\(String(format: "%.6f", fps)),format=yuv420p[v\(index)]"
                )
                joined += "[v\(index)]"
            }
            if let audio {
                if piece.probe.audio != nil {
                    graph.append("[\(index):a:0]aresample=\(audio.sampleRate),aformat=sample_fmts=fltp:channel_layouts=\(layout)[a\(index)]")
                } else {
                    let duration = piece.duration ?? 0
                    graph.append("anullsrc=r=\(audio.sampleRate):cl=\(layout),atrim=duration=\(String(format: "%.3f", duration)),aformat=sample_fmts=fltp[a\(index)]")
                }
                joined += "[a\(index)]"
            }
        }
        graph.append(joined + "concat=n=\(pieces.count):v=\(size == nil ? 0 : 1):a=\(audio == nil ? 0 : 1)" + (size == nil ? "" : "[v]") + (audio == nil ? "" : "[a]"))
        arguments += ["-filter_complex", graph.joined(separator: ";")]
        if size != nil { arguments += ["-map", "[v]"] + output.videoCodecArguments() }
        if audio != nil { arguments += ["-map", "[a]"] + output.audioCodecArguments() }

        let object = OutputObjectTemplate(
            template: job.operation.text("Output", "Object")?.trimmed ?? "", jobID: job.id.rawValue, inputName: main.name,
            ext: output.format.fileExtension
        ).object()
        let staging = try OutputStaging(context: context, jobID: job.id.rawValue, object: object)
        defer { staging.remove() }
        let stem = OutputStaging.stem(OutputStaging.fileName(ofKey: object))
        arguments += output.containerArguments(
            output: staging.path(for: object), segmentPattern: output.format == .hls ? try FFmpegConfiguration.hlsSegmentPattern(folder: staging.folder, stem: stem, object: object) : nil
        )

        let durations = pieces.map(\.duration)
        let expected: Double? = durations.contains { $0 == nil } ? nil : durations.reduce(0) { $0 + ($1 ?? 0) }
        logger.debug("concatenating", metadata: ["job.id": "\(job.id)", "pieces": "\(pieces.count)"])
        try await configuration.runFFmpeg(
            arguments, meter: .duration(expected), context: context,
            hiding: pieces.map(\.input.hiding) + [staging.hiding]
        )

        let mediaInfo = try? await MediaProbe.run(path: staging.path(for: object), displayName: object, configuration: configuration, output: true).mediaInfo()
        var files: [(file: String, object: String)] = []
        if output.format == .hls {
            for name in staging.stagedFiles() where name.hasPrefix(stem + "-") && name.hasSuffix(".ts") {
                files.append((name, staging.object(forFile: name)))
            }
        }
        files.append((OutputStaging.fileName(ofKey: object), object))
        let published = try await staging.publish(files)
        context.reportProgress(100)
        return WorkResult(mediaResult: MediaResult.xml(published, bucket: job.bucket, region: context.formatting.region), mediaInfo: mediaInfo)
    }

    private func piece(_ fragment: ConcatOptions.Fragment, job: Job, context: WorkContext) async throws -> Piece {
        if let host = fragment.host, !host.hasPrefix(job.bucket + ".") {
            throw WorkFailure.invalidArgument("\(fragment.path).Url", "the host '\(host)' is not this bucket's (\(job.bucket).…)")
        }
        let input = try await JobInput.object(fragment.object, context: context)
        do {
            return Piece(input: input, probe: try await probe(input), start: fragment.startTime, end: fragment.endTime)
        } catch {
            input.close()
            throw error
        }
    }

    private func probe(_ input: JobInput) async throws -> MediaProbe {
        try await MediaProbe.run(path: input.path, displayName: input.displayName, configuration: configuration)
    }

    /// Half the longest side an output gets from the input's aspect ratio (ffmpeg's encoders stop
    /// far below), so the arithmetic on a strange ratio stays in range and ffmpeg names the problem.
    static let maxHalfSide = 1 << 20

    /// `Width`/`Height` when both are set; one of them with the other from the input's aspect
    /// ratio; else the input's size. Always even (4:2:0 needs it).
    static func outputSize(_ video: TranscodeOptions.Video?, source: MediaProbe.Section?) -> (width: Int, height: Int) {
        // A stream without a size (a container that declares one with no frames) probes as 0x0.
        let sourceWidth = source?.number("width").flatMap { $0 > 0 ? $0 : nil } ?? 640
        let sourceHeight = source?.number("height").flatMap { $0 > 0 ? $0 : nil } ?? 360
        func even(_ value: Double) -> Int { max(2, min(Int(saturating: (value / 2).rounded()), Self.maxHalfSide) * 2) }
        switch (video?.width, video?.height) {
        case (let width?, let height?): return (width, height)
        case (let width?, nil): return (width, even(Double(width) * sourceHeight / sourceWidth))
        case (nil, let height?): return (even(Double(height) * sourceWidth / sourceHeight), height)
        case (nil, nil): return (even(sourceWidth), even(sourceHeight))
        }
    }
}
