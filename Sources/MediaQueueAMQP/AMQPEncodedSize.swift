/// What AMQP 0-9-1 can carry, checked before a publish is sent: a short string (names, routing
/// keys, most properties, header keys) holds at most 255 bytes, and a message's properties travel
/// in one content header frame. rabbitmq-c finds either only while writing the publish's frames,
/// after its method frame is out, and the connection cannot go on from there.
extension AMQPOutgoingMessage {
    /// Why this message cannot be sent on a connection with frames of at most `frameMax` bytes,
    /// or nil when it can.
    public func encodingProblem(frameMax: Int = AMQPProperties.requestedFrameMax) -> String? {
        if exchange.utf8.count > AMQPProperties.maxShortStringBytes { return "the exchange name is over 255 bytes" }
        if routingKey.utf8.count > AMQPProperties.maxShortStringBytes { return "the routing key is over 255 bytes" }
        return properties.encodingProblem(frameMax: frameMax)
    }

    /// `.unencodable` with `encodingProblem`, or nil when the message can be sent.
    func encodingError(frameMax: Int) -> AMQPError? {
        encodingProblem(frameMax: frameMax).map { AMQPError(.unencodable, "not sent: \($0)") }
    }
}

extension AMQPTopology {
    /// Why these declarations cannot be sent, or nil when they can: every name and routing key
    /// is a short string, as is every argument's key.
    public var encodingProblem: String? {
        let limit = AMQPProperties.maxShortStringBytes
        let names = exchanges.flatMap { [$0.name, $0.type] } + queues.map(\.name) + bindings.flatMap { [$0.queue, $0.exchange, $0.routingKey] }
        if let name = names.first(where: { $0.utf8.count > limit }) { return "the name '\(name.prefix(40))…' is over 255 bytes" }
        let arguments = exchanges.map(\.arguments) + queues.map(\.arguments) + bindings.map(\.arguments)
        if let key = arguments.lazy.compactMap(\.firstOverlongKey).first { return "the argument name '\(key.prefix(40))…' is over 255 bytes" }
        return nil
    }

    /// Throws `.unencodable` with `encodingProblem`: nothing is declared then.
    func checkEncodable() throws(AMQPError) {
        if let problem = encodingProblem { throw AMQPError(.unencodable, "not declared: \(problem)") }
    }
}

extension AMQPProperties {
    /// The frame size this client asks for. RabbitMQ grants it by default; a connection checks
    /// its publishes against the size it was granted.
    public static let requestedFrameMax = Int(ConnectionWorker.frameMax)
    /// The most bytes of a short string.
    public static let maxShortStringBytes = 255
    /// Bytes of a content header frame that are not properties: the frame's type, channel, size
    /// and end marker (8), and the class, weight and body size (12).
    static let headerFrameOverhead = 20

    /// The most bytes of properties one content header frame carries with frames of `frameMax` bytes.
    public static func maxEncodedSize(frameMax: Int = requestedFrameMax) -> Int { frameMax - headerFrameOverhead }

    /// These properties without the short strings longer than AMQP carries. A received one can
    /// be: invalid UTF-8 is repaired into three bytes for each byte.
    public func withoutOverlongShortStrings() -> AMQPProperties {
        var kept = self
        let paths: [WritableKeyPath<AMQPProperties, String?>] = [
            \.contentType, \.contentEncoding, \.messageID, \.correlationID, \.replyTo, \.type, \.appID, \.expiration,
        ]
        for path in paths where (kept[keyPath: path]?.utf8.count ?? 0) > Self.maxShortStringBytes { kept[keyPath: path] = nil }
        return kept
    }

    /// Bytes these properties take in a content header frame.
    public var encodedSize: Int { shortStringsAndSize.size }

    func encodingProblem(frameMax: Int) -> String? {
        let (size, longest) = shortStringsAndSize
        if longest > Self.maxShortStringBytes { return "a message property is over 255 bytes" }
        if let key = headers.firstOverlongKey { return "the header name '\(key.prefix(40))…' is over 255 bytes" }
        let limit = Self.maxEncodedSize(frameMax: frameMax)
        if size > limit { return "the properties take \(size) bytes, over the \(limit) that one frame carries" }
        return nil
    }

    /// The encoded size, and the longest short string property. Every publish is checked, so
    /// one pass and no allocation.
    private var shortStringsAndSize: (size: Int, longest: Int) {
        // The flags word, then each property that is set; the delivery mode is always sent.
        var size = 2 + 1
        var longest = 0
        func add(_ value: String?) {
            guard let count = value?.utf8.count else { return }
            size += 1 + count
            longest = max(longest, count)
        }
        add(contentType)
        add(contentEncoding)
        add(messageID)
        add(correlationID)
        add(replyTo)
        add(type)
        add(appID)
        add(expiration)
        if priority != nil { size += 1 }
        if timestamp != nil { size += 8 }
        if !headers.isEmpty { size += headers.encodedSize }
        return (size, longest)
    }
}

extension AMQPTable {
    /// Bytes of this table as a field table: its length word, then each key and value.
    public var encodedSize: Int {
        reduce(4) { size, entry in size + 1 + entry.key.utf8.count + entry.value.encodedSize }
    }

    /// A key, at any depth, that is too long to be sent.
    var firstOverlongKey: String? {
        for (key, value) in self {
            if key.utf8.count > AMQPProperties.maxShortStringBytes { return key }
            if let nested = value.firstOverlongKey { return nested }
        }
        return nil
    }
}

extension AMQPFieldValue {
    /// Bytes of this value in a field table: its type octet, then its encoding as this client
    /// sends it (integers as 64 bits, strings and bytes with a 32-bit length).
    public var encodedSize: Int {
        switch self {
        case .string(let value): 1 + 4 + value.utf8.count
        case .int, .double: 1 + 8
        case .bool: 1 + 1
        case .bytes(let value): 1 + 4 + value.count
        case .table(let table): 1 + table.encodedSize
        case .array(let values): values.reduce(1 + 4) { $0 + $1.encodedSize }
        }
    }

    var firstOverlongKey: String? {
        switch self {
        case .table(let table): table.firstOverlongKey
        case .array(let values): values.lazy.compactMap(\.firstOverlongKey).first
        default: nil
        }
    }
}
