public import MediaQueueXML

/// A media queue (CI's `QueueList` entry): where jobs wait, how many run at once, and the
/// callback rule for their outcomes.
public struct MediaQueue: Sendable, Hashable {
    public enum State: String, Sendable, Hashable { case active = "Active", paused = "Paused" }

    public var id: QueueID
    public var bucket: String
    public var name: String
    public var state: State
    public var maxConcurrent: Int
    public var maxSize: Int
    public var category: String
    public var notifyConfig: NotifyConfig
    public var createTime: Timestamp
    public var updateTime: Timestamp

    public init(
        id: QueueID = .generate(), bucket: String, name: String, state: State = .active,
        maxConcurrent: Int = 10, maxSize: Int = 10_000, category: String = "Transcoding",
        notifyConfig: NotifyConfig = NotifyConfig(), createTime: Timestamp, updateTime: Timestamp? = nil
    ) {
        self.id = id
        self.bucket = bucket
        self.name = name
        self.state = state
        self.maxConcurrent = maxConcurrent
        self.maxSize = maxSize
        self.category = category
        self.notifyConfig = notifyConfig
        self.createTime = createTime
        self.updateTime = updateTime ?? createTime
    }

    /// The name CI gives the queue it creates for every bucket.
    public static let defaultName = "queue-1"

    /// The `MaxConcurrent` a queue may have, wherever it is set (console, CLI, configuration).
    public static let maxConcurrentRange = 1...10_000
    /// The `MaxSize` a queue may have.
    public static let maxSizeRange = 1...100_000_000

    /// Checks a queue name: letters, digits, `_`, `-` and `*`, at most 128 characters.
    public static func validateName(_ name: String) throws(CIError) {
        guard !name.isEmpty, name.count <= 128, name.allSatisfy({ $0.isLetter || $0.isNumber || "_-*".contains($0) }) else {
            throw CIError.invalid("Name", "may hold letters, digits, '_', '-' and '*', at most 128 characters")
        }
    }

    /// Sets the limits given, each checked against its range; if either is out of range,
    /// neither is set.
    public mutating func setLimits(maxConcurrent: Int? = nil, maxSize: Int? = nil) throws(CIError) {
        if let maxConcurrent, !Self.maxConcurrentRange.contains(maxConcurrent) {
            throw CIError.invalid("MaxConcurrent", "must be a whole number from 1 to \(Self.maxConcurrentRange.upperBound), not \(maxConcurrent)")
        }
        if let maxSize, !Self.maxSizeRange.contains(maxSize) {
            throw CIError.invalid("MaxSize", "must be a whole number from 1 to \(Self.maxSizeRange.upperBound), not \(maxSize)")
        }
        if let maxConcurrent { self.maxConcurrent = maxConcurrent }
        if let maxSize { self.maxSize = maxSize }
    }

    /// The queue as a `QueueList` / `Queue` element.
    public func xml(_ name: String = "QueueList", times: CITimeFormat) -> XMLTree {
        XMLTree(name, children: [
            XMLTree("QueueId", text: id.rawValue),
            XMLTree("Name", text: self.name),
            XMLTree("State", text: state.rawValue),
            notifyConfig.xml,
            XMLTree("MaxSize", text: String(maxSize)),
            XMLTree("MaxConcurrent", text: String(maxConcurrent)),
            XMLTree("UpdateTime", text: times.format(updateTime)),
            XMLTree("CreateTime", text: times.format(createTime)),
            XMLTree("Category", text: category),
            XMLTree("BucketId", text: bucket),
        ])
    }
}
