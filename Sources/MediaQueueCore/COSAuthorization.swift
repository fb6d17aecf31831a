/// A COS request signature as sent (`Authorization: q-sign-algorithm=sha1&q-ak=…&q-sign-time=…
/// &q-key-time=…&q-header-list=…&q-url-param-list=…&q-signature=…`, or the same fields as
/// query parameters of a presigned URL), parsed; the API checks it against the request.
///
/// The signing algorithm, as Tencent's SDKs compute it:
///
///     SignKey      = hex(HMAC-SHA1(SecretKey, KeyTime))
///     HttpString   = method\npath\nparams\nheaders\n     (method lowercased; params and headers
///                    `lower(encode(name))=encode(value)`, sorted, `&`-joined)
///     StringToSign = sha1\nSignTime\nhex(SHA1(HttpString))\n
///     Signature    = hex(HMAC-SHA1(SignKey, StringToSign))
///
/// Only the headers and parameters the client lists are covered, so the server verifies over what
/// is listed, not over everything present (`PUT /jobs/<id>?cancel` is signed with no parameters).
public struct COSAuthorization: Sendable, Hashable {
    public var secretID: String
    public var signStart: Int64
    public var signEnd: Int64
    public var keyTime: String
    /// When the signing key (`q-key-time`) may be used: the SDKs make it the sign time's.
    public var keyStart: Int64
    public var keyEnd: Int64
    public var headerList: [String]
    public var paramList: [String]
    public var signature: String

    /// The query parameters that carry a presigned URL's signature (none of them is signed).
    public static let queryFields: Set<String> = [
        "q-sign-algorithm", "q-ak", "q-sign-time", "q-key-time", "q-header-list", "q-url-param-list", "q-signature",
    ]

    /// Parses the `Authorization` header; throws `AccessDenied` errors that say what is malformed.
    public init(header: String) throws(CIError) {
        var fields: [String: String] = [:]
        for pair in header.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            fields[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        try self.init(fields: fields, source: "Authorization header")
    }

    /// Reads a presigned URL's signature from its (decoded) query parameters; nil when the query
    /// carries none (no `q-sign-algorithm`).
    public init?(query: [(String, String)]) throws(CIError) {
        let fields = Dictionary(query.filter { Self.queryFields.contains($0.0) }, uniquingKeysWith: { first, _ in first })
        guard fields["q-sign-algorithm"] != nil else { return nil }
        try self.init(fields: fields, source: "signature in the query")
    }

    private init(fields: [String: String], source: String) throws(CIError) {
        func malformed(_ why: String) -> CIError { CIError(.accessDenied, "malformed \(source): \(why)") }
        guard fields["q-sign-algorithm"] == "sha1" else {
            throw malformed("q-sign-algorithm must be sha1")
        }
        guard let secretID = fields["q-ak"], !secretID.isEmpty else { throw malformed("q-ak is missing") }
        guard let signTime = fields["q-sign-time"], let keyTime = fields["q-key-time"], let signature = fields["q-signature"] else {
            throw malformed("q-sign-time, q-key-time and q-signature are required")
        }
        func window(_ text: String) -> (Int64, Int64)? {
            let times = text.split(separator: ";", omittingEmptySubsequences: false)
            guard times.count == 2, let start = Int64(times[0]), let end = Int64(times[1]), start <= end else { return nil }
            return (start, end)
        }
        guard let (start, end) = window(signTime) else { throw malformed("q-sign-time must be start;end in Unix seconds") }
        guard let (keyStart, keyEnd) = window(keyTime) else { throw malformed("q-key-time must be start;end in Unix seconds") }
        guard let headerList = fields["q-header-list"], let paramList = fields["q-url-param-list"] else {
            throw malformed("q-header-list and q-url-param-list are required")
        }
        self.secretID = secretID
        self.signStart = start
        self.signEnd = end
        self.keyTime = keyTime
        self.keyStart = keyStart
        self.keyEnd = keyEnd
        self.headerList = headerList.split(separator: ";").map { String($0).lowercased() }
        self.paramList = paramList.split(separator: ";").map { String($0).lowercased() }
        self.signature = signature.lowercased()
    }
}
