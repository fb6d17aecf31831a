public import MediaQueueXML

/// A queue's callback rule (CI's `NotifyConfig`).
public struct NotifyConfig: Sendable, Hashable {
    public enum Format: String, Sendable, Hashable { case xml = "XML", json = "JSON" }
    public enum Channel: String, Sendable, Hashable { case url = "Url", tdmq = "TDMQ" }
    public enum MqMode: String, Sendable, Hashable { case queue = "Queue", topic = "Topic" }
    public enum Event: String, Sendable, Hashable, CaseIterable {
        case taskFinish = "TaskFinish", workflowFinish = "WorkflowFinish"
        /// A running job's progress (beyond CI): best effort, never stored or retried.
        case taskProgress = "TaskProgress"

        /// Parses a comma-separated list as CI's `Event` field has it, in any letter case, with
        /// the legacy names `TransCodingFinish` and `WorkflowFinishh`; `field` names it in errors.
        public static func parseList(_ list: String, field: String) throws(CIError) -> [Event] {
            var events: [Event] = []
            for name in list.split(separator: ",").map({ String($0).trimmed }) where !name.isEmpty {
                let event: Event
                switch name.lowercased() {
                case "taskfinish", "transcodingfinish": event = .taskFinish
                case "workflowfinish", "workflowfinishh": event = .workflowFinish
                case "taskprogress": event = .taskProgress
                default: throw CIError.invalid(field, "unknown event '\(name)'")
                }
                if !events.contains(event) { events.append(event) }
            }
            return events
        }
    }

    public var isOn: Bool
    public var events: [Event]
    public var resultFormat: Format
    public var type: Channel?
    public var url: String
    public var mqMode: MqMode?
    public var mqName: String
    public var mqRegion: String

    public init(
        isOn: Bool = false, events: [Event] = [], resultFormat: Format = .xml, type: Channel? = nil,
        url: String = "", mqMode: MqMode? = nil, mqName: String = "", mqRegion: String = ""
    ) {
        self.isOn = isOn
        self.events = events
        self.resultFormat = resultFormat
        self.type = type
        self.url = url
        self.mqMode = mqMode
        self.mqName = mqName
        self.mqRegion = mqRegion
    }

    /// A rule that publishes every finished job to topic exchange `exchange`.
    public static func topic(_ exchange: String, region: String = "sh", format: Format = .xml) -> NotifyConfig {
        NotifyConfig(isOn: true, events: [.taskFinish], resultFormat: format, type: .tdmq, mqMode: .topic, mqName: exchange, mqRegion: region)
    }

    /// Reads a `<NotifyConfig>` element; `Type` and the enumerations are accepted in any case,
    /// and the legacy event names `TransCodingFinish` and `WorkflowFinishh` are understood.
    public init(xml: XMLTree) throws(CIError) {
        self.init()
        let prefix = "NotifyConfig"
        if let state = xml.text("State"), !state.isEmpty {
            switch state.lowercased() {
            case "on": isOn = true
            case "off": isOn = false
            default: throw CIError.invalid("\(prefix).State", "must be On or Off, not '\(state)'")
            }
        }
        if let list = xml.text("Event"), !list.isEmpty {
            events = try Event.parseList(list, field: "\(prefix).Event")
        }
        if let format = xml.text("ResultFormat"), !format.isEmpty {
            guard let value = Format.allValues.first(where: { $0.rawValue.caseInsensitiveCompare(format) }) else {
                throw CIError.invalid("\(prefix).ResultFormat", "must be XML or JSON, not '\(format)'")
            }
            resultFormat = value
        }
        if let type = xml.text("Type"), !type.isEmpty {
            switch type.lowercased() {
            case "url": self.type = .url
            case "tdmq": self.type = .tdmq
            default: throw CIError.invalid("\(prefix).Type", "must be Url or TDMQ, not '\(type)'")
            }
        }
        url = xml.text("Url")?.trimmed ?? ""
        if let mode = xml.text("MqMode"), !mode.isEmpty {
            switch mode.lowercased() {
            case "queue": mqMode = .queue
            case "topic": mqMode = .topic
            default: throw CIError.invalid("\(prefix).MqMode", "must be Queue or Topic, not '\(mode)'")
            }
        }
        mqName = xml.text("MqName")?.trimmed ?? ""
        mqRegion = xml.text("MqRegion")?.trimmed ?? ""
        try validate()
    }

    /// Checks that an enabled rule says where to deliver.
    public func validate() throws(CIError) {
        guard isOn else { return }
        if events.isEmpty { throw CIError.invalid("NotifyConfig.Event", "is required when State is On") }
        switch type {
        case nil:
            throw CIError.invalid("NotifyConfig.Type", "is required when State is On")
        case .url:
            if url.isEmpty { throw CIError.invalid("NotifyConfig.Url", "is required when Type is Url") }
            if !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
                throw CIError.invalid("NotifyConfig.Url", "must be an http or https URL")
            }
        case .tdmq:
            if mqName.isEmpty { throw CIError.invalid("NotifyConfig.MqName", "is required when Type is TDMQ") }
            if mqMode == nil { throw CIError.invalid("NotifyConfig.MqMode", "is required when Type is TDMQ") }
        }
    }

    /// The most bytes of a queue or exchange name (an AMQP short string).
    public static let maxMqNameBytes = 255

    /// Checks that `name` can name a queue or exchange: a longer name or one with control
    /// characters could never be declared or published to, and every delivery to it would fail.
    /// For new rules and submissions only: what was stored before this check must still load.
    public static func checkMqName(_ name: String, element: String) throws(CIError) {
        if name.utf8.count > maxMqNameBytes { throw CIError.invalid(element, "must be at most \(maxMqNameBytes) bytes") }
        if name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw CIError.invalid(element, "must not contain control characters")
        }
    }

    /// The `<NotifyConfig>` element as CI prints it.
    public var xml: XMLTree {
        XMLTree("NotifyConfig", children: [
            XMLTree("Url", text: url),
            XMLTree("Event", text: events.map(\.rawValue).joined(separator: ",")),
            XMLTree("Type", text: type?.rawValue ?? ""),
            XMLTree("State", text: isOn ? "On" : "Off"),
            XMLTree("ResultFormat", text: resultFormat.rawValue),
            XMLTree("MqMode", text: mqMode?.rawValue ?? ""),
            XMLTree("MqName", text: mqName),
            XMLTree("MqRegion", text: mqRegion),
        ])
    }
}

extension NotifyConfig.Format {
    static let allValues: [Self] = [.xml, .json]
}

extension String {
    /// Without leading and trailing white space.
    package var trimmed: String {
        var view = Substring(self)
        while let first = view.first, first.isWhitespace { view = view.dropFirst() }
        while let last = view.last, last.isWhitespace { view = view.dropLast() }
        return String(view)
    }
}
