import MediaQueueXML
import Synchronization

extension NotifyConfig {
    /// A queue's rule as a store keeps it (the `<NotifyConfig>` document).
    ///
    /// The completion path reads its queue's rule for every batch of ending jobs, and a rule
    /// rarely changes, so the parses of the last texts seen are remembered. The text is the key:
    /// a changed rule is a different text and is parsed afresh, so nothing stale is ever returned.
    public init(stored text: String) throws {
        if let known = storedRules.withLock({ $0[text] }) {
            self = known
            return
        }
        let parsed = try NotifyConfig(xml: XMLDocumentParser.parse(text))
        storedRules.withLock { rules in
            if rules.count >= storedRulesLimit { rules.removeAll(keepingCapacity: true) }
            rules[text] = parsed
        }
        self = parsed
    }
}

/// Enough for every rule of a busy service; past it the memory starts over rather than grow.
private let storedRulesLimit = 1_024
private let storedRules = Mutex<[String: NotifyConfig]>([:])
