import Foundation
public import MediaQueueCore

/// The failure codes the media workers report in a job's `Code` (CI documents no vocabulary for
/// job failures, so these follow its style; `InputNotExist` comes from MediaQueueCore).
extension WorkFailure {
    /// ffprobe cannot read the input, or it lacks what the job needs (e.g. a video stream).
    /// The message is ffprobe's reason.
    public static func invalidInput(_ reason: String) -> WorkFailure {
        WorkFailure(code: "InvalidInput", message: reason)
    }

    /// A value is valid on its own but not for this input (e.g. `Start` beyond the end).
    public static func invalidArgument(_ element: String, _ reason: String) -> WorkFailure {
        WorkFailure(code: "InvalidArgument", message: "\(element): \(reason)")
    }

    /// ffmpeg failed while it worked on a readable input; the message is its last stderr lines.
    public static func processingFailed(_ reason: String) -> WorkFailure {
        WorkFailure(code: "ProcessingFailed", message: reason)
    }

    /// The output could not be written (a folder cannot be created, a file cannot be renamed).
    public static func outputWriteFailed(_ object: String, _ reason: String) -> WorkFailure {
        WorkFailure(code: "OutputWriteFailed", message: "cannot write '\(object)': \(reason)")
    }

    /// ffmpeg or ffprobe could not be started; the details are in the message and the log.
    public static func toolUnavailable(_ reason: String) -> WorkFailure {
        WorkFailure(code: "InternalError", message: reason)
    }
}

extension WorkFailure {
    /// The job ran past its time limit (`FFmpegConfiguration.jobTimeout`); ffmpeg was stopped and
    /// partial outputs removed.
    public static func jobTimeout(_ limit: Duration) -> WorkFailure {
        let seconds = Double(limit.components.seconds) + Double(limit.components.attoseconds) / 1e18
        let shown = String(format: "%g", seconds)
        return WorkFailure(code: "JobTimeout", message: "the job did not finish within its time limit of \(shown) s and was stopped")
    }
}
