/// Which queues and exchanges a bucket's TDMQ callbacks may name. Every bucket's callbacks go
/// to the one broker the service uses, so a name is checked against the service's own queues (a
/// callback body planted in the intake queue, or among its dead letters) and, where several
/// tenants share the service, kept to the bucket's own names.
public struct MqNamePolicy: Sendable {
    /// The service's own queues: the intake queue and its dead-letter queue.
    public var reserved: Set<String>
    /// Whether a name must start with its bucket's name and a dot (`examplebucket-1250000000.done`).
    public var bucketPrefix: Bool

    public init(reserved: Set<String> = [], bucketPrefix: Bool = false) {
        self.reserved = reserved
        self.bucketPrefix = bucketPrefix
    }

    /// Refuses `name` for a callback of `bucket`; `element` names it in the error. For new rules
    /// and submissions only: what was stored before must still load.
    public func check(_ name: String, bucket: String, element: String) throws(CIError) {
        try NotifyConfig.checkMqName(name, element: element)
        // `amq.` names are the broker's own: it refuses to declare them, and its default
        // exchanges would route a message anywhere.
        if reserved.contains(name) || name.hasPrefix("amq.") {
            throw CIError.invalid(element, "'\(name)' is one of the service's own queues or exchanges")
        }
        if bucketPrefix && !name.hasPrefix(bucket + ".") {
            throw CIError.invalid(element, "must start with the bucket's name and a dot ('\(bucket).')")
        }
    }
}
