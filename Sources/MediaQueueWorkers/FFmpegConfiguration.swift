import Foundation

/// Where the media workers find ffmpeg and ffprobe, and how patiently they stop them.
public struct FFmpegConfiguration: Sendable, Hashable {
    /// Path of the `ffmpeg` executable.
    public var ffmpegPath: String
    /// Path of the `ffprobe` executable.
    public var ffprobePath: String
    /// How long a cancelled ffmpeg may take to stop after SIGTERM before it gets SIGKILL.
    public var terminationGracePeriod: Duration
    /// The longest one job may run; past it, ffmpeg is stopped and the job fails with
    /// `JobTimeout` (`MEDIAQUEUE_JOB_TIMEOUT_SECONDS`).
    public var jobTimeout: Duration

    /// The default job time limit: six hours.
    public static let defaultJobTimeout: Duration = .seconds(6 * 3600)

    /// Paths default to the first match on `PATH` (else `/usr/bin/<name>`).
    public init(
        ffmpegPath: String? = nil, ffprobePath: String? = nil, terminationGracePeriod: Duration = .seconds(2),
        jobTimeout: Duration = FFmpegConfiguration.defaultJobTimeout
    ) {
        self.ffmpegPath = ffmpegPath ?? Self.resolve("ffmpeg")
        self.ffprobePath = ffprobePath ?? Self.resolve("ffprobe")
        self.terminationGracePeriod = terminationGracePeriod
        self.jobTimeout = jobTimeout
    }

    /// The first executable named `name` on `PATH`, or `/usr/bin/<name>` when there is none
    /// (the launch then fails with a message naming that path).
    public static func resolve(_ name: String) -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for folder in path.split(separator: ":") where !folder.isEmpty {
            let candidate = "\(folder)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return "/usr/bin/\(name)"
    }

    func ffmpeg(_ arguments: [String]) -> MediaProcess {
        MediaProcess(executable: ffmpegPath, arguments: arguments, terminationGracePeriod: terminationGracePeriod)
    }

    func ffprobe(_ arguments: [String]) -> MediaProcess {
        MediaProcess(executable: ffprobePath, arguments: arguments, terminationGracePeriod: terminationGracePeriod)
    }
}
