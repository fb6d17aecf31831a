public import MediaQueueAPI
import MediaQueueCore

/// Settings of the web console.
public struct ConsoleOptions: Sendable {
    /// Key pairs that may sign in, each to its own buckets (the API's credentials).
    public var credentials: [Credential]
    /// A token that signs in to every bucket; nil: no admin sign-in.
    public var adminToken: String?
    /// Serve the console without signing in, for every bucket (`MEDIAQUEUE_ANONYMOUS=1`).
    public var allowAnonymous: Bool
    /// The names an anonymous viewer may reach the console by.
    public var anonymousHosts: AnonymousHosts
    /// Signs session cookies; nodes behind one address need the same key.
    public var sessionKey: [UInt8]
    public var sessionLifetime: Duration
    /// The bucket shown to the admin when the store has none yet.
    public var defaultBucket: String
    /// Job types offered by the jobs page's filter.
    public var tags: [String]
    /// Largest form body accepted.
    public var maxFormBytes: Int
    /// Whether the server itself speaks TLS (its requests do not say so): session cookies are then
    /// always `Secure`. Behind a TLS-terminating proxy, its `X-Forwarded-Proto: https` does that.
    public var servedOverTLS: Bool
    /// Failed sign-ins per account and client, and how long they then wait.
    public var loginThrottle = LoginThrottle()

    public init(
        credentials: [Credential] = [], adminToken: String? = nil, allowAnonymous: Bool = false,
        anonymousHosts: AnonymousHosts = AnonymousHosts(suffixes: []), sessionKey: [UInt8],
        sessionLifetime: Duration = .seconds(8 * 3600), defaultBucket: String, tags: [String] = [], maxFormBytes: Int = 64 * 1024,
        servedOverTLS: Bool = false
    ) {
        self.servedOverTLS = servedOverTLS
        self.credentials = credentials
        self.adminToken = adminToken
        self.allowAnonymous = allowAnonymous
        self.anonymousHosts = anonymousHosts
        self.sessionKey = sessionKey
        self.sessionLifetime = sessionLifetime
        self.defaultBucket = defaultBucket
        self.tags = tags
        self.maxFormBytes = maxFormBytes
    }
}
