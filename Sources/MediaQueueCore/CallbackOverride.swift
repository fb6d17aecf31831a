public import MediaQueueXML

/// A job's own callback settings (`CallBack`, `CallBackFormat`, `CallBackType`,
/// `CallBackMqConfig`, and beyond CI `CallBackEvent`), which take precedence over the queue's rule.
public struct CallbackOverride: Sendable, Hashable {
    /// A URL, or `no` to silence the queue's rule for this job.
    public var url: String?
    public var format: NotifyConfig.Format?
    public var type: NotifyConfig.Channel?
    public var mq: MqTarget?
    /// The events this job announces instead of its rule's (or, with its own `CallBack`, instead
    /// of `TaskFinish` alone): `TaskFinish`, `TaskProgress` or both.
    public var events: [NotifyConfig.Event]?

    public struct MqTarget: Sendable, Hashable {
        public var mode: NotifyConfig.MqMode
        public var name: String
        public var region: String
        public init(mode: NotifyConfig.MqMode, name: String, region: String) {
            self.mode = mode
            self.name = name
            self.region = region
        }
    }

    public init(
        url: String? = nil, format: NotifyConfig.Format? = nil, type: NotifyConfig.Channel? = nil, mq: MqTarget? = nil,
        events: [NotifyConfig.Event]? = nil
    ) {
        self.events = events
        self.url = url
        self.format = format
        self.type = type
        self.mq = mq
    }

    /// Whether the job said `CallBack=no`.
    public var isSilenced: Bool { url?.lowercased() == "no" }

    /// Reads the callback fields from the top level of a CreateMediaJobs `<Request>`.
    public init(request: XMLTree) throws(CIError) {
        self.init()
        if let value = request.text("CallBack")?.trimmed, !value.isEmpty {
            if value.lowercased() != "no", !(value.hasPrefix("http://") || value.hasPrefix("https://")) {
                throw CIError.invalid("CallBack", "must be an http or https URL, or 'no'")
            }
            url = value
        }
        if let value = request.text("CallBackFormat")?.trimmed, !value.isEmpty {
            switch value.lowercased() {
            case "xml": format = .xml
            case "json": format = .json
            default: throw CIError.invalid("CallBackFormat", "must be XML or JSON, not '\(value)'")
            }
        }
        if let value = request.text("CallBackType")?.trimmed, !value.isEmpty {
            switch value.lowercased() {
            case "url": type = .url
            case "tdmq": type = .tdmq
            default: throw CIError.invalid("CallBackType", "must be Url or TDMQ, not '\(value)'")
            }
        }
        if let config = request["CallBackMqConfig"] {
            let modeText = config.text("MqMode")?.trimmed ?? ""
            let mode: NotifyConfig.MqMode
            switch modeText.lowercased() {
            case "", "queue": mode = .queue
            case "topic": mode = .topic
            default: throw CIError.invalid("CallBackMqConfig.MqMode", "must be Queue or Topic, not '\(modeText)'")
            }
            guard let name = config.text("MqName")?.trimmed, !name.isEmpty else {
                throw CIError.invalid("CallBackMqConfig.MqName", "is required")
            }
            guard let region = config.text("MqRegion")?.trimmed, !region.isEmpty else {
                throw CIError.invalid("CallBackMqConfig.MqRegion", "is required")
            }
            mq = MqTarget(mode: mode, name: name, region: region)
        }
        if let list = request.text("CallBackEvent")?.trimmed, !list.isEmpty {
            let listed = try NotifyConfig.Event.parseList(list, field: "CallBackEvent")
            if let other = listed.first(where: { $0 != .taskFinish && $0 != .taskProgress }) {
                throw CIError.invalid("CallBackEvent", "a job announces TaskFinish and TaskProgress only, not \(other.rawValue)")
            }
            events = listed
        }
        if type == .tdmq, mq == nil {
            throw CIError.invalid("CallBackMqConfig", "is required when CallBackType is TDMQ")
        }
    }
}

extension CallbackOverride {
    /// The callback fields as the top level of a `<Request>`: what `init(request:)` reads back
    /// (the stores keep a job's callback settings in this form).
    public var request: XMLTree {
        var children: [XMLTree] = []
        if let url { children.append(XMLTree("CallBack", text: url)) }
        if let format { children.append(XMLTree("CallBackFormat", text: format.rawValue)) }
        if let type { children.append(XMLTree("CallBackType", text: type.rawValue)) }
        if let events { children.append(XMLTree("CallBackEvent", text: events.map(\.rawValue).joined(separator: ","))) }
        if let mq {
            children.append(XMLTree("CallBackMqConfig", children: [
                XMLTree("MqMode", text: mq.mode.rawValue), XMLTree("MqName", text: mq.name), XMLTree("MqRegion", text: mq.region),
            ]))
        }
        return XMLTree("Request", children: children)
    }
}
