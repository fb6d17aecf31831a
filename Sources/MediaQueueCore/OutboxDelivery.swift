/// One callback delivery with where it stands.
public struct OutboxDelivery: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable {
        /// Waiting for its first attempt or a retry (`entry.nextAttempt`).
        case pending
        case delivered
        /// Used up its attempts; waits for a redrive.
        case dead
    }

    public var entry: OutboxEntry
    public var status: Status
    public var deliveredAt: Timestamp?

    public init(entry: OutboxEntry, status: Status, deliveredAt: Timestamp? = nil) {
        self.entry = entry
        self.status = status
        self.deliveredAt = deliveredAt
    }
}
