import MediaQueueAPI
import MediaQueueCore

/// The signed-in user of one request: who, which buckets, and the session's CSRF token.
struct ConsoleViewer: Sendable {
    var principal: ConsolePrincipal
    /// The buckets this viewer may see, sorted.
    var buckets: [String]
    /// The token state-changing forms must carry (empty for anonymous viewers, who have no
    /// session; their requests are checked by origin alone).
    var csrf: String

    var displayName: String {
        switch principal {
        case .admin: "admin"
        case .key(let secretID): secretID
        case .anonymous: "anonymous"
        }
    }

    func mayUse(_ bucket: String) -> Bool { buckets.contains(bucket) }

    /// The frame of a page about `bucket` (nil: a page about no bucket).
    func frame(_ title: String, bucket: String?) -> PageFrame {
        PageFrame(
            title: title, bucket: bucket,
            buckets: buckets.map { PageFrame.BucketChoice(name: $0, selected: $0 == bucket) },
            user: principal == .anonymous ? nil : displayName, csrf: csrf
        )
    }
}
