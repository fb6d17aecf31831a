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

    /// A job's input for ffmpeg: `-i path` with what may read it. Only local files, and only
    /// through demuxers of media files: a playlist (HLS, DASH), an IMF package or a concat
    /// list names further files, and ffmpeg would open them, other buckets' objects included.
    static func input(_ path: String) -> [String] {
        inputLimits + ["-i", path]
    }

    /// `-protocol_whitelist` and `-format_whitelist` for a job's input (ffprobe takes them too).
    static let inputLimits = ["-protocol_whitelist", "file", "-format_whitelist", mediaDemuxers.joined(separator: ",")]

    /// The demuxers of media files, each reading one file only (`ffmpeg -demuxers` names them;
    /// `mov` is also mp4 and m4a, `matroska` also webm, `image2` a still image's file).
    static let mediaDemuxers = [
        "mov", "matroska", "avi", "flv", "mpegts", "mpeg", "mpegvideo", "m4v", "h264", "hevc", "obu", "vc1", "mjpeg", "asf",
        "mxf", "dv", "nut", "ivf", "rm", "ogg", "mp3", "aac", "ac3", "eac3", "dts", "truehd", "wav", "w64", "flac", "aiff",
        "caf", "amr", "ape", "wv", "tta", "mpc", "mpc8", "image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe",
        "tiff_pipe", "gif", "gif_pipe", "srt", "ass", "webvtt",
    ]

    /// The message of an input that ffmpeg refused for its format (`inputLimits`), or nil.
    static func refusedFormat(in reason: String, displayName: String) -> String? {
        guard let range = reason.range(of: "Format not on whitelist") else { return nil }
        let before = reason[..<range.lowerBound]
        let format = before.range(of: "[", options: .backwards).map { before[$0.upperBound...].prefix { $0 != " " } } ?? ""
        return "\(displayName): its format\(format.isEmpty ? "" : " (\(format))") is not read as an input; playlists and other files that name further files are refused, only media files are read"
    }

    func ffmpeg(_ arguments: [String]) -> MediaProcess {
        MediaProcess(executable: ffmpegPath, arguments: arguments, terminationGracePeriod: terminationGracePeriod)
    }

    func ffprobe(_ arguments: [String]) -> MediaProcess {
        MediaProcess(executable: ffprobePath, arguments: arguments, terminationGracePeriod: terminationGracePeriod)
    }
}
