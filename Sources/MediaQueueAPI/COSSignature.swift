import Crypto
import Foundation
public import MediaQueueCore

/// COS request signatures (`Authorization: q-sign-algorithm=sha1&q-ak=…&q-sign-time=…&q-key-time=…
/// &q-header-list=…&q-url-param-list=…&q-signature=…`), as Tencent's SDKs compute them:
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
    public var headerList: [String]
    public var paramList: [String]
    public var signature: String

    /// Parses the header; throws `AccessDenied`-style errors that say what is malformed.
    public init(header: String) throws(CIError) {
        var fields: [String: String] = [:]
        for pair in header.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            fields[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        guard fields["q-sign-algorithm"] == "sha1" else {
            throw APIError.malformedAuthorization("q-sign-algorithm must be sha1")
        }
        guard let secretID = fields["q-ak"], !secretID.isEmpty else { throw APIError.malformedAuthorization("q-ak is missing") }
        guard let signTime = fields["q-sign-time"], let keyTime = fields["q-key-time"], let signature = fields["q-signature"] else {
            throw APIError.malformedAuthorization("q-sign-time, q-key-time and q-signature are required")
        }
        let times = signTime.split(separator: ";")
        guard times.count == 2, let start = Int64(times[0]), let end = Int64(times[1]), start <= end else {
            throw APIError.malformedAuthorization("q-sign-time must be start;end in Unix seconds")
        }
        guard fields["q-header-list"] != nil, fields["q-url-param-list"] != nil else {
            throw APIError.malformedAuthorization("q-header-list and q-url-param-list are required")
        }
        self.secretID = secretID
        self.signStart = start
        self.signEnd = end
        self.keyTime = keyTime
        self.headerList = fields["q-header-list"]!.split(separator: ";").map { String($0).lowercased() }
        self.paramList = fields["q-url-param-list"]!.split(separator: ";").map { String($0).lowercased() }
        self.signature = signature.lowercased()
    }

    /// The signature the client should have sent for this request, given its secret key.
    ///
    /// `headers` and `parameters` are the request's, names in any case; only the listed ones count.
    public func expectedSignature(
        secretKey: String, method: String, path: String, headers: [(String, String)], parameters: [(String, String)]
    ) -> String {
        COSSigner.signature(
            secretKey: secretKey, keyTime: keyTime, signTime: "\(signStart);\(signEnd)", method: method, path: path,
            headers: Self.pick(headerList, from: headers), parameters: Self.pick(paramList, from: parameters)
        )
    }

    private static func pick(_ names: [String], from pairs: [(String, String)]) -> [(String, String)] {
        names.map { name in
            (name, pairs.first { COSSigner.encode($0.0).lowercased() == name }?.1 ?? "")
        }
    }
}

/// The signing half, shared by verification and by clients (tests, tools).
public enum COSSigner {
    public static func signature(
        secretKey: String, keyTime: String, signTime: String, method: String, path: String,
        headers: [(String, String)], parameters: [(String, String)]
    ) -> String {
        let httpString = "\(method.lowercased())\n\(path)\n\(canonical(parameters))\n\(canonical(headers))\n"
        let stringToSign = "sha1\n\(signTime)\n\(hex(Insecure.SHA1.hash(data: Data(httpString.utf8))))\n"
        let signKey = hex(HMAC<Insecure.SHA1>.authenticationCode(for: Data(keyTime.utf8), using: SymmetricKey(data: Data(secretKey.utf8))))
        return hex(HMAC<Insecure.SHA1>.authenticationCode(for: Data(stringToSign.utf8), using: SymmetricKey(data: Data(signKey.utf8))))
    }

    /// `lower(encode(name))=encode(value)` pairs, sorted by name, joined with `&`.
    static func canonical(_ pairs: [(String, String)]) -> String {
        pairs.map { (encode($0.0).lowercased(), encode($0.1)) }
            .sorted { $0.0 < $1.0 }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    /// Percent-encoding of everything but `A-Z a-z 0-9 - _ . ~` (what the SDKs' `quote(v, '-_.~')` does).
    static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(2)
            }
        }
        return out
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String($0, radix: 16).leftPadded(2) }.joined()
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
