public import MediaQueueXML

/// A workflow's `Topology`, checked: `Dependencies` (each node's successors, comma-separated,
/// `End` closing the graph) and `Nodes` (the Start node and the work nodes), as CI writes them.
public struct WorkflowTopology: Sendable, Hashable {
    /// What starts a run: objects under `objectPrefix` that `extFilter` lets in, run as jobs in
    /// `queueID` (nil: the bucket's `queue-1`); `notifyConfig` announces the run (and its tasks).
    public struct Start: Sendable, Hashable {
        public var queueID: QueueID?
        public var objectPrefix: String
        public var extFilter: ExtFilter
        public var notifyConfig: NotifyConfig?
    }

    /// One job of a run: `type` is the job's `Tag`; `operation` its `Operation` (a `TemplateId`
    /// or inline parameters, and `Output`).
    public struct Node: Sendable, Hashable {
        public var name: String
        public var type: String
        public var operation: XMLTree
    }

    public static let startName = "Start"
    public static let endName = "End"
    /// The most work nodes a workflow may have: every upload to its bucket, and every step of a
    /// run, reads the graph again.
    public static let maxNodes = 100
    /// The job types a work node may have.
    public static let nodeTypes: Set<String> = ["Transcode", "Snapshot", "Animation", "Concat", "Segment", "MediaInfo"]

    public var start: Start
    /// The work nodes, each after every node it depends on.
    public var nodes: [Node]
    /// The nodes each work node waits for (`Start` for the first ones).
    public var dependencies: [String: [String]]
    /// The `<Topology>` as given.
    public var xml: XMLTree

    public func node(_ name: String) -> Node? { nodes.first { $0.name == name } }

    /// The work nodes that follow only `Start`: a run's first jobs.
    public var firstNodes: [Node] { nodes.filter { dependencies[$0.name] == [Self.startName] } }

    /// Checks `topology`: a Start node, work nodes of known types with an `Operation`, and edges
    /// that form one acyclic graph in which every work node is reached from Start and reaches
    /// End. Errors name the node.
    public static func parse(_ topology: XMLTree) throws(CIError) -> WorkflowTopology {
        guard let dependencyList = topology["Dependencies"], let nodeList = topology["Nodes"] else {
            throw CIError.invalid("Topology", "needs Dependencies and Nodes")
        }
        var successors: [String: [String]] = [:]
        for edge in dependencyList.children {
            let targets = edge.text.split(separator: ",").map { String($0).trimmed }.filter { !$0.isEmpty }
            guard !targets.isEmpty else { throw CIError.invalid("Topology.Dependencies.\(edge.name)", "names no following node") }
            guard successors[edge.name] == nil else { throw CIError.invalid("Topology.Dependencies.\(edge.name)", "is listed twice") }
            successors[edge.name] = targets
        }
        guard let startElement = nodeList[startName], startElement.text("Type")?.trimmed == startName else {
            throw CIError.invalid("Topology.Nodes.Start", "is required, with Type Start")
        }
        let start = try parseStart(startElement)
        var nodes: [String: Node] = [:]
        for element in nodeList.children where element.name != startName && element.name != endName {
            let path = "Topology.Nodes.\(element.name)"
            guard nodes[element.name] == nil else { throw CIError.invalid(path, "is listed twice") }
            guard let type = element.text("Type")?.trimmed, !type.isEmpty else { throw CIError.invalid("\(path).Type", "is required") }
            guard nodeTypes.contains(type) else {
                throw CIError.invalid("\(path).Type", "'\(type)' is not a node type here (\(nodeTypes.sorted().joined(separator: ", ")))")
            }
            guard let operation = element["Operation"] else { throw CIError.invalid("\(path).Operation", "is required") }
            nodes[element.name] = Node(name: element.name, type: type, operation: operation)
        }
        guard !nodes.isEmpty else { throw CIError.invalid("Topology.Nodes", "has no work node") }
        guard nodes.count <= maxNodes else { throw CIError.invalid("Topology.Nodes", "has \(nodes.count) work nodes; at most \(maxNodes)") }

        var dependencies: [String: [String]] = [:]
        for (from, targets) in successors {
            guard from == startName || nodes[from] != nil else {
                throw CIError.invalid("Topology.Dependencies.\(from)", "is not a node of Topology.Nodes")
            }
            for target in targets {
                guard target == endName || nodes[target] != nil else {
                    throw CIError.invalid("Topology.Dependencies.\(from)", "names '\(target)', which is not a node of Topology.Nodes")
                }
                guard target != startName else { throw CIError.invalid("Topology.Dependencies.\(from)", "cannot lead back to Start") }
                if target != endName { dependencies[target, default: []].append(from) }
            }
        }
        for name in nodes.keys.sorted() {
            guard dependencies[name] != nil else { throw CIError.invalid("Topology.Nodes.\(name)", "is not reached from Start") }
            guard successors[name] != nil else { throw CIError.invalid("Topology.Dependencies.\(name)", "is missing: the node must lead to End or another node") }
        }
        guard successors[startName] != nil else { throw CIError.invalid("Topology.Dependencies.Start", "is required") }

        // Kahn's order; what is left over lies on a cycle.
        var waiting = dependencies.mapValues { Set($0) }
        var ordered: [Node] = []
        var ready = [startName]
        while let done = ready.popLast() {
            for target in successors[done] ?? [] where target != endName {
                waiting[target]?.remove(done)
                if waiting[target]?.isEmpty == true {
                    waiting[target] = nil
                    ready.insert(target, at: 0)
                    ordered.append(nodes[target]!)
                }
            }
        }
        if let cycle = waiting.keys.sorted().first {
            throw CIError.invalid("Topology.Dependencies.\(cycle)", "is on a cycle: a workflow's graph must lead from Start to End without loops")
        }
        for node in ordered where !reachesEnd(node.name, successors) {
            throw CIError.invalid("Topology.Nodes.\(node.name)", "does not lead to End")
        }
        return WorkflowTopology(start: start, nodes: ordered, dependencies: dependencies.mapValues { $0.sorted() }, xml: topology)
    }

    private static func reachesEnd(_ name: String, _ successors: [String: [String]]) -> Bool {
        var seen: Set<String> = []
        var next = [name]
        while let current = next.popLast() {
            for target in successors[current] ?? [] {
                if target == endName { return true }
                if seen.insert(target).inserted { next.append(target) }
            }
        }
        return false
    }

    private static func parseStart(_ element: XMLTree) throws(CIError) -> Start {
        let input = element["Input"] ?? XMLTree("Input")
        let queue = input.text("QueueId")?.trimmed ?? ""
        var notify: NotifyConfig?
        if let config = input["NotifyConfig"], !config.children.isEmpty {
            var parsed: NotifyConfig
            do {
                parsed = try NotifyConfig(xml: config)
            } catch {
                throw CIError(error.code, "Topology.Nodes.Start.Input.\(error.message)", element: error.element.map { "Topology.Nodes.Start.Input.\($0)" })
            }
            // CI's workflow NotifyConfig has no State: one that names a destination is on.
            if config.text("State") == nil, parsed.type != nil { parsed.isOn = true }
            if parsed.isOn, parsed.events.isEmpty { parsed.events = [.workflowFinish] }
            notify = parsed
        }
        return Start(
            queueID: queue.isEmpty ? nil : QueueID(rawValue: queue), objectPrefix: input.text("ObjectPrefix")?.trimmed ?? "",
            extFilter: try ExtFilter(input["ExtFilter"]), notifyConfig: notify
        )
    }
}

/// Which objects start a workflow, by extension (CI's `ExtFilter`): when `State` is On, only
/// files of the kinds chosen (`Video`, `Audio`, `Image`, `ContentType` for all three, `AllFile`)
/// or with one of `CustomExts` (with `Custom`); when Off or absent, every file.
public struct ExtFilter: Sendable, Hashable {
    public var isOn = false
    public var allFiles = false
    public var extensions: Set<String> = []

    static let video: Set<String> = ["mp4", "mov", "mkv", "avi", "flv", "ts", "m3u8", "webm", "wmv", "mpg", "mpeg", "3gp", "m4v", "f4v", "rmvb", "rm", "mxf", "vob"]
    static let audio: Set<String> = ["mp3", "aac", "wav", "flac", "m4a", "ogg", "wma", "amr", "opus", "ac3", "ape"]
    static let image: Set<String> = ["jpg", "jpeg", "png", "gif", "webp", "bmp", "tif", "tiff", "heic", "heif", "avif"]

    public init() {}

    init(_ element: XMLTree?) throws(CIError) {
        guard let element else { return }
        func flag(_ name: String) -> Bool { element.text(name)?.trimmed.lowercased() == "true" }
        switch element.text("State")?.trimmed.lowercased() {
        case nil, "", "off": isOn = false
        case "on": isOn = true
        case let other?: throw CIError.invalid("Topology.Nodes.Start.Input.ExtFilter.State", "must be On or Off, not '\(other)'")
        }
        allFiles = flag("AllFile")
        if flag("Video") || flag("ContentType") { extensions.formUnion(Self.video) }
        if flag("Audio") || flag("ContentType") { extensions.formUnion(Self.audio) }
        if flag("Image") || flag("ContentType") { extensions.formUnion(Self.image) }
        if flag("Custom") {
            let custom = (element.text("CustomExts") ?? "").split { "/,; ".contains($0) }.map { $0.lowercased().trimmingPrefix(".") }
            extensions.formUnion(custom.map(String.init))
        }
        if isOn, !allFiles, extensions.isEmpty {
            throw CIError.invalid("Topology.Nodes.Start.Input.ExtFilter", "is On but lets no file in (set AllFile, Video, Audio, Image or Custom with CustomExts)")
        }
    }

    public func admits(_ key: String) -> Bool {
        guard isOn, !allFiles else { return true }
        let name = ObjectKey.lastSegment(of: key)
        guard let dot = name.lastIndex(of: ".") else { return false }
        return extensions.contains(name[name.index(after: dot)...].lowercased())
    }
}

extension WorkflowTopology.Start {
    /// Whether an object arriving as `key` starts a run.
    public func admits(_ key: String) -> Bool {
        key.hasPrefix(objectPrefix) && extFilter.admits(key)
    }
}
