public import MediaQueueCore

/// Settings of the REST API.
public struct APIOptions: Sendable {
    public var host: String
    public var port: Int
    /// Key pairs allowed to call the API, each for its own buckets.
    public var credentials: [Credential]
    /// Requests without `Authorization` are served (for any bucket). Off unless configured.
    public var allowAnonymous: Bool
    /// Host suffixes that name a bucket in the first label: `<bucket>.<suffix>`, besides CI's own
    /// `<bucket>.ci.<region>.myqcloud.com` and `<bucket>.cos.<region>.myqcloud.com`.
    public var hostSuffixes: [String]
    /// The names an unsigned request may reach the API by.
    public var anonymousHosts: AnonymousHosts { AnonymousHosts(suffixes: hostSuffixes) }
    /// Largest request body accepted (413 beyond).
    public var maxBodyBytes: Int
    /// The most job ids one `GET /jobs/<ids>` may name.
    public var maxJobIDs: Int
    /// The most header fields one request may carry (431 beyond).
    public var maxHeaderCount: Int
    /// The most bytes of header names and values one request may carry (431 beyond).
    public var maxHeaderBytes: Int
    /// How long a connection may stay open without a request, or in the middle of reading one
    /// without a byte, before it is closed (a response being written is never cut).
    public var idleTimeout: Duration = .seconds(60)
    /// The most connections held at once; more wait in the kernel's backlog until one closes.
    public var maxConnections = APIConnectionLimit.half
    /// What a scrape of `/metrics` must send as `Authorization: Bearer …`; nil: `/metrics` is open.
    public var metricsToken: String?
    /// PEM files of the certificate chain and private key to serve HTTPS with; plain HTTP without.
    public var tls: (certificateFile: String, keyFile: String)?

    public init(
        host: String = "127.0.0.1", port: Int = 8080, credentials: [Credential] = [], allowAnonymous: Bool = false,
        hostSuffixes: [String] = [], maxBodyBytes: Int = 1 << 20, maxJobIDs: Int = 100, maxHeaderCount: Int = 100,
        maxHeaderBytes: Int = 16 * 1024
    ) {
        self.maxJobIDs = maxJobIDs
        self.maxHeaderCount = maxHeaderCount
        self.maxHeaderBytes = maxHeaderBytes
        self.host = host
        self.port = port
        self.credentials = credentials
        self.allowAnonymous = allowAnonymous
        self.hostSuffixes = hostSuffixes
        self.maxBodyBytes = maxBodyBytes
    }

    /// Parses `host:port` (`MEDIAQUEUE_HTTP_ADDRESS`).
    public static func address(_ text: String) throws(CIError) -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw CIError(.invalidArgument, "the HTTP address must look like 127.0.0.1:8080, not '\(text)'")
        }
        return (String(text[..<colon]), port)
    }
}
