import MediaQueueCore

/// When the shots of one Snapshot job are taken, worked out from the options and the probed
/// input before ffmpeg runs, so one ffmpeg run can produce them all.
struct SnapshotPlan: Sendable, Hashable {
    /// Seconds into the input of the first shot.
    var start: Double
    /// Seconds between shots; nil takes consecutive frames.
    var interval: Double?
    /// The most shots ffmpeg may write (`-frames:v`).
    var maxShots: Int
    /// How many shots are likely, for progress; never more than `maxShots`.
    var expectedShots: Int

    /// - Parameters:
    ///   - duration: the input's length in seconds; nil when ffprobe could not tell.
    ///   - frameRate: the video's average frame rate; nil when unknown.
    init(options: SnapshotOptions, duration: Double?, frameRate: Double?) throws(WorkFailure) {
        start = options.start
        if let duration, start >= duration {
            throw WorkFailure.invalidArgument(
                "Operation.Snapshot.Start", "\(Self.seconds(start)) s is not before the end of the input (\(Self.seconds(duration)) s)"
            )
        }
        let remaining = duration.map { $0 - options.start }
        switch options.mode {
        case .average:
            guard let remaining else {
                throw WorkFailure.invalidInput("the input's duration is unknown, which Average mode needs")
            }
            interval = remaining / Double(options.count)
            maxShots = options.count
            expectedShots = options.count
        case .keyFrame:
            // Which frames are key frames is known only while decoding.
            interval = nil
            maxShots = options.count
            expectedShots = options.count
        case .interval:
            if let step = options.timeInterval {
                // Shot k is at start + k·step and must be before the end.
                let possible = remaining.map { Int(saturating: ($0 / step).rounded(.up)) } ?? options.count
                if options.isCheckCount, possible < options.count, let remaining {
                    interval = remaining / Double(options.count)
                    maxShots = options.count
                } else {
                    interval = step
                    maxShots = min(options.count, max(possible, 1))
                }
                expectedShots = maxShots
            } else {
                interval = nil
                maxShots = options.count
                if let remaining, let frameRate, frameRate > 0 {
                    expectedShots = min(options.count, max(Int(saturating: (remaining * frameRate).rounded(.up)), 1))
                } else {
                    expectedShots = options.count
                }
            }
        }
    }

    private static func seconds(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
