public import MediaQueueXML

/// How MediaQueue presents itself in CI documents: the time zone of printed times and the region
/// name it reports for buckets.
public struct CIFormatting: Sendable, Hashable {
    public var times: CITimeFormat
    public var region: String
    /// Names of the templates `Operation.TemplateId` may name, by id: `JobsDetail` echoes the
    /// name as `TemplateName` (the templates themselves belong to the workers).
    public var templateNames: [String: String]

    public init(times: CITimeFormat = CITimeFormat(), region: String = "ap-local", templateNames: [String: String] = [:]) {
        self.times = times
        self.region = region
        self.templateNames = templateNames
    }
}

extension Job {
    /// The job as a `JobsDetail` element (spec §4.5), shared by create, describe, list and callbacks.
    public func jobsDetail(_ formatting: CIFormatting) -> XMLTree {
        var inputElement = XMLTree("Input")
        inputElement.children.reserveCapacity(input.children.count + 2)
        inputElement.children.append(XMLTree("BucketId", text: bucket))
        // A workflow's node job carries its upload's headers, after Region as CI writes them.
        var cosHeaders: [XMLTree] = []
        for child in input.children where child.name != "BucketId" && child.name != "Region" {
            if child.name == "CosHeaders" { cosHeaders.append(child) } else { inputElement.children.append(child) }
        }
        inputElement.children.append(XMLTree("Region", text: formatting.region))
        inputElement.children += cosHeaders

        var operationElement = operation
        operationElement.name = "Operation"
        if let index = operation.children.firstIndex(where: { $0.name == "TemplateId" }), operation["TemplateName"] == nil,
           let name = formatting.templateNames[operation.children[index].text.trimmed] {
            operationElement.children.insert(XMLTree("TemplateName", text: name), at: index + 1)
        }
        if let mediaInfo { operationElement.set(mediaInfo) }
        if let mediaResult { operationElement.set(mediaResult) }
        // A workflow's job keeps its Workflow block in its stored Operation; CI shows it beside.
        let workflow = operationElement["Workflow"]
        operationElement.remove("Workflow")

        var detail = XMLTree("JobsDetail", children: [
            XMLTree("Code", text: code),
            XMLTree("Message", text: message),
            XMLTree("JobId", text: id.rawValue),
            XMLTree("State", text: state.rawValue),
            XMLTree("Progress", text: String(progress)),
            XMLTree("CreationTime", text: formatting.times.format(creationTime)),
            XMLTree("StartTime", text: formatting.times.format(startTime)),
            XMLTree("EndTime", text: formatting.times.format(endTime)),
            XMLTree("QueueId", text: queueID.rawValue),
            XMLTree("Tag", text: tag),
            inputElement,
            operationElement,
        ])
        if let workflow { detail.children.append(workflow) }
        return detail
    }
}

/// The body of a `TaskFinish` callback (spec §5.2 and §5.3).
public struct CallbackBody: Sendable, Hashable {
    public var bytes: [UInt8]
    public var contentType: String

    public init(bytes: [UInt8], contentType: String) {
        self.bytes = bytes
        self.contentType = contentType
    }

    /// `<Response><EventName>TaskFinish</EventName><JobsDetail>…</JobsDetail></Response>`, or its
    /// JSON form without the `Response` wrapper.
    public static func taskFinish(_ job: Job, format: NotifyConfig.Format, formatting: CIFormatting) -> CallbackBody {
        jobEvent(.taskFinish, job, format: format, formatting: formatting)
    }

    /// The body of a job's event (`TaskFinish`, `TaskProgress`): its name and the job's
    /// `JobsDetail` as it is now.
    public static func jobEvent(_ event: NotifyConfig.Event, _ job: Job, format: NotifyConfig.Format, formatting: CIFormatting) -> CallbackBody {
        let document = XMLTree("Response", children: [
            XMLTree("EventName", text: event.rawValue),
            job.jobsDetail(formatting),
        ])
        switch format {
        case .xml:
            return CallbackBody(bytes: document.xmlBytes(), contentType: "application/xml")
        case .json:
            return CallbackBody(bytes: Array(JSONTree.serializeChildren(of: document).utf8), contentType: "application/json")
        }
    }
}

/// CI's `<Error>` body.
extension CIError {
    public func xml(requestID: String, resource: String = "") -> XMLTree {
        XMLTree("Error", children: [
            XMLTree("Code", text: code.rawValue),
            XMLTree("Message", text: message),
            XMLTree("Resource", text: resource),
            XMLTree("RequestId", text: requestID),
            XMLTree("TraceId", text: requestID),
        ])
    }
}
