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
            guard name.count <= 128, name.allSatisfy({ $0.isLetter || $0.isNumber || "_-*".contains($0) }) else {
                throw CIError.invalid("Name", "may hold letters, digits, '_', '-' and '*', at most 128 characters")
            }
            update.name = name
        }
        if let state = request.text("State")?.trimmed, !state.isEmpty {
            switch state.lowercased() {
            case "active": update.state = .active
            case "paused": update.state = .paused
            default: throw CIError.invalid("State", "must be Active or Paused, not '\(state)'")
            }
        }
        if let config = request["NotifyConfig"] {
            update.notifyConfig = try NotifyConfig(xml: config)
        }
        return update
    }
}
