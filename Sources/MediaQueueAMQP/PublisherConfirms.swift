/// The publisher-confirm bookkeeping of one publish channel: publishes sent and not yet
/// confirmed, by delivery tag, and how the broker's acks, nacks and returns settle them.
///
/// A value type with no connection in it, owned by the connection thread, so its rules are
/// unit-tested without a broker. `Token` is what the owner needs to answer a publish (the
/// connection keeps each publish's reply).
struct PublisherConfirms<Token> {
    /// What one publish is waiting for.
    struct Pending {
        var token: Token
        var mandatory: Bool
        var exchange: String
        var routingKey: String
        var messageID: String?
        /// Set by a basic.return: the broker will still ack it, but nothing received it.
        var returnedReason: String?
    }

    private var nextTag: UInt64 = 1
    private var lowestUnconfirmed: UInt64 = 1
    private var pending: [UInt64: Pending] = [:]

    /// Publishes sent and not confirmed yet.
    var count: Int { pending.count }
    var isEmpty: Bool { pending.isEmpty }

    /// A new channel (confirm.select again): tags start at 1. Nothing may be pending.
    mutating func channelOpened() {
        assert(pending.isEmpty, "unconfirmed publishes of the previous channel must be failed first")
        nextTag = 1
        lowestUnconfirmed = 1
    }

    /// Registers a publish about to be sent and returns its delivery tag.
    mutating func register(_ token: Token, mandatory: Bool, exchange: String, routingKey: String, messageID: String?) -> UInt64 {
        let tag = nextTag
        nextTag += 1
        pending[tag] = Pending(token: token, mandatory: mandatory, exchange: exchange, routingKey: routingKey, messageID: messageID)
        return tag
    }

    /// A basic.ack (`acked`) or basic.nack for `tag`, or for every tag up to it (`multiple`):
    /// the publishes it settles, oldest first, each with its outcome.
    mutating func confirm(upTo tag: UInt64, multiple: Bool, acked: Bool) -> [(token: Token, result: Result<Void, AMQPError>)] {
        var settled: [Pending] = []
        if multiple {
            var current = lowestUnconfirmed
            while current <= tag {
                if let entry = pending.removeValue(forKey: current) { settled.append(entry) }
                current += 1
            }
            lowestUnconfirmed = max(lowestUnconfirmed, tag + 1)
        } else if let entry = pending.removeValue(forKey: tag) {
            settled.append(entry)
            while lowestUnconfirmed < nextTag, pending[lowestUnconfirmed] == nil { lowestUnconfirmed += 1 }
        }
        return settled.map { ($0.token, Self.outcome(of: $0, acked: acked)) }
    }

    /// A basic.return: marks the oldest unconfirmed mandatory publish it matches. A return has no
    /// delivery tag; it arrives before the ack of its message and is matched by exchange, routing
    /// key and message id (so set a message id when mandatory publishes to one key can differ in
    /// routability while in flight together). False when nothing matched.
    mutating func markReturned(exchange: String, routingKey: String, messageID: String?, reason: String) -> Bool {
        var tag = lowestUnconfirmed
        while tag < nextTag {
            if var entry = pending[tag], entry.mandatory, entry.returnedReason == nil,
                entry.exchange == exchange, entry.routingKey == routingKey, entry.messageID == messageID
            {
                entry.returnedReason = reason
                pending[tag] = entry
                return true
            }
            tag += 1
        }
        return false
    }

    /// The channel or the connection is gone: every unconfirmed publish, oldest first, to be
    /// failed (the broker will never confirm them).
    mutating func abandonAll() -> [Token] {
        defer { pending = [:] }
        return pending.sorted { $0.key < $1.key }.map(\.value.token)
    }

    private static func outcome(of entry: Pending, acked: Bool) -> Result<Void, AMQPError> {
        if !acked {
            return .failure(AMQPError(.nacked, "the broker refused the message (basic.nack) for exchange '\(entry.exchange)', routing key '\(entry.routingKey)'"))
        }
        if let reason = entry.returnedReason {
            return .failure(AMQPError(.returned, "unroutable mandatory message for exchange '\(entry.exchange)', routing key '\(entry.routingKey)': \(reason)"))
        }
        return .success(())
    }
}
