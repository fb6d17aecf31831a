/// Who is signed in to the console.
enum ConsolePrincipal: Sendable, Hashable {
    /// The admin token's holder: every bucket.
    case admin
    /// A configured key pair: its buckets.
    case key(secretID: String)
    /// Nobody signed in, with `MEDIAQUEUE_ANONYMOUS=1`: every bucket.
    case anonymous

    var cookieName: String {
        switch self {
        case .admin: "admin"
        case .key(let secretID): "key:" + secretID
        case .anonymous: "anonymous"
        }
    }

    init?(cookieName: String) {
        if cookieName == "admin" {
            self = .admin
        } else if cookieName.hasPrefix("key:"), cookieName.count > 4 {
            self = .key(secretID: String(cookieName.dropFirst(4)))
        } else {
            return nil
        }
    }
}
