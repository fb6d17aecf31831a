/// What a bucket's jobs did lately: for the console's overview.
public struct JobActivity: Sendable, Hashable {
    /// Jobs submitted since the period's start, by their state now.
    public var byState: [JobState: Int]
    /// Of those, how many ended in each minute of the last hour, oldest minute first (60 values).
    public var endedPerMinute: [Int]

    public init(byState: [JobState: Int] = [:], endedPerMinute: [Int] = Array(repeating: 0, count: 60)) {
        self.byState = byState
        self.endedPerMinute = endedPerMinute
    }

    /// Counts a job submitted in the period; `now` places its end among the last hour's minutes.
    public mutating func count(state: JobState, endTime: Timestamp?, now: Timestamp) {
        byState[state, default: 0] += 1
        guard state.isTerminal, let endTime else { return }
        let minutesAgo = (now.milliseconds - endTime.milliseconds) / 60_000
        if endTime <= now, minutesAgo < Int64(endedPerMinute.count) {
            endedPerMinute[endedPerMinute.count - 1 - Int(minutesAgo)] += 1
        }
    }
}
