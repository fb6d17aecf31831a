import Crypto
public import MediaQueueCore
import Synchronization

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

/// The signers of each bucket's active secrets, for the relay and the progress events alike.
///
/// Read from the store and read again after `refresh`, so a rotation made by another process
/// (`mediaqueue callbacks secret --rotate`) is signed with within that time; a previous secret
/// is left out as soon as its grace period ends, without a read.
public final class CallbackSigners: Sendable {
    private struct Key {
        let signer: WebhookSigner
        /// The end of a previous secret's grace period; nil for the current secret.
        let until: Timestamp?
    }

    private struct Entry {
        let keys: [Key]
        let readAt: Timestamp
    }

    private let store: any JobStore
    private let time: any TimeSource
    private let refresh: Duration
    private let cache = Mutex<[String: Entry]>([:])
    static let cachedBuckets = 10_000

    public init(store: any JobStore, time: any TimeSource = SystemTimeSource(), refresh: Duration = .seconds(30)) {
        self.store = store
        self.time = time
        self.refresh = refresh
    }

    /// The `webhook-signature` value: one `v1,` signature per secret in use, the current first,
    /// separated by spaces.
    public func signature(bucket: String, id: String, timestamp: Int64, body: [UInt8]) async throws -> String {
        let now = time.now
        return try await keys(bucket: bucket, now: now)
            .filter { key in key.until.map { now < $0 } ?? true }
            .map { $0.signer.signature(id: id, timestamp: timestamp, body: body) }
            .joined(separator: " ")
    }

    private func keys(bucket: String, now: Timestamp) async throws -> [Key] {
        if let entry = cache.withLock({ $0[bucket] }), now < entry.readAt + refresh { return entry.keys }
        let secrets = try await store.signingSecrets(bucket: bucket)
        guard let current = WebhookSigner(secret: secrets.current) else {
            throw SigningSecretError(description: "the signing secret of bucket \(bucket) is not whsec_ followed by base64")
        }
        var keys = [Key(signer: current, until: nil)]
        if let previous = secrets.previous, let until = secrets.previousUntil, now < until, let signer = WebhookSigner(secret: previous) {
            keys.append(Key(signer: signer, until: until))
        }
        cache.withLock { cache in
            // Entries past their refresh are read again anyway: with many buckets (anyone who
            // may submit names one), they go rather than pile up.
            if cache.count >= Self.cachedBuckets { cache = cache.filter { now < $0.value.readAt + refresh } }
            if cache.count >= Self.cachedBuckets { cache.removeAll() }
            cache[bucket] = Entry(keys: keys, readAt: now)
        }
        return keys
    }
}

struct SigningSecretError: Error, CustomStringConvertible {
    let description: String
}
