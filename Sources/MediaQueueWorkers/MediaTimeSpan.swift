import MediaQueueCore

/// The part of the input a job works on (`TimeInterval.Start`/`Duration` and the like), checked
/// against the probed input once it is known.
struct MediaTimeSpan: Sendable, Hashable {
    var start: Double
    var duration: Double?
    /// How long the output will likely be, for progress; nil when unknown.
    var expectedDuration: Double?

    /// Throws `InvalidArgument` naming `field` when `start` is not before the end of the input.
    init(start: Double, duration: Double?, inputDuration: Double?, field: String) throws(WorkFailure) {
        self.start = start
        self.duration = duration
        if let inputDuration, start > 0, start >= inputDuration {
            throw WorkFailure.invalidArgument(field, "\(start) s is not before the end of the input (\(inputDuration) s)")
        }
        let remaining = inputDuration.map { $0 - start }
        switch (remaining, duration) {
        case (let remaining?, let duration?): expectedDuration = min(remaining, duration)
        case (let remaining?, nil): expectedDuration = remaining
        case (nil, let duration?): expectedDuration = duration
        case (nil, nil): expectedDuration = nil
        }
    }
}
