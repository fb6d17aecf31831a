/// Where and how one job's outcome is announced: the job's own override if it has one,
/// otherwise the queue's rule.
public struct CallbackTarget: Sendable, Hashable {
    public enum Destination: Sendable, Hashable {
        /// HTTP POST to this URL.
        case url(String)
        /// A message to TDMQ-style queue or topic `name` on the broker configured for `region`.
        case mq(mode: NotifyConfig.MqMode, name: String, region: String)
    }

    public var destination: Destination
    public var format: NotifyConfig.Format

    public init(destination: Destination, format: NotifyConfig.Format) {
        self.destination = destination
        self.format = format
    }

    /// The target for a job that ended, or nil when nothing is to be sent (rule off, event not
    /// subscribed, or `CallBack=no`).
    public static func resolve(rule: NotifyConfig, override: CallbackOverride) -> CallbackTarget? {
        if override.isSilenced { return nil }
        let ruleApplies = rule.isOn && rule.events.contains(.taskFinish)
        let format = override.format ?? (ruleApplies ? rule.resultFormat : .xml)
        if override.type == .tdmq, let mq = override.mq {
            return CallbackTarget(destination: .mq(mode: mq.mode, name: mq.name, region: mq.region), format: format)
        }
        if let url = override.url {
            return CallbackTarget(destination: .url(url), format: format)
        }
        guard ruleApplies else { return nil }
        switch rule.type {
        case .url?:
            return CallbackTarget(destination: .url(rule.url), format: format)
        case .tdmq?:
            return CallbackTarget(destination: .mq(mode: rule.mqMode ?? .queue, name: rule.mqName, region: rule.mqRegion), format: format)
        case nil:
            return nil
        }
    }
}

extension CallbackTarget.Destination {
    /// Which relay delivers it.
    public var channel: NotifyConfig.Channel {
        switch self {
        case .url: .url
        case .mq: .tdmq
        }
    }
}
