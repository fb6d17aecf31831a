public import MediaQueueXML

/// A parsed CreateMediaJobs `<Request>`: one or several operations with their shared input,
/// queue and callback settings.
public struct CreateMediaJobsRequest: Sendable, Hashable {
    /// One operation of the request; it becomes one job.
    public struct Operation: Sendable, Hashable {
        public var tag: String
        public var input: XMLTree
        /// The `<Operation>` element without `Tag`, with `JobLevel` normalised.
        public var operation: XMLTree
        public var jobLevel: Int

        public init(tag: String, input: XMLTree, operation: XMLTree, jobLevel: Int) {
            self.tag = tag
            self.input = input
            self.operation = operation
            self.jobLevel = jobLevel
        }
    }

    public var queueID: QueueID?
    public var queueType: String?
    public var callback: CallbackOverride
    public var operations: [Operation]

    /// Parses and validates a request body (XML; a JSON object of the same shape is accepted too)
    /// within `limits`.
    ///
    /// `validate` checks one operation for its tag (the workers know their own fields) and throws
    /// for a tag nothing runs. Every error names the element it is about.
    public static func parse(
        _ body: [UInt8], limits: SubmissionLimits = SubmissionLimits(),
        validate: (Operation) throws(CIError) -> Void
    ) throws(CIError) -> CreateMediaJobsRequest {
        try limits.checkBodySize(body.count)
        let tree: XMLTree
        if let first = body.first(where: { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }), first == UInt8(ascii: "{") {
            tree = try JSONTree.parse(body, rootName: "Request")
        } else {
            do {
                tree = try XMLDocumentParser.parse(body)
            } catch {
                throw CIError(.invalidArgument, "the body is not a CreateMediaJobs request: \(error)", element: "Request")
            }
        }
        return try parse(tree, limits: limits, validate: validate)
    }

    /// Validates an already-parsed `<Request>` element.
    public static func parse(
        _ request: XMLTree, limits: SubmissionLimits = SubmissionLimits(),
        validate: (Operation) throws(CIError) -> Void
    ) throws(CIError) -> CreateMediaJobsRequest {
        guard request.name == "Request" else {
            throw CIError.invalid(request.name, "the root element must be Request")
        }
        let topTag = request.text("Tag")?.trimmed
        let operationElements = request.all("Operation")
        if operationElements.isEmpty {
            throw CIError.invalid("Operation", "is required")
        }
        if operationElements.count > limits.maxOperations {
            throw CIError.invalid("Operation", "a request may hold at most \(limits.maxOperations) operations, not \(operationElements.count)")
        }
        var queueID: QueueID?
        if let id = request.text("QueueId")?.trimmed, !id.isEmpty {
            queueID = QueueID(rawValue: id)
        }
        let queueType = request.text("QueueType")?.trimmed
        // CI's accelerated queue: none runs here, and a job meant for it must not run in another
        // queue unnoticed. A named queue wins over the type, as in CI's job listing.
        if queueID == nil, let queueType, !queueType.isEmpty, queueType != "Transcoding" {
            throw CIError.invalid(
                "QueueType",
                queueType == "SpeedTranscoding"
                    ? "this service has no speed-transcoding queue: leave QueueType out, or name a QueueId"
                    : "must be SpeedTranscoding or left out, not '\(queueType)'"
            )
        }
        let callback = try CallbackOverride(request: request)
        let sharedInput = request["Input"]

        var operations: [Operation] = []
        for (index, element) in operationElements.enumerated() {
            let path = operationElements.count > 1 ? "Operation[\(index + 1)]" : "Operation"
            guard let tag = element.text("Tag")?.trimmed ?? topTag, !tag.isEmpty else {
                throw CIError.invalid("Tag", "is required")
            }
            guard let input = element["Input"] ?? sharedInput else {
                throw CIError.invalid("Input", "is required")
            }
            var operation = element
            operation.remove("Tag")
            operation.remove("Input")
            // What the service writes into a job's Operation: a client's would make a plain job
            // pass for a node of any workflow run, or carry a result it never had.
            for reserved in ["Workflow", "MediaResult", "MediaInfo"] where operation[reserved] != nil {
                throw CIError.invalid("\(path).\(reserved)", "is written by the service, not by a submission")
            }
            let level = try jobLevel(operation, path: path)
            operation.set(XMLTree("JobLevel", text: String(level)))
            if let userData = operation.text("UserData"), userData.utf8.count > limits.maxUserDataBytes {
                throw CIError.invalid("\(path).UserData", "is longer than \(limits.maxUserDataBytes) bytes")
            }
            try checkObjectKeys(input, path: element["Input"] == nil ? "Input" : "\(path).Input", limit: limits.maxObjectKeyBytes)
            try checkObjectKeys(operation, path: path, limit: limits.maxObjectKeyBytes)
            let parsed = Operation(tag: tag, input: input, operation: operation, jobLevel: level)
            try validate(parsed)
            operations.append(parsed)
        }
        return CreateMediaJobsRequest(queueID: queueID, queueType: queueType, callback: callback, operations: operations)
    }

    /// Every `Object` below `element` (outputs, fragments, watermarks: each worker reads its own)
    /// within `limit` bytes, so one limit holds whichever worker reads the key.
    private static func checkObjectKeys(_ element: XMLTree, path: String, limit: Int) throws(CIError) {
        for child in element.children {
            let childPath = "\(path).\(child.name)"
            if child.name == "Object", child.text.utf8.count > limit {
                throw CIError.invalid(childPath, "is longer than \(limit) bytes")
            }
            try checkObjectKeys(child, path: childPath, limit: limit)
        }
    }

    static func jobLevel(_ operation: XMLTree, path: String) throws(CIError) -> Int {
        guard let text = operation.text("JobLevel")?.trimmed, !text.isEmpty else { return 0 }
        guard let level = Int(text), (0...2).contains(level) else {
            throw CIError.invalid("\(path).JobLevel", "must be 0, 1 or 2, not '\(text)'")
        }
        return level
    }
}

extension CreateMediaJobsRequest.Operation {
    /// The input of a worker that reads one media file: `Input.Object` in the bucket or
    /// `Input.Url` (http or https), exactly one of them.
    public func requireInput() throws(CIError) -> InputSource {
        try InputSource(input)
    }

    /// `Operation.Output.Object`, required by every worker that writes files.
    public func requireOutputObject() throws(CIError) -> String {
        guard let object = operation.text("Output", "Object")?.trimmed, !object.isEmpty else {
            throw CIError.invalid("Operation.Output.Object", "is required")
        }
        return try Self.key(object, element: "Operation.Output.Object").rawValue
    }

    static func key(_ text: String, element: String) throws(CIError) -> ObjectKey {
        do {
            return try ObjectKey(text)
        } catch {
            throw CIError.invalid(element, "must be a key inside the bucket: it \(error.reason)")
        }
    }
}

/// Where a job's input comes from: an object of its bucket, or a URL fetched when it runs.
public enum InputSource: Sendable, Hashable, CustomStringConvertible {
    case object(ObjectKey)
    case url(String)

    public static let maxURLLength = 2048

    /// Reads `Input.Object` or `Input.Url` from a request's (or a stored job's) `<Input>`,
    /// refusing both, neither, a key outside the bucket and a URL that is not http(s).
    public init(_ input: XMLTree) throws(CIError) {
        let object = input.text("Object")?.trimmed ?? ""
        let url = input.text("Url")?.trimmed ?? ""
        switch (object.isEmpty, url.isEmpty) {
        case (true, true):
            throw CIError.invalid("Input.Object", "is required (or Input.Url)")
        case (false, false):
            throw CIError.invalid("Input.Url", "cannot be given together with Input.Object; give one of them")
        case (false, true):
            self = .object(try CreateMediaJobsRequest.Operation.key(object, element: "Input.Object"))
        case (true, false):
            if let problem = Self.urlProblem(url) { throw CIError.invalid("Input.Url", problem) }
            self = .url(url)
        }
    }

    /// The key or the URL, as the client gave it (used in messages instead of server paths).
    public var description: String {
        switch self {
        case .object(let key): key.rawValue
        case .url(let url): url
        }
    }

    /// Why `url` cannot be fetched as an input, or nil. Addresses are checked when the URL is
    /// fetched (every resolved address, by the HTTP client's guard), not here.
    static func urlProblem(_ url: String) -> String? {
        if url.utf8.count > maxURLLength { return "is longer than \(maxURLLength) bytes" }
        if url.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) {
            return "contains a space or a control character"
        }
        let lower = url.lowercased()
        let scheme = lower.hasPrefix("https://") ? "https://" : lower.hasPrefix("http://") ? "http://" : nil
        guard let scheme else { return "must be an http or https URL, not '\(url)'" }
        let rest = url.dropFirst(scheme.count)
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let host = authority.split(separator: "@", omittingEmptySubsequences: false).last ?? ""
        if host.isEmpty || host.hasPrefix(":") { return "has no host: '\(url)'" }
        return nil
    }
}
