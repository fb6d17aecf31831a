import Crypto
import Foundation
public import MediaQueueCore

extension COSAuthorization {
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

    /// The listed fields, as the request has them: `names` are encoded and lowercased (as
    /// signed), so the request's own name is what gets encoded for the signature, not the listed
    /// one a second time (`a%2fb` would become `a%252fb`).
    private static func pick(_ names: [String], from pairs: [(String, String)]) -> [(String, String)] {
        names.map { name in
            pairs.first { COSSigner.encode($0.0).lowercased() == name } ?? (name.removingPercentEncoding ?? name, "")
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
        URIEncoding.encode(text)
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
