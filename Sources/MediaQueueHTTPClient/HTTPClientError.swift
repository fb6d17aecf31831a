/// A request that got no HTTP response. (A response with any status, even 500, is not an error.)
public struct HTTPClientError: Error, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case invalidURL, addressRefused, resolveFailed, connectFailed, timedOut, stalled, tls, transport, tooLarge, fileWrite, shutdown
        }
        private let base: Base

        /// Not an http(s) URL, or malformed.
        public static let invalidURL = Code(base: .invalidURL)
        /// The SSRF guard refused every address of the host.
        public static let addressRefused = Code(base: .addressRefused)
        /// The host name did not resolve.
        public static let resolveFailed = Code(base: .resolveFailed)
        /// Refused or unreachable.
        public static let connectFailed = Code(base: .connectFailed)
        /// The connect or total timeout passed.
        public static let timedOut = Code(base: .timedOut)
        /// Nothing moved for the configuration's `stallTimeout`.
        public static let stalled = Code(base: .stalled)
        /// TLS handshake or certificate failure.
        public static let tls = Code(base: .tls)
        /// The connection failed while sending or receiving.
        public static let transport = Code(base: .transport)
        /// A download's body is longer than its limit (by Content-Length or as it arrived).
        public static let tooLarge = Code(base: .tooLarge)
        /// A download's body could not be written to its file.
        public static let fileWrite = Code(base: .fileWrite)
        /// The client was shut down.
        public static let shutdown = Code(base: .shutdown)

        public var description: String { base.rawValue }
    }

    public let code: Code
    /// Safe to show: what happened, with libcurl's own explanation where it gave one.
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
