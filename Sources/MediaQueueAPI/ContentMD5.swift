import Crypto
import Foundation
import HTTPTypes
import MediaQueueCore

/// The `Content-MD5` header (base64 of the body's 16-byte MD5): a client that signs it expects a
/// body changed on the way to be refused, on CI's calls as on object uploads.
enum ContentMD5 {
    static let badDigest = CIError.Code("BadDigest")
    static let invalidDigest = CIError.Code("InvalidDigest")

    /// The digest `headers` carry, nil without one; throws `InvalidDigest` for one that is not
    /// the base64 of 16 bytes.
    static func expected(in headers: HTTPFields) throws(CIError) -> Data? {
        guard let text = headers[.contentMD5] else { return nil }
        guard let bytes = Data(base64Encoded: text), bytes.count == 16 else {
            throw CIError(invalidDigest, "Content-MD5 must be the base64 of 16 bytes", element: "Content-MD5")
        }
        return bytes
    }

    /// Throws `BadDigest` unless `digest` (the body's MD5) is `expected`.
    static func check(_ digest: Data, expected: Data) throws(CIError) {
        if expected != digest {
            throw CIError(badDigest, "the body's MD5 is not the Content-MD5 sent", element: "Content-MD5")
        }
    }
}
