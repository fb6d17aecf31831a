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

    /// Where `event` of a job goes, or nil when nothing is to be sent (rule off, event not
    /// subscribed, or `CallBack=no`). A job's own destination announces `TaskFinish` unless its
    /// `CallBackEvent` says otherwise; the rule's announces the rule's events, or the job's.
    public static func resolve(rule: NotifyConfig, override: CallbackOverride, event: NotifyConfig.Event = .taskFinish) -> CallbackTarget? {
        if override.isSilenced { return nil }
        // A job's own destination takes the rule's format while the rule announces finished jobs.
        var format = override.format ?? (rule.isOn && rule.events.contains(.taskFinish) ? rule.resultFormat : .xml)
        let destination: Destination
        let events: [NotifyConfig.Event]
        if override.type == .tdmq, let mq = override.mq {
            destination = .mq(mode: mq.mode, name: mq.name, region: mq.region)
            events = override.events ?? [.taskFinish]
        } else if let url = override.url {
            destination = .url(url)
            events = override.events ?? [.taskFinish]
        } else {
            guard rule.isOn else { return nil }
            switch rule.type {
            case .url?: destination = .url(rule.url)
            case .tdmq?: destination = .mq(mode: rule.mqMode ?? .queue, name: rule.mqName, region: rule.mqRegion)
            case nil: return nil
            }
            events = override.events ?? rule.events
            format = override.format ?? rule.resultFormat
        }
        guard events.contains(event) else { return nil }
        return CallbackTarget(destination: destination, format: format)
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
