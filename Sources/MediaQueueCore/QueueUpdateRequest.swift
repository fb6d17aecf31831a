public import MediaQueueXML

/// A parsed UpdateMediaQueue `<Request>` (`PUT /queue/<id>`). CI requires every field; MediaQueue
/// changes only the fields that are present.
public struct QueueUpdateRequest: Sendable, Hashable {
    public var name: String?
    public var state: MediaQueue.State?
    public var notifyConfig: NotifyConfig?

    public init(name: String? = nil, state: MediaQueue.State? = nil, notifyConfig: NotifyConfig? = nil) {
        self.name = name
        self.state = state
        self.notifyConfig = notifyConfig
    }

    public static func parse(_ body: [UInt8]) throws(CIError) -> QueueUpdateRequest {
        let tree: XMLTree
        do {
            tree = try XMLDocumentParser.parse(body)
        } catch {
            throw CIError(.invalidArgument, "the body is not an UpdateMediaQueue request: \(error)", element: "Request")
        }
        return try parse(tree)
    }

    public static func parse(_ request: XMLTree) throws(CIError) -> QueueUpdateRequest {
        guard request.name == "Request" else { throw CIError.invalid(request.name, "the root element must be Request") }
        var update = QueueUpdateRequest()
        if let name = request.text("Name")?.trimmed, !name.isEmpty {
            try MediaQueue.validateName(name)
            update.name = name
        }
        if let state = request.text("State")?.trimmed, !state.isEmpty {
            guard let value = MediaQueue.State(anyCase: state) else {
                throw CIError.invalid("State", "must be Active or Paused, not '\(state)'")
            }
            update.state = value
        }
        if let config = request["NotifyConfig"] {
            update.notifyConfig = try NotifyConfig(xml: config)
        }
        return update
    }
}

extension MediaQueue {
    /// Applies CI's UpdateMediaQueue request (the API's `PUT /queue/<id>`, the CLI's `queue
    /// update` and `queue create --request`): its name, state and callback rule, each when
    /// given; `checkRule` vets the rule for the queue's bucket first (the configuration's SSRF
    /// guard, its queue names).
    public mutating func apply(_ update: QueueUpdateRequest, checkRule: (NotifyConfig, _ bucket: String) throws(CIError) -> Void) throws(CIError) {
        // Every node finds a bucket's default queue by its name, for submissions without a
        // QueueId: renamed, the next node to look for it would make a second `queue-1`.
        if let name = update.name, name != self.name, self.name == MediaQueue.defaultName {
            throw CIError(
                .invalidArgument, "Name: the bucket's default queue keeps the name \(MediaQueue.defaultName) (submissions without a QueueId go to it by that name)",
                element: "Name"
            )
        }
        // Only a changed rule: one read back and sent again unchanged (CI's UpdateMediaQueue
        // carries the rule with every change) passed when it was set, or is the configured default.
        if let rule = update.notifyConfig, rule != notifyConfig { try checkRule(rule, bucket) }
        if let name = update.name { self.name = name }
        if let state = update.state { self.state = state }
        if let rule = update.notifyConfig { notifyConfig = rule }
    }
}

extension MediaQueue.State {
    /// `Active` or `Paused`, in any letter case (query parameters, command-line options).
    public init?(anyCase text: some StringProtocol) {
        self.init(rawValue: text.prefix(1).uppercased() + text.dropFirst().lowercased())
    }
}

extension JobStore {
    /// The jobs a repeated submission created the first time (by its idempotency key), as they
    /// are now; ids whose job is gone are left out.
    public func jobs(ids: [JobID]) async throws -> [Job] {
        var jobs: [Job] = []
        for id in ids { if let job = try await job(id: id) { jobs.append(job) } }
        return jobs
    }
}
