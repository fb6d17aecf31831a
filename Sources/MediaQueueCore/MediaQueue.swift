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
