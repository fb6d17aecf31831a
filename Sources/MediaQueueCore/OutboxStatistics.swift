/// Callback deliveries not yet delivered, per channel.
public struct OutboxStatistics: Sendable, Hashable {
    /// Deliveries still to be attempted (first attempt or a retry).
    public var pending: [NotifyConfig.Channel: Int]
    /// Deliveries that used up their attempts (listed by `deadOutbox`, redrivable).
    public var dead: [NotifyConfig.Channel: Int]

    public init(pending: [NotifyConfig.Channel: Int] = [:], dead: [NotifyConfig.Channel: Int] = [:]) {
        self.pending = pending
        self.dead = dead
    }
}
