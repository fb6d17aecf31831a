/// An error from the AMQP client.
///
/// `description` is safe to show and to log: it never contains a password.
public struct AMQPError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is; compare with the static members.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String, Sendable, Hashable {
            case invalidURL, connectionFailed, connectionLost, returned, nacked, channelClosed, unencodable, shutdown, cancelled
        }

        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The configuration's URL (or another setting) is not valid.
        public static let invalidURL = Code(.invalidURL)
        /// Connecting or logging in failed.
        public static let connectionFailed = Code(.connectionFailed)
        /// The connection was lost while the operation was under way; the operation may be retried.
        public static let connectionLost = Code(.connectionLost)
        /// A `mandatory` message could not be routed to any queue and came back.
        public static let returned = Code(.returned)
        /// The broker refused a published message (basic.nack).
        public static let nacked = Code(.nacked)
        /// The broker closed the channel, e.g. PRECONDITION_FAILED or NOT_FOUND; the message holds
        /// the broker's reply code and text.
        public static let channelClosed = Code(.channelClosed)
        /// The message cannot be put in AMQP frames (a short string over 255 bytes, properties
        /// larger than a frame); it was not sent, and sending it again fails the same way.
        public static let unencodable = Code(.unencodable)
        /// The connection's `run()` ended (or never started and was cancelled).
        public static let shutdown = Code(.shutdown)
        /// The publisher's task was cancelled before the broker settled the message. One still
        /// waiting to be sent is not sent; one already sent may have reached its queues.
        public static let cancelled = Code(.cancelled)

        public var description: String { value.rawValue }
    }

    /// What kind of failure this is.
    public var code: Code
    /// A human-readable explanation, safe to log.
    public var message: String
    /// For `.channelClosed` and broker-initiated connection closes: the AMQP reply code (e.g. 404, 406).
    public var replyCode: UInt16?

    /// What a publish whose publisher stopped waiting (its task was cancelled) ends with.
    static let publisherStoppedWaiting = AMQPError(.cancelled, "the publisher stopped waiting before the broker confirmed the message")

    /// Creates an error.
    public init(_ code: Code, _ message: String, replyCode: UInt16? = nil) {
        self.code = code
        self.message = message
        self.replyCode = replyCode
    }

    public var description: String { "AMQPError.\(code): \(message)" }
}
