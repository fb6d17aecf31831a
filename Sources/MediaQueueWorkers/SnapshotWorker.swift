import Foundation
public import Logging
public import MediaQueueCore
import MediaQueueXML

/// Runs `Snapshot` jobs: still images of the input video, written to the bucket under
/// `Operation.Output.Object` and listed in CI's `<MediaResult>` with their MD5s.
///
/// Supported: `Mode` `Interval` (default) and `Average`, `Start`, `TimeInterval`, `Count`,
/// `Width`/`Height` (one alone keeps the aspect ratio), `IsCheckCount`; JPEG output, or PNG when
/// the key ends in `.png`. One ffmpeg run renders every shot.
///
/// Failures: `InputNotExist`; `InvalidInput` (not readable media, or no video stream);
/// `InvalidArgument` (`Start` beyond the end); `ProcessingFailed` with ffmpeg's reason;
/// `OutputWriteFailed`; `InternalError` when ffmpeg cannot start.
public struct SnapshotWorker: MediaWorker {
    public let tag = "Snapshot"

    private let configuration: FFmpegConfiguration
    private let logger: Logger

    /// - Parameters:
    ///   - configuration: where ffmpeg and ffprobe are.
    ///   - logger: receives debug lines per job; the worker never creates a logger itself.
    public init(configuration: FFmpegConfiguration = FFmpegConfiguration(), logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Requires `Input.Object` and `Operation.Output.Object` and checks `Operation.Snapshot`
    /// against CI's ranges.
    public func validate(_ operation: CreateMediaJobsRequest.Operation) throws(CIError) {
        _ = try operation.requireInputObject()
        _ = try operation.requireOutputObject()
        _ = try SnapshotOptions(operation: operation.operation)
    }

    /// Renders the shots and returns `WorkResult(mediaResult:)`; failures are `WorkFailure`s.
    public func run(_ job: Job, context: WorkContext) async throws -> WorkResult {
        let options: SnapshotOptions
        do {
            options = try SnapshotOptions(operation: job.operation)
        } catch {
            throw WorkFailure(code: error.code.rawValue, message: error.message)
        }
        let input = try BucketInput(job: job, context: context)
        let probe = try await MediaProbe.run(path: input.path, displayName: input.object, configuration: configuration)
        guard let video = probe.video else {
            throw WorkFailure.invalidInput("'\(input.object)' has no video stream")
        }
        let plan = try SnapshotPlan(options: options, duration: probe.duration, frameRate: video.rational("avg_frame_rate"))
        let names = OutputObjectTemplate(template: options.outputObject, jobID: job.id.rawValue, inputName: input.name, ext: "jpg")
        let files = SnapshotFiles(bucketRoot: context.bucketRoot, names: names, maxShots: plan.maxShots)
        try files.prepare()
        logger.debug("taking snapshots", metadata: [
            "job.id": "\(job.id)", "input": "\(input.object)", "shots.max": "\(plan.maxShots)",
        ])

        let published: [SnapshotFiles.Published]
        do {
            defer { files.removeTemporaryFiles() }
            try await render(plan: plan, options: options, input: input, files: files, context: context)
            published = try files.publish()
        }
        guard !published.isEmpty else {
            throw WorkFailure.invalidArgument("Operation.Snapshot.Start", "the input has no video frame at or after it")
        }
        context.reportProgress(100)
        logger.debug("snapshots written", metadata: ["job.id": "\(job.id)", "shots": "\(published.count)"])
        return WorkResult(mediaResult: Self.mediaResult(published, bucket: job.bucket, region: context.formatting.region))
    }

    /// One ffmpeg run for every shot; progress comes from `-progress pipe:1` (`frame=` counts
    /// written shots).
    private func render(
        plan: SnapshotPlan, options: SnapshotOptions, input: BucketInput, files: SnapshotFiles, context: WorkContext
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
        var arguments = [
            "-nostdin", "-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:1", "-y",
            // Fixed notation: ffmpeg's time syntax has no exponents (`1e-05`).
            "-ss", String(format: "%.3f", plan.start), "-i", input.path,
            "-map", "0:v:0", "-an", "-sn", "-dn",
        ]
        if !filters.isEmpty { arguments += ["-vf", filters.joined(separator: ",")] }
        arguments += ["-fps_mode", "passthrough", "-frames:v", String(plan.maxShots)]
        if files.imageExtension == "jpg" { arguments += ["-q:v", "2"] }
        arguments += ["-start_number", "0", files.ffmpegPattern]

        let expected = plan.expectedShots
        let reportProgress = context.reportProgress
        reportProgress(0)
        let output: MediaProcess.Output
        do {
            output = try await configuration.ffmpeg(arguments).run(stdout: .lines { line in
                guard line.hasPrefix("frame="), let frames = Int(line.dropFirst(6)) else { return }
                // 99 at most until the files are published.
                reportProgress(min(99, frames * 100 / max(expected, 1)))
            })
        } catch let error as MediaProcess.LaunchError {
            throw WorkFailure.toolUnavailable(error.description)
        }
        guard output.succeeded else {
            let reason = output.reason()
                .replacingOccurrences(of: input.path, with: input.object)
                .replacingOccurrences(of: context.bucketRoot + "/", with: "")
            throw WorkFailure.processingFailed(reason)
        }
    }

    /// `<MediaResult><OutputFile>` with one `ObjectName` and one `Md5Info` per shot.
    static func mediaResult(_ published: [SnapshotFiles.Published], bucket: String, region: String) -> XMLTree {
        var outputFile = XMLTree("OutputFile", children: [
            XMLTree("Bucket", text: bucket),
            XMLTree("Region", text: region),
        ])
        outputFile.children += published.map { XMLTree("ObjectName", text: $0.object) }
        outputFile.children += published.map {
            XMLTree("Md5Info", children: [XMLTree("Md5", text: $0.md5), XMLTree("ObjectName", text: $0.object)])
        }
        return XMLTree("MediaResult", children: [outputFile])
    }
}
