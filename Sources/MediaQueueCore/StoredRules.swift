import MediaQueueXML
import Synchronization

/// A store's queues' callback rules, parsed, each kept with the text it was parsed from.
///
/// The completion path reads its queue's rule for every batch of ending jobs, and a rule rarely
/// changes. An entry is used only while the stored text is still the text it was parsed from, so
/// a changed rule (by this process or another) is parsed afresh and nothing stale is returned.
/// One per store; at most one entry per queue it has read (a queue another process deleted stays
/// until this one restarts: a few hundred bytes each).
public final class StoredRules: Sendable {
    private let parsed = Mutex<[QueueID: (text: String, rule: NotifyConfig)]>([:])

    public init() {}

    /// The rule of `queue`, whose stored `<NotifyConfig>` document is `text`.
    public func rule(of queue: QueueID, stored text: String) throws -> NotifyConfig {
        // Byte for byte: `==` on strings would take a URL rewritten in another Unicode
        // normalization form for the same text and keep sending the old bytes.
        if let known = parsed.withLock({ $0[queue] }), known.text.utf8.elementsEqual(text.utf8) { return known.rule }
        let rule = try NotifyConfig(xml: XMLDocumentParser.parse(text))
        parsed.withLock { $0[queue] = (text, rule) }
        return rule
    }

    /// Drops a deleted queue's entry.
    public func forget(_ queue: QueueID) {
        _ = parsed.withLock { $0.removeValue(forKey: queue) }
    }
}
