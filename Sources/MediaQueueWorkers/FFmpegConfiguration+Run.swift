import Foundation
import MediaQueueCore

/// How an ffmpeg run turns its `-progress` report into a percentage.
enum ProgressMeter: Sendable {
    /// By `out_time_us` against the output's expected length in seconds (nil: unknown, only 0
    /// and 99 are reported).
    case duration(Double?)
    /// By `frame` against the frames expected (image sequences).
    case frames(Int)

    /// The percentage a `-progress` line means, capped at 99 (100 is for published outputs).
    func percent(_ line: Substring) -> Int? {
        switch self {
        case .duration(let expected):
            if line == "progress=end" { return 99 }
            guard let expected, expected > 0, line.hasPrefix("out_time_us="), let micros = Double(line.dropFirst(12)), micros >= 0 else {
                return nil
            }
            // An output may run far longer than expected (a start just before a short stream's
            // end, with a longer one beside it): the ratio is then any size.
            return min(99, Int(saturating: micros / 1_000_000 / expected * 100))
        case .frames(let expected):
            guard line.hasPrefix("frame="), let frames = Int(line.dropFirst(6)) else { return nil }
            return min(99, Int(saturating: Double(frames) * 100 / Double(max(expected, 1))))
        }
    }
}

extension FFmpegConfiguration {
    /// Runs ffmpeg quietly with `-progress pipe:1`, reporting 0 at the start and then what
    /// `meter` reads from the report (never 100; the worker reports that once outputs are
    /// published).
    ///
    /// Throws `WorkFailure.toolUnavailable` when ffmpeg cannot start, `processingFailed` with
    /// ffmpeg's trimmed reason when it fails (every `hiding` path replaced by what the client
    /// knows it as, so no server path leaks), or `CancellationError` after ffmpeg is gone.
    func runFFmpeg(
        _ arguments: [String], meter: ProgressMeter, context: WorkContext, hiding: [(path: String, shownAs: String)] = []
    ) async throws {
        let reportProgress = context.reportProgress
        reportProgress(0)
        let output: MediaProcess.Output
        do {
            output = try await ffmpeg(
                ["-nostdin", "-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:1", "-y"] + arguments
            ).run(stdout: .lines { line in
                if let percent = meter.percent(line) { reportProgress(percent) }
            })
        } catch let error as MediaProcess.LaunchError {
            throw WorkFailure.toolUnavailable(error.description)
        }
        guard output.succeeded else {
            var reason = output.reason()
            // Longest paths first, so a folder never replaces part of a file path below it.
            for (path, shownAs) in (hiding + context.storage.displayPrefixes(bucket: context.bucket)).sorted(by: { $0.path.count > $1.path.count }) {
                reason = reason.replacingOccurrences(of: path, with: shownAs)
            }
            throw WorkFailure.processingFailed(reason)
        }
    }

    /// A path inside an ffmpeg file-name pattern (image2, segment and HLS segment names), where
    /// `%` starts a number; `%%` is a literal `%`.
    static func patternEscaped(_ path: String) -> String {
        path.replacingOccurrences(of: "%", with: "%%")
    }

    /// The HLS muxer's segment names (`<stem>-0.ts`, …) beside the playlist. Unlike the other
    /// muxers it writes an escaped `%%` into the names as it is, so the playlist would name
    /// segments that were never written: an output whose key has a `%` is refused. (The staging
    /// folder is the key's folder's.)
    static func hlsSegmentPattern(folder: String, stem: String, object: String) throws(WorkFailure) -> String {
        guard !object.contains("%") else {
            throw WorkFailure.invalidArgument("Output.Object", "an HLS output's name cannot hold '%' (\(object))")
        }
        return patternEscaped(folder) + "/" + stem + "-%d.ts"
    }

    /// Formats seconds for ffmpeg's time options: fixed notation (its parser has no exponents).
    static func seconds(_ value: Double) -> String {
        String(format: "%.3f", value)
    }
}
