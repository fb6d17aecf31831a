/// Settings of an `HTTPClient`.
public struct HTTPClientConfiguration: Sendable, Hashable {
    /// Longest wait for a connection (DNS, TCP and TLS) to be established.
    public var connectTimeout: Duration
    /// Longest a whole request may take, connecting included.
    public var timeout: Duration
    /// A request that moves less than a byte a second for this long fails with `.stalled`
    /// (nil: only `timeout` ends it): for long transfers, whose `timeout` is long too.
    public var stallTimeout: Duration?
    /// Which resolved addresses may be connected to (the SSRF guard).
    public var addressPolicy: AddressPolicy
    /// Response bodies are cut after this many bytes (the rest is read and dropped).
    public var maxResponseBodyBytes: Int
    public var userAgent: String
    /// Idle keep-alive connections kept open, over all hosts.
    public var maxIdleConnections: Int
    /// PEM file of the CAs that HTTPS servers' certificates must chain to; nil for the system's.
    /// Certificates and host names are verified either way.
    public var caFile: String?

    public init(
        connectTimeout: Duration = .seconds(10), timeout: Duration = .seconds(30), addressPolicy: AddressPolicy = .publicOnly,
        maxResponseBodyBytes: Int = 16 * 1024, userAgent: String = "MediaQueue", maxIdleConnections: Int = 256, caFile: String? = nil,
        stallTimeout: Duration? = nil
    ) {
        self.caFile = caFile
        self.stallTimeout = stallTimeout
        self.connectTimeout = connectTimeout
        self.timeout = timeout
        self.addressPolicy = addressPolicy
        self.maxResponseBodyBytes = maxResponseBodyBytes
        self.userAgent = userAgent
        self.maxIdleConnections = maxIdleConnections
    }
}

/// One header of a request or response.
public struct HTTPHeader: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// A request to send: a POST with a body (`HTTPClient.post`), a GET (`HTTPClient.download`), or
/// any method (`HTTPClient.send`).
public struct HTTPRequest: Sendable, Hashable {
    public enum Method: Sendable, Hashable {
        case get, post, put, head, delete
    }

    public var method: Method
    public var url: String
    public var headers: [HTTPHeader]
    /// The body of a POST, or of a PUT without `upload`.
    public var body: [UInt8]
    /// A PUT's body read from part of a file instead of `body`.
    public var upload: FileRegion?
    /// Signs the request with AWS Signature Version 4 (S3 and compatible stores).
    public var signature: AWSSignature?
    /// Overrides the configuration's total timeout for this request.
    public var timeout: Duration?

    public init(
        method: Method = .post, url: String, headers: [HTTPHeader] = [], body: [UInt8], upload: FileRegion? = nil,
        signature: AWSSignature? = nil, timeout: Duration? = nil
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.upload = upload
        self.signature = signature
        self.timeout = timeout
    }
}

/// `length` bytes of the file at `path` from `offset` on.
public struct FileRegion: Sendable, Hashable {
    public var path: String
    public var offset: Int
    public var length: Int

    public init(path: String, offset: Int, length: Int) {
        self.path = path
        self.offset = offset
        self.length = length
    }
}

/// The key and scope of an AWS Signature Version 4, which libcurl computes
/// (`CURLOPT_AWS_SIGV4`). The payload is not hashed: requests should carry
/// `x-amz-content-sha256: UNSIGNED-PAYLOAD`.
public struct AWSSignature: Sendable, Hashable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var region: String
    public var service: String

    public init(accessKeyID: String, secretAccessKey: String, region: String, service: String = "s3") {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.region = region
        self.service = service
    }
}

/// What a download got: the response (its body only when the status was not 2xx) and how many
/// bytes of a 2xx body were written to the file.
public struct HTTPDownload: Sendable, Hashable {
    public var response: HTTPResponse
    public var bytesWritten: Int

    public var succeeded: Bool { (200..<300).contains(response.status) }
}

/// What the server answered: any status, including 3xx (redirects are never followed) and errors.
public struct HTTPResponse: Sendable, Hashable {
    public var status: Int
    /// Headers of the final response, in order.
    public var headers: [HTTPHeader]
    /// The body, at most `maxResponseBodyBytes` of it.
    public var body: [UInt8]

    public init(status: Int, headers: [HTTPHeader] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first header named `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }
}
