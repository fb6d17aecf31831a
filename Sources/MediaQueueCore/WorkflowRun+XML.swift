public import MediaQueueXML

/// A run as stored, as the API shows it (`WorkflowExecution`), and as `WorkflowFinish` announces it.
extension WorkflowRun {
    /// Every field but `version` and `sequence` (kept in columns of their own), as the store keeps it.
    public var storedXML: XMLTree {
        XMLTree("Run", children: [
            XMLTree("RunId", text: id), XMLTree("BucketId", text: bucket), XMLTree("WorkflowId", text: workflowID),
            XMLTree("WorkflowName", text: workflowName), XMLTree("Object", text: object), XMLTree("QueueId", text: queueID.rawValue),
            XMLTree("State", text: state.rawValue), XMLTree("CreateTime", text: String(createTime.milliseconds)),
            XMLTree("UpdateTime", text: String(updateTime.milliseconds)), topology,
        ] + (origin.map { [XMLTree("Origin", text: $0)] } ?? []) + cosHeaders.map(\.xml) + tasks.map { task in
            var children = [XMLTree("Name", text: task.name), XMLTree("Type", text: task.type), XMLTree("State", text: task.state)]
            if let id = task.jobID { children.append(XMLTree("JobId", text: id.rawValue)) }
            for (name, time) in [("CreateTime", task.createTime), ("StartTime", task.startTime), ("EndTime", task.endTime)] {
                if let time { children.append(XMLTree(name, text: String(time.milliseconds))) }
            }
            if !task.code.isEmpty { children.append(XMLTree("Code", text: task.code)) }
            if !task.message.isEmpty { children.append(XMLTree("Message", text: task.message)) }
            if let id = task.templateID { children.append(XMLTree("TemplateId", text: id)) }
            if let name = task.templateName { children.append(XMLTree("TemplateName", text: name)) }
            return XMLTree("Task", children: children)
        })
    }

    public init(stored: XMLTree, version: Int, sequence: Int64) throws(CIError) {
        func time(_ text: String?) -> Timestamp? { text.flatMap(Int64.init).map(Timestamp.init(milliseconds:)) }
        guard let id = stored.text("RunId"), let state = stored.text("State").flatMap(State.init(rawValue:)),
              let created = time(stored.text("CreateTime")), let topology = stored["Topology"]
        else { throw CIError(.internalError, "a stored workflow run cannot be read") }
        self.id = id
        bucket = stored.text("BucketId") ?? ""
        workflowID = stored.text("WorkflowId") ?? ""
        workflowName = stored.text("WorkflowName") ?? ""
        object = stored.text("Object") ?? ""
        queueID = QueueID(rawValue: stored.text("QueueId") ?? "")
        self.state = state
        createTime = created
        updateTime = time(stored.text("UpdateTime")) ?? created
        self.topology = topology
        origin = stored.text("Origin")
        cosHeaders = CosHeader.all(in: stored)
        tasks = stored.all("Task").map { element in
            var task = Task(name: element.text("Name") ?? "", type: element.text("Type") ?? "")
            task.state = element.text("State") ?? Task.waiting
            task.jobID = element.text("JobId").map(JobID.init(rawValue:))
            task.createTime = time(element.text("CreateTime"))
            task.startTime = time(element.text("StartTime"))
            task.endTime = time(element.text("EndTime"))
            task.code = element.text("Code") ?? ""
            task.message = element.text("Message") ?? ""
            task.templateID = element.text("TemplateId")
            task.templateName = element.text("TemplateName")
            return task
        }
        self.version = version
        self.sequence = sequence
    }

    /// `<WorkflowExecution>` for `GET /workflowexecution/<RunId>` (with the topology) and, as
    /// `callback`, for `WorkflowFinish`, as CI's workflow callbacks write it: times with a space,
    /// the run's `State` `Success` or `Failed` only (a cancelled run is `Failed`), and only the
    /// tasks that ran or failed (not those its end left `Waiting`).
    public func execution(_ formatting: CIFormatting, topology includesTopology: Bool, callback: Bool = false) -> XMLTree {
        func format(_ time: Timestamp?) -> String {
            let text = formatting.times.format(time)
            return callback ? text.replacingFirst("T", with: " ") : text
        }
        let shownState = callback && state == .cancel ? State.failed : state
        var children = [
            XMLTree("RunId", text: id), XMLTree("WorkflowId", text: workflowID), XMLTree("WorkflowName", text: workflowName),
            XMLTree("State", text: shownState.rawValue), XMLTree("BucketId", text: bucket), XMLTree("Object", text: object),
            XMLTree("CreateTime", text: format(createTime)),
        ]
        if state != .running { children.append(XMLTree("EndTime", text: format(updateTime))) }
        children += cosHeaders.map(\.xml)
        if includesTopology { children.append(topology) }
        let shownTasks = callback ? tasks.filter { $0.state != Task.waiting } : tasks
        children += shownTasks.map { task in
            var fields = [
                XMLTree("Type", text: task.type), XMLTree("CreateTime", text: format(task.createTime)),
                XMLTree("StartTime", text: format(task.startTime)), XMLTree("EndTime", text: format(task.endTime)),
                XMLTree("State", text: task.state), XMLTree("JobId", text: task.jobID?.rawValue ?? ""), XMLTree("Name", text: task.name),
            ]
            if let id = task.templateID { fields.append(XMLTree("TemplateId", text: id)) }
            if let name = task.templateName { fields.append(XMLTree("TemplateName", text: name)) }
            if !task.code.isEmpty { fields.append(XMLTree("Code", text: task.code)) }
            if !task.message.isEmpty { fields.append(XMLTree("Message", text: task.message)) }
            return XMLTree("Tasks", children: fields)
        }
        return XMLTree("WorkflowExecution", children: children)
    }

    /// A `<WorkflowExecutionList>` entry of `GET /workflowexecution`. Its time is `CreateTime` in
    /// CI's documentation and `CreationTime` in the Go SDK's struct (and an older page): both.
    public func listEntry(_ formatting: CIFormatting) -> XMLTree {
        let created = formatting.times.format(createTime)
        return XMLTree("WorkflowExecutionList", children: [
            XMLTree("RunId", text: id), XMLTree("WorkflowId", text: workflowID), XMLTree("State", text: state.rawValue),
            XMLTree("CreateTime", text: created), XMLTree("CreationTime", text: created), XMLTree("Object", text: object),
        ])
    }
}

extension CallbackBody {
    /// `<Response><EventName>WorkflowFinish</EventName><WorkflowExecution>…</WorkflowExecution></Response>`,
    /// or its JSON form without the `Response` wrapper, `Tasks` and `CosHeaders` always arrays
    /// (spec §5.4).
    public static func workflowFinish(_ run: WorkflowRun, format: NotifyConfig.Format, formatting: CIFormatting) -> CallbackBody {
        let document = XMLTree("Response", children: [
            XMLTree("EventName", text: NotifyConfig.Event.workflowFinish.rawValue),
            run.execution(formatting, topology: false, callback: true),
        ])
        switch format {
        case .xml: return CallbackBody(bytes: document.xmlBytes(), contentType: "application/xml")
        case .json: return CallbackBody(bytes: Array(JSONTree.serializeChildren(of: document).utf8), contentType: "application/json")
        }
    }
}

extension String {
    fileprivate func replacingFirst(_ target: Character, with replacement: String) -> String {
        guard let found = firstIndex(of: target) else { return self }
        return String(self[..<found]) + replacement + String(self[self.index(after: found)...])
    }
}
