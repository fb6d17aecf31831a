import Crypto
import MediaQueueCore

/// Standard Webhooks signing: `webhook-signature: v1,<base64 HMAC-SHA256>` of
/// `"<webhook-id>.<webhook-timestamp>.<body>"`, keyed with the bytes of the bucket's
/// `whsec_…` secret.
public struct WebhookSigner: Sendable {
    /// The key's bytes (swift-crypto's `SymmetricKey` is not `Sendable`; one is made per signature).
    private let key: [UInt8]

    /// nil if `secret` is not `whsec_` followed by base64.
    public init?(secret: String) {
        guard let bytes = WebhookSecret.keyBytes(secret), !bytes.isEmpty else { return nil }
        key = bytes
    }

    /// The `webhook-signature` header value.
    public func signature(id: String, timestamp: Int64, body: [UInt8]) -> String {
        var authenticator = HMAC<SHA256>(key: SymmetricKey(data: key))
        authenticator.update(data: Array("\(id).\(timestamp).".utf8))
        authenticator.update(data: body)
        return "v1," + WebhookSecret.base64(Array(authenticator.finalize()))
    }
}
